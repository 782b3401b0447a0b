"""What an Operation declares is checked where it is declared (FFCV left it to Numba)."""
import numpy as np
import pytest

from ffcvx.errors import PipelineError
from ffcvx.fields import IntField, NDArrayField
from ffcvx.fields.decoders import IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader
from ffcvx.pipeline.allocation_query import AllocationQuery
from ffcvx.pipeline.compiler import Compiler
from ffcvx.pipeline.operation import Operation
from ffcvx.pipeline.state import State
from ffcvx.transforms import ToTensor
from ffcvx.writer import DatasetWriter


@pytest.fixture(scope='module')
def arrays(tmp_path_factory):
    data = np.arange(24 * 6, dtype=np.float32).reshape(24, 6)

    class Rows:
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return data[i], i

    path = tmp_path_factory.mktemp('checks') / 'arrays.beton'
    DatasetWriter(str(path), {'x': NDArrayField(np.dtype('float32'), (6,)), 'y': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(Rows())
    return str(path), data


class Halve(Operation):
    """Declares a shape; ``wrong`` makes its code return another."""

    def __init__(self, wrong=False):
        super().__init__()
        self.wrong = wrong

    def generate_code(self):
        wrong = self.wrong
        my_range = Compiler.get_iterator()

        def halve(x, dst):
            for i in my_range(x.shape[0]):
                dst[i] = x[i, :3] * 0.5
            if wrong:
                return x          # shape (B, 6), not the declared (B, 3)
            return dst
        return halve

    def declare_state_and_memory(self, previous_state):
        return previous_state.replace(shape=(3,)), AllocationQuery((3,), previous_state.dtype)


def _pipelines(*ops):
    return {'x': [NDArrayDecoder(), *ops, ToTensor()], 'y': None}


def test_declared_shape_is_what_the_next_step_gets(arrays):
    path, data = arrays
    (batch,) = next(iter(Loader(path, batch_size=8, pipelines=_pipelines(Halve()))))
    assert batch.shape == (8, 3)
    assert np.array_equal(batch.numpy(), data[:8, :3] * 0.5)


def test_wrong_declared_shape_names_the_operation(arrays):
    path, _ = arrays
    loader = Loader(path, batch_size=8, pipelines=_pipelines(Halve(wrong=True)))
    with pytest.raises(PipelineError, match=r"pipeline 'x', step 1 \(.*Halve\) declared "
                                            r"State\(shape=\(3,\).*returned a batch of shape \(8, 6\)"):
        next(iter(loader))


class BadDeclaration(Operation):
    def __init__(self, declared):
        super().__init__()
        self.declared = declared

    def generate_code(self):
        def same(x, dst):
            return x
        return same

    def declare_state_and_memory(self, previous_state):
        return self.declared(previous_state)


@pytest.mark.parametrize('declared, message', [
    (lambda s: s, r"returned State\(.*expected \(State, AllocationQuery or None\)"),
    (lambda s: (s.shape, None), r"as its state; expected a ffcvx.pipeline.State"),
    (lambda s: (s, (4,)), r"declared 4 as its buffer|declared \(4,\) as its buffer"),
    (lambda s: (s, AllocationQuery((-1,), np.float32)), r"dimensions must be non-negative integers"),
])
def test_malformed_declarations_fail_at_construction(arrays, declared, message):
    path, _ = arrays
    with pytest.raises(PipelineError, match=r"pipeline 'x', step 1 \(.*BadDeclaration\)") as info:
        Loader(path, batch_size=8, pipelines=_pipelines(BadDeclaration(declared)))
    assert info.match(message)


class TypedWrong(Operation):
    # Declares a 2-D output but its code indexes the input as 3-D: a Numba typing error.
    def generate_code(self):
        def broken(x, dst):
            dst[0, 0, 0] = x[0, 0, 0]
            return dst
        return broken

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


def test_numba_errors_name_the_step(arrays):
    path, _ = arrays
    loader = Loader(path, batch_size=8, pipelines=_pipelines(TypedWrong()))
    with pytest.raises(PipelineError, match=r"pipeline 'x', step 1 \(.*TypedWrong\): its code failed "
                                            r"to compile for the buffers it declared"):
        next(iter(loader))


def test_unchanged_steps_keep_their_code_across_epochs(arrays):
    path, _ = arrays
    halve = Halve()
    loader = Loader(path, batch_size=8, pipelines=_pipelines(halve))
    codes = [step.code for step in loader.pipelines['x'].steps]
    buffers = [step.destination for step in loader.pipelines['x'].steps]
    for _ in range(2):
        for _ in loader:
            pass
    assert [step.code for step in loader.pipelines['x'].steps] == codes
    assert all(a is b for a, b in zip(buffers, (s.destination for s in loader.pipelines['x'].steps)))
    # a changed attribute regenerates that step's code (and only that step's)
    halve.wrong = True
    with pytest.raises(PipelineError):
        for _ in loader:
            pass
    new_codes = [step.code for step in loader.pipelines['x'].steps]
    assert new_codes[0] is codes[0] and new_codes[1] is not codes[1]


def test_recompile_generates_every_step_each_epoch(arrays):
    path, data = arrays

    class Scale(Operation):
        """Multiplies by a factor held where the re-plan check cannot see it (a list)."""
        def __init__(self):
            super().__init__()
            self.factor, self.generated = [0.5], 0

        def generate_code(self):
            self.generated += 1
            factor = float(self.factor[0])   # a closure constant, frozen into the machine code
            my_range = Compiler.get_iterator()

            def scale(x, dst):
                for i in my_range(x.shape[0]):
                    dst[i] = x[i, :3] * factor
                return dst
            return scale

        def declare_state_and_memory(self, previous_state):
            return previous_state.replace(shape=(3,)), AllocationQuery((3,), previous_state.dtype)

    op = Scale()
    loader = Loader(path, batch_size=8, recompile=True, pipelines=_pipelines(op))
    first = [step.code for step in loader.pipelines['x'].steps]
    epoch_1 = np.concatenate([b.numpy() for (b,) in loader])
    op.factor[0] = 2.0
    epoch_2 = np.concatenate([b.numpy() for (b,) in loader])
    # Generated again at every epoch (FFCV's meaning), so the new factor is used ...
    assert op.generated >= 3
    assert np.allclose(epoch_1, data[:len(epoch_1), :3] * 0.5)
    assert np.allclose(epoch_2, data[:len(epoch_2), :3] * 2.0)
    # ... while generated code equal to what was compiled before reuses it (code_cache).
    second = [step.code for step in loader.pipelines['x'].steps]
    assert first[0] is second[0] and first[1] is not second[1]


def test_a_decoder_of_another_field_cites_pip002(arrays):
    """spec/pipeline.md PIP-002: a decoder that does not decode the field is refused."""
    path, _ = arrays
    with pytest.raises(ValueError, match=r'IntDecoder cannot decode a NDArrayField.*PIP-002'):
        Loader(path, batch_size=4, pipelines={'x': [IntDecoder()], 'y': None})


def test_a_decoder_after_step_0_cites_pip011(arrays):
    """PIP-011: a decoder stands only at step 0."""
    path, _ = arrays
    with pytest.raises(PipelineError, match=r"pipeline 'y', step 1 \(IntDecoder\).*PIP-011"):
        Loader(path, batch_size=4, pipelines={'x': None, 'y': [IntDecoder(), IntDecoder()]})


class NotCode(Operation):
    """Its generate_code returns no code."""

    def generate_code(self):
        return 42

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


def test_code_that_is_not_callable_cites_pip003(arrays):
    """PIP-003: what generate_code returns is checked when the step is planned."""
    path, _ = arrays
    with pytest.raises(PipelineError, match=r"step 1 \(.*NotCode\)\.generate_code returned 42.*PIP-003"):
        Loader(path, batch_size=4, pipelines={'x': [NDArrayDecoder(), NotCode()], 'y': None})
