"""The reader under fuzzing: every mutant is rejected, or read exactly as the file says (issue 12).

Corpus: golden ``multipage`` (FFCV 1.0.2, three pages) and two files written
here (images + ints, JSON/bytes/arrays/float); see ``tests/_fuzz_corpus.py``
for the mutations and the oracle. A mutant must either raise
``BetonFormatError`` at open, or serve every region identically through the
``os``, ``process`` and ``shared`` strategies, and decode through a Loader
with nothing but ``DecodeError``. A segfault kills pytest: a loud failure.

Sizes (environment variables; ``make fuzz`` sets the long ones):

- ``FFCVX_FUZZ_EXAMPLES``: Hypothesis examples of the property test (300);
- ``FFCVX_FUZZ_DECODE_EXAMPLES``: examples that also decode (4; ~2 s each,
  a Loader compiles its pipelines);
- ``FFCVX_FUZZ_MUTANTS``: mutants of the plain seeded sweep (500; 10,000 in
  ``make fuzz``), ``FFCVX_FUZZ_DECODE_EVERY``: the sweep decodes every this
  many opened mutants (0: never).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _fuzz_corpus as fc

EXAMPLES = int(os.environ.get('FFCVX_FUZZ_EXAMPLES', 300))
DECODE_EXAMPLES = int(os.environ.get('FFCVX_FUZZ_DECODE_EXAMPLES', 4))
MUTANTS = int(os.environ.get('FFCVX_FUZZ_MUTANTS', 500))
DECODE_EVERY = int(os.environ.get('FFCVX_FUZZ_DECODE_EVERY', 0))
#: Bounded runs (``make test``) are the same every time; ``make fuzz`` explores.
DERANDOMIZE = 'FFCVX_FUZZ_EXAMPLES' not in os.environ


@pytest.fixture(scope='module')
def bases(tmp_path_factory, golden_dir):
    """The corpus as :class:`_fuzz_corpus.Base` objects, in a fixed order."""
    folder = tmp_path_factory.mktemp('fuzz-corpus')
    return [fc.Base(name, data) for name, data in fc.write_corpus(folder, golden_dir).items()]


@pytest.fixture(scope='module')
def oracle(tmp_path_factory):
    """One :class:`_fuzz_corpus.Oracle` per module (its compiled gathers are reused)."""
    return fc.Oracle(tmp_path_factory.mktemp('fuzz-mutants'))


@st.composite
def mutants(draw, bases, members_only=False):
    """``(base, mutations)``: one corpus file and 1 to 4 mutations of it (see ``fc.apply``)."""
    base = bases[draw(st.integers(0, len(bases) - 1))]
    mutations = []
    for _ in range(draw(st.integers(1, 4))):
        kind = 'overwrite' if members_only else draw(st.sampled_from(fc.KINDS))
        if kind == 'flip':
            u = draw(st.floats(0, 1, exclude_max=True))
            mutations.append(('flip', base.flip_offset(u), draw(st.integers(0, 7))))
        elif kind == 'overwrite':
            offset, width = base.spans[draw(st.integers(0, len(base.spans) - 1))]
            value = draw(st.sampled_from(fc.SPECIAL_VALUES) | st.integers(0, 2 ** 64 - 1))
            mutations.append(('overwrite', offset, width, value))
        else:
            mutations.append(('truncate', draw(st.integers(0, len(base.data) - 1))))
    return base, mutations


def test_corpus_opens_and_reads_the_same_everywhere(bases, oracle):
    """The unmutated corpus opens and every strategy serves it exactly (the oracle's baseline)."""
    for base in bases:
        assert oracle.judge(base.data, base.name) is None


def test_property_rejected_or_read_exactly(bases, oracle):
    """Hypothesis: any mutant is refused with BetonFormatError or read identically by every strategy."""
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(mutants(bases))
    def check(case):
        base, mutations = case
        finding = oracle.judge(fc.apply(base.data, mutations), f"{base.name} {mutations}")
        assert finding is None, finding

    check()
    counts = oracle.counts
    print(f"\nhypothesis: {fc.figures(oracle)}")
    assert counts['rejected'] > 0 and counts['opened'] > 0, counts


def test_property_opened_mutants_decode_or_raise_decode_error(bases, oracle):
    """Hypothesis, metadata/table members only: an opened mutant decodes, or raises DecodeError."""
    @settings(max_examples=DECODE_EXAMPLES, deadline=None, database=None,
              derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck), print_blob=True)
    @given(mutants(bases, members_only=True))
    def check(case):
        base, mutations = case
        finding = oracle.judge(fc.apply(base.data, mutations), f"{base.name} {mutations}",
                               decode=True, limit=60.0)
        assert finding is None, finding

    check()


def test_sweep_of_seeded_mutants(bases, tmp_path):
    """Plain seeded sweep (no shrinking): prints the issue's figures; 0 findings allowed."""
    oracle = fc.Oracle(tmp_path)
    counts = fc.sweep(oracle, bases, MUTANTS, seed=12, decode_every=DECODE_EVERY,
                      out=lambda line: print(f"\nsweep: {line}"))
    assert counts['mutants'] == MUTANTS
    assert not oracle.findings, "\n".join(oracle.findings[:5])
    assert counts['opened'] > 0 and counts['rejected'] > 0, counts


def test_big_endian_arrays_arrive_native_with_their_values(bases, tmp_path):
    """Issue 12 item 4: a '>i2' NDArrayField reaches torch in native order, values unchanged."""
    import torch
    from ffcvx.loader import Loader
    path = tmp_path / 'mixed.beton'
    path.write_bytes(next(b for b in bases if b.name == 'mixed').data)
    loader = Loader(str(path), batch_size=20, num_workers=1, drop_last=False)
    try:
        batch = next(iter(loader))
    finally:
        loader.close()
    be = batch[3]  # fields: meta, blob, arr, be, value
    expected = np.stack([fc.WRITTEN['mixed']()[i][3] for i in range(20)])
    assert be.dtype == torch.int16
    assert np.array_equal(be.numpy(), expected.astype('=i2'))
