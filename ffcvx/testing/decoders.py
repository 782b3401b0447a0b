"""Conformance suite for decoder backends (entry-point group ``ffcvx.decoders``).

The checks follow ``spec/backends.md`` (section "Conformance") and are chosen
by what a backend *declares* (``formats``, ``supports_crop``,
``supports_scale``, ``supports_gray``, ``kind``), never by its name. Every check of
:data:`CHECKS` ends as ``pass``, ``fail`` or ``skip``; a skip always carries
its reason (a capability not declared, the backend unavailable, no golden
files).

Running it
----------
From the command line (the must-have entry)::

    ffcvx conformance --backend NAME [--golden-dir DIR] [-v]

As a pytest module, one test per (backend, check), with the plugin's options::

    pytest -p ffcvx.testing.plugin --pyargs ffcvx.testing.decoders --ffcvx-backend mine

``--ffcvx-backend`` (repeatable; default: every registered backend) and
``--ffcvx-golden-dir``; without the plugin, the environment variables
``FFCVX_BACKEND`` (comma separated) and ``FFCVX_GOLDEN_DIR`` do the same. From Python::

    from ffcvx.testing.decoders import run_suite
    results = run_suite(backend_object)

Inputs
------
The spec vectors, package data of this package (``ffcvx/testing/vectors``:
small ``.beton`` files written by ffcvx, gzipped, with ``vectors.json``;
``spec/vectors/make_vectors.py`` of the source tree writes them), so an
installed ffcvx has them too; and FFCV 1.0.2's golden JPEG files when found
(``shared/golden/ffcv-1.0.2``). The ``gray`` check makes its one-component
JPEGs and PNGs itself with Pillow (:func:`gray_inputs`): it compares two
decodes of the same bytes, so it needs no reference pixels.
"""
import ctypes
import gzip
import hashlib
import importlib.resources
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend_api import (CALLABLE_KINDS, DECODE_BAD_ARGUMENT, DECODE_CAPACITY, DECODE_CORRUPT,
                           DECODE_OK, DECODE_REGION_PROTO, DEVICES, FORMATS, GRAY_FUNCTION, KINDS,
                           choose_scale, scaled_range)
from ..errors import DecodeError

__all__ = ['CHECKS', 'CheckResult', 'Vectors', 'run_suite', 'format_table', 'vectors_dir',
           'gray_inputs', 'SCALED_MEAN', 'TIMEOUT_S']

#: Every check, in the order they run and print: (name, clauses, what it checks).
CHECKS = (
    ('interface', 'BKD-001..005', "attributes, formats, device, kind; available() returns (bool, str)"),
    ('function-address', 'BKD-010', "function_address('decode_region') is an int; other names KeyError"),
    ('jpeg-vectors', 'BKD-023', "JPEG spec vectors within BKD-023 of the reference pixels"),
    ('jpeg-golden', 'BKD-023', "FFCV 1.0.2 golden JPEGs within the golden README's max-abs tolerance"),
    ('png-vectors', 'BKD-023', "PNG spec vectors decode to exactly the source pixels"),
    ('raw-vectors', 'BKD-002', "raw spec vectors come back as exactly the stored pixels"),
    ('layout', 'BKD-012, BKD-030', "C-contiguous uint8 (H, W, 3); decode_region == decode_region_py"),
    ('crop', 'BKD-016, BKD-019', "crop decode == full decode then crop, exactly, edges included"),
    ('scale', 'BKD-017', "scaled size by the k/8 rule; pixels close to full decode then resize"),
    ('target-ignored', 'BKD-018', "without scale support a target changes nothing"),
    ('threads', 'BKD-006', "decode_region from 4 threads at once == serial decode"),
    ('capacity', 'BKD-014', "status -2, out untouched and out_hw filled when out is too small or NULL"),
    ('bad-arguments', 'BKD-015', "status -3 for bad crops; ValueError from decode_region_py"),
    ('corrupt', 'BKD-021, BKD-022', "truncated, damaged and foreign data: status -1 and DecodeError, no crash"),
    ('gray', 'BKD-025, BKD-026', "decode_region_gray == channel 0 of decode_region on gray JPEG/PNG; "
                                 "capacity -2, corrupt -1"),
    ('batch', 'BKD-042', "decode_batch: (B, H, W, 3) uint8 within BKD-023 of the reference"),
)
CHECK_NAMES = tuple(name for name, _, _ in CHECKS)

#: mean |scaled decode - (full decode then resize)| allowed per DCT scale k/8
#: (BKD-060; BKD-017 fixes the size, not the filter; the DCT-domain downscale is a
#: different low-pass filter than ffcvx's resize).
SCALED_MEAN = {1: 8.0, 2: 6.0, 4: 6.5, 8: 0.0}
#: Seconds the child process of the corrupt-data check may take.
TIMEOUT_S = 120
#: Threads of the parallel-decode check.
THREADS = 4


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        One of :data:`CHECK_NAMES`.
    status : str
        ``'pass'``, ``'fail'`` or ``'skip'``.
    detail : str
        For a skip its reason, for a failure what went wrong, for a pass a
        summary (what was checked).
    clauses : str
        The BKD clauses the check enforces.
    """

    name: str
    status: str
    detail: str = ''
    clauses: str = ''


class _Skip(Exception):
    """Raised inside a check: the check does not apply (message: the reason)."""


class _Fail(AssertionError):
    """Raised inside a check: the backend broke the contract (message: how)."""


def _require(condition, message):
    if not condition:
        raise _Fail(message)


# ---------------------------------------------------------------------------
# inputs

def vectors_dir():
    """The folder of the spec vectors: package data ``vectors`` of ``ffcvx.testing``.

    Found through :mod:`importlib.resources`, not the source tree, so that a
    non-editable install finds the copy it carries.

    Returns
    -------
    importlib.resources.abc.Traversable
        A :class:`pathlib.Path` when ffcvx is installed as plain files (the
        usual case); :class:`Vectors` reads it only through ``/``,
        ``read_text`` and ``read_bytes``, so a zipped install works too.
    """
    return importlib.resources.files('ffcvx.testing') / 'vectors'


class Vectors:
    """The spec vectors: encoded samples, their expected pixels and tolerances.

    Parameters
    ----------
    folder : str, os.PathLike or Traversable, optional
        Where ``vectors.json`` and the ``*.beton.gz`` files are; default
        :func:`vectors_dir`.

    Attributes
    ----------
    manifest : dict
        ``vectors.json``.
    samples : dict of str to list of dict
        Per format (``jpeg``, ``png``, ``raw``): one dict per sample with
        ``data`` (the stored bytes), ``height``, ``width``, ``pixels_sha256``
        and, for JPEG, ``reference`` (the reference pixels).
    """

    def __init__(self, folder=None):
        from ..reader import Reader

        if folder is None:
            folder = vectors_dir()
        elif isinstance(folder, (str, os.PathLike)):
            folder = Path(folder)
        self.manifest = json.loads((folder / 'vectors.json').read_text())
        self.samples = {}
        references = {}
        jpeg = self.manifest['files'].get('jpeg', {})
        if jpeg.get('reference_npz'):
            # through bytes: np.load wants a real file, a Traversable need not be one
            with np.load(io.BytesIO((folder / jpeg['reference_npz']).read_bytes())) as npz:
                references = {key: npz[key] for key in npz.files}
        with tempfile.TemporaryDirectory(prefix='ffcvx-vectors-') as tmp:
            for fmt, entry in self.manifest['files'].items():
                raw = gzip.decompress((folder / entry['beton_gz']).read_bytes())
                if hashlib.sha256(raw).hexdigest() != entry['beton_sha256']:
                    raise ValueError(f"{entry['beton_gz']}: sha256 differs from vectors.json")
                path = os.path.join(tmp, f'{fmt}.beton')
                with open(path, 'wb') as f:
                    f.write(raw)
                reader = Reader(path)
                rows = []
                for i, meta in enumerate(entry['samples']):
                    data = bytes(reader.read_sample_region(i, entry['field']))
                    if hashlib.sha256(data).hexdigest() != meta['stored_sha256']:
                        raise ValueError(f"{fmt} vector {i}: stored bytes differ from vectors.json")
                    row = dict(meta, data=data, index=i)
                    if fmt == 'jpeg':
                        row['reference'] = references[f'sample{i}']
                        if _sha(row['reference']) != meta['pixels_sha256']:
                            raise ValueError(f"jpeg vector {i}: reference pixels differ from "
                                             f"vectors.json")
                    rows.append(row)
                self.samples[fmt] = rows

    def jpeg_tolerance(self):
        """``(max_abs, mean_abs)`` for JPEG pixels (BKD-023)."""
        tol = self.manifest['files']['jpeg']['tolerance']
        return tol['max_abs'], tol['mean_abs']


def _sha(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _golden_jpegs(golden_dir, limit=None):
    """``(case, index, data, expected_pixels, max_abs)`` of every JPEG sample of the golden files."""
    from ..reader import Reader

    out = []
    for sidecar in sorted(Path(golden_dir).glob('*.json')):
        meta = json.loads(sidecar.read_text())
        for field, entry in meta.get('samples', {}).items():
            if entry.get('kind') != 'rgb_image' or 'jpeg' not in entry or not meta.get('npz'):
                continue
            max_abs = entry['jpeg']['suggested_tolerance']['max_abs']
            reader = Reader(str(Path(golden_dir) / meta['beton']))
            with np.load(Path(golden_dir) / meta['npz']) as npz:
                for i, mode in enumerate(entry['modes']):
                    if mode != 'jpg':
                        continue
                    data = bytes(reader.read_sample_region(i, field))
                    expected = npz[f"{entry['npz_key_prefix']}{i}"]
                    out.append((meta['case'], i, data, expected, max_abs))
    return out[:limit] if limit else out


# ---------------------------------------------------------------------------
# calling a backend

class _Caller:
    """Calls a backend's C ``decode_region`` (or ``decode_region_gray``) through ctypes (BKD-010)."""

    def __init__(self, backend, function='decode_region'):
        self.function = DECODE_REGION_PROTO(backend.function_address(function))
        #: bytes per output pixel (BKD-012, BKD-026)
        self.channels = 1 if function == GRAY_FUNCTION else 3

    def __call__(self, data, crop, target=(0, 0), capacity=None, null_out=False):
        """``(status, out_hw, out)``: one call with a fresh output buffer of ``capacity`` bytes."""
        src = np.frombuffer(data, dtype=np.uint8)
        if capacity is None:
            capacity = max(crop[2] * crop[3] * self.channels, 1)
        # 64 guard bytes past the capacity catch writes beyond out_capacity (BKD-006).
        out = np.full(capacity + 64, 0xA5, dtype=np.uint8)
        hw = np.full(2, -7, dtype=np.int64)
        status = self.function(src.ctypes.data if src.size else None, src.size,
                               *crop, *target, None if null_out else out.ctypes.data, capacity,
                               hw.ctypes.data)
        return status, hw, out


def _decode_c(caller, data, crop, target=(0, 0)):
    """Pixels from ``decode_region``, growing the buffer once on status -2 (BKD-014).

    ``(h, w, 3)``, or ``(h, w)`` when ``caller`` calls ``decode_region_gray``.
    """
    c = caller.channels
    status, hw, out = caller(data, crop, target)
    if status == DECODE_CAPACITY:
        status, hw, out = caller(data, crop, target, capacity=int(hw[0] * hw[1] * c))
    _require(status == DECODE_OK, f"decode_region{'_gray' if c == 1 else ''} returned {status} "
                                  f"for crop {crop}, target {target}")
    _require(np.all(out[out.size - 64:] == 0xA5), "decode_region wrote past out_capacity")
    h, w = int(hw[0]), int(hw[1])
    return out[:h * w * c].reshape((h, w) if c == 1 else (h, w, 3)).copy()


def _samples(vectors, backend, formats=('jpeg', 'png')):
    """Vector samples of the declared image formats."""
    return [s for fmt in formats if fmt in backend.formats for s in vectors.samples[fmt]]


def _diff(a, b):
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), float(d.mean())


# ---------------------------------------------------------------------------
# the checks; each returns a summary or raises _Skip / _Fail

def _check_interface(ctx):
    b = ctx.backend
    _require(isinstance(getattr(b, 'name', None), str) and b.name,
             "name is not a non-empty str")
    if ctx.name is not None:
        _require(b.name == ctx.name, f"name {b.name!r} differs from the entry point {ctx.name!r}")
    formats = getattr(b, 'formats', None)
    _require(isinstance(formats, frozenset) and formats and formats <= FORMATS,
             f"formats {formats!r} is not a non-empty frozenset within {sorted(FORMATS)}")
    for attr in ('supports_crop', 'supports_scale'):
        _require(isinstance(getattr(b, attr, None), bool), f"{attr} is not a bool")
    _require(isinstance(getattr(b, 'supports_gray', False), bool),
             "supports_gray is not a bool (BKD-025; absent means False)")
    if getattr(b, 'supports_gray', False):
        _require(b.kind in CALLABLE_KINDS, "a batch backend declares supports_gray (BKD-025)")
    _require(getattr(b, 'device', None) in DEVICES, f"device {getattr(b, 'device', None)!r}")
    _require(getattr(b, 'kind', None) in KINDS, f"kind {getattr(b, 'kind', None)!r}")
    if b.kind in CALLABLE_KINDS:
        _require(b.device == 'cpu', f"a {b.kind} backend must have device 'cpu' (BKD-003)")
    result = ctx.availability
    _require(isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
             and isinstance(result[1], str), f"available() returned {result!r}")
    _require(result[0] or result[1], "available() is False with an empty reason")
    return (f"{b.kind}, {b.device}, formats {'+'.join(sorted(formats))}, "
            f"crop {b.supports_crop}, scale {b.supports_scale}")


def _needs_callable(ctx):
    if ctx.backend.kind not in CALLABLE_KINDS:
        raise _Skip(f"kind is {ctx.backend.kind!r}: no decode_region (BKD-042)")
    ctx.require_available()


def _check_function_address(ctx):
    _needs_callable(ctx)
    address = ctx.backend.function_address('decode_region')
    _require(isinstance(address, int) and address != 0, f"address {address!r} is not a non-zero int")
    names = ['no_such_function']
    if not getattr(ctx.backend, 'supports_gray', False):
        names.append(GRAY_FUNCTION)      # only with supports_gray (BKD-010, BKD-025)
    for name in names:
        try:
            ctx.backend.function_address(name)
        except KeyError:
            continue
        raise _Fail(f"function_address({name!r}) did not raise KeyError")
    return f"decode_region address; KeyError for {', '.join(names)}"


def _check_jpeg_vectors(ctx):
    if 'jpeg' not in ctx.backend.formats:
        raise _Skip("'jpeg' not in formats")
    _needs_callable(ctx)
    max_tol, mean_tol = ctx.vectors.jpeg_tolerance()
    worst_max, worst_mean = 0, 0.0
    for s in ctx.vectors.samples['jpeg']:
        got = ctx.backend.decode_region_py(s['data'])
        _require(got.shape == s['reference'].shape,
                 f"jpeg vector {s['index']}: shape {got.shape}, expected {s['reference'].shape}")
        mx, mean = _diff(got, s['reference'])
        _require(mx <= max_tol and mean <= mean_tol,
                 f"jpeg vector {s['index']}: max abs {mx} (<= {max_tol}), mean abs {mean:.2f} "
                 f"(<= {mean_tol}) against the reference pixels")
        worst_max, worst_mean = max(worst_max, mx), max(worst_mean, mean)
    return (f"{len(ctx.vectors.samples['jpeg'])} samples, max abs {worst_max}, "
            f"mean abs {worst_mean:.2f} (tolerance {max_tol}, {mean_tol})")


def _check_jpeg_golden(ctx):
    if 'jpeg' not in ctx.backend.formats:
        raise _Skip("'jpeg' not in formats")
    _needs_callable(ctx)
    if ctx.golden_dir is None:
        raise _Skip("golden files not found (pass --golden-dir DIR)")
    cases = _golden_jpegs(ctx.golden_dir)
    if not cases:
        raise _Skip(f"no JPEG samples in the golden files of {ctx.golden_dir}")
    worst = 0
    for case, i, data, expected, max_abs in cases:
        got = ctx.backend.decode_region_py(data)
        _require(got.shape == expected.shape, f"golden {case} sample {i}: shape {got.shape}, "
                                              f"expected {expected.shape}")
        mx, _ = _diff(got, expected)
        _require(mx <= max_abs, f"golden {case} sample {i}: max abs {mx} > {max_abs} "
                                f"(golden README tolerance)")
        worst = max(worst, mx)
    return f"{len(cases)} golden JPEGs, max abs {worst} (tolerance {cases[0][4]})"


def _check_exact_vectors(ctx, fmt):
    if fmt not in ctx.backend.formats:
        reason = f"{fmt!r} not in formats"
        if fmt == 'raw':
            reason += " (CPU decoders copy raw pixels themselves, BKD-002)"
        raise _Skip(reason)
    if ctx.backend.kind == 'batch':
        raise _Skip(f"kind is 'batch': {fmt} samples are checked by the batch check")
    ctx.require_available()
    for s in ctx.vectors.samples[fmt]:
        got = ctx.backend.decode_region_py(s['data'])
        _require(got.shape == (s['height'], s['width'], 3),
                 f"{fmt} vector {s['index']}: shape {got.shape}, expected "
                 f"{(s['height'], s['width'], 3)}")
        _require(_sha(got) == s['pixels_sha256'],
                 f"{fmt} vector {s['index']}: pixels differ from the source image "
                 f"({_sha(got)[:12]} != {s['pixels_sha256'][:12]})")
    return f"{len(ctx.vectors.samples[fmt])} samples, exact"


def _check_layout(ctx):
    _needs_callable(ctx)
    caller = _Caller(ctx.backend)
    samples = _samples(ctx.vectors, ctx.backend)
    for s in samples:
        got = ctx.backend.decode_region_py(s['data'])
        _require(isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.flags.c_contiguous
                 and got.shape == (s['height'], s['width'], 3),
                 f"vector {s['index']}: decode_region_py gave {type(got).__name__} "
                 f"{getattr(got, 'dtype', None)} {getattr(got, 'shape', None)}, not C-contiguous "
                 f"uint8 {(s['height'], s['width'], 3)}")
        c = _decode_c(caller, s['data'], (0, 0, s['height'], s['width']))
        _require(np.array_equal(c, got), f"vector {s['index']}: decode_region and "
                                         f"decode_region_py differ (BKD-030)")
    return f"{len(samples)} samples through decode_region and decode_region_py"


def _crops(h, w):
    """Crops of an h x w image: corners, edges, odd offsets, single pixels."""
    crops = {(0, 0, h, w), (0, 0, 1, 1), (h - 1, w - 1, 1, 1), (0, w - 1, h, 1), (h - 1, 0, 1, w)}
    if h > 4 and w > 4:
        crops |= {(1, 1, h - 2, w - 2), (h // 3, w // 5, h // 2, w // 2), (3, 5, h - 4, w - 6),
                  (h // 2, 0, (h + 1) // 2, w // 3 + 1), (0, w // 2 + 1, h // 2 + 1, w - w // 2 - 1)}
    return sorted(c for c in crops if c[2] > 0 and c[3] > 0)


def _check_crop(ctx):
    _needs_callable(ctx)
    if not ctx.backend.supports_crop:
        raise _Skip("supports_crop is False (BKD-019: whole decode, then the window is copied)")
    caller = _Caller(ctx.backend)
    count = 0
    for s in _samples(ctx.vectors, ctx.backend):
        full = ctx.backend.decode_region_py(s['data'])
        for crop in _crops(s['height'], s['width']):
            y, x, h, w = crop
            want = full[y:y + h, x:x + w]
            got = ctx.backend.decode_region_py(s['data'], crop)
            _require(np.array_equal(got, want),
                     f"vector {s['index']} crop {crop}: decode_region_py differs from the full "
                     f"decode's window (max abs {_diff(got, want)[0] if got.shape == want.shape else got.shape})")
            _require(np.array_equal(_decode_c(caller, s['data'], crop), want),
                     f"vector {s['index']} crop {crop}: decode_region differs from the window")
            count += 1
    return f"{count} crops, exact"


def _check_scale(ctx):
    _needs_callable(ctx)
    if not ctx.backend.supports_scale:
        raise _Skip("supports_scale is False (BKD-018)")
    from .._ext.resize import resize_rgb

    seen, count = set(), 0
    for s in _samples(ctx.vectors, ctx.backend):
        H, W = s['height'], s['width']
        if min(H, W) < 32:
            # too small for 1/8 scale, and the one noise JPEG is 17x23: DCT
            # scaling of pure noise is far from any resize, so it proves nothing
            continue
        full = ctx.backend.decode_region_py(s['data'])
        cases = [((0, 0, H, W), (H // 2, W // 2)), ((0, 0, H, W), (H // 4, W // 4)),
                 ((0, 0, H, W), (H // 8, W // 8)), ((0, 0, H, W), (0, 0)),
                 ((3, 5, H - 7, W - 9), ((H - 7) // 4, (W - 9) // 4))]
        for (y, x, h, w), target in cases:
            got = ctx.backend.decode_region_py(s['data'], (y, x, h, w), target)
            k = choose_scale(h, w, *target)
            y0, y1 = scaled_range(y, h, k)
            x0, x1 = scaled_range(x, w, k)
            _require(got.shape == (y1 - y0, x1 - x0, 3),
                     f"vector {s['index']} crop {(y, x, h, w)} target {target}: shape "
                     f"{got.shape}, the k={k} rule gives {(y1 - y0, x1 - x0, 3)}")
            step = 8 // k
            ref = np.empty_like(got)
            resize_rgb(np.ascontiguousarray(full[y0 * step:min(y1 * step, H),
                                                 x0 * step:min(x1 * step, W)]), ref)
            _, mean = _diff(got, ref)
            _require(mean <= SCALED_MEAN[k],
                     f"vector {s['index']} crop {(y, x, h, w)} target {target} (k={k}): mean abs "
                     f"{mean:.2f} > {SCALED_MEAN[k]} against full decode then resize")
            _require(np.array_equal(_decode_c(_Caller(ctx.backend), s['data'], (y, x, h, w),
                                               target), got),
                     f"vector {s['index']}: decode_region and decode_region_py differ at k={k}")
            seen.add(k)
            count += 1
    _require(count > 0, "no vector large enough to check scaling")
    return f"{count} scaled decodes, k in {sorted(seen)}"


def _check_target_ignored(ctx):
    _needs_callable(ctx)
    if ctx.backend.supports_scale:
        raise _Skip("supports_scale is True (the scale check applies)")
    count = 0
    for s in _samples(ctx.vectors, ctx.backend):
        H, W = s['height'], s['width']
        full = ctx.backend.decode_region_py(s['data'])
        got = ctx.backend.decode_region_py(s['data'], (0, 0, H, W), (max(H // 8, 1), max(W // 8, 1)))
        _require(np.array_equal(got, full), f"vector {s['index']}: a target changed the output")
        count += 1
    return f"{count} samples"


def _check_threads(ctx):
    _needs_callable(ctx)
    caller = _Caller(ctx.backend)
    jobs = []
    for s in _samples(ctx.vectors, ctx.backend):
        for crop in _crops(s['height'], s['width'])[:4]:
            jobs.append((s['data'], crop))
    serial = [_decode_c(caller, data, crop) for data, crop in jobs]
    results = [None] * (len(jobs) * THREADS)
    errors = []

    def work(t):
        try:
            # each thread walks the jobs in its own order, so different images overlap
            start = (t * len(jobs)) // THREADS
            for j in list(range(start, len(jobs))) + list(range(start)):
                results[t * len(jobs) + j] = _decode_c(caller, *jobs[j])
        except BaseException as exc:  # noqa: B036 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise _Fail(f"a thread failed: {errors[0]}")
    for i, got in enumerate(results):
        _require(got is not None and np.array_equal(got, serial[i % len(jobs)]),
                 f"job {i % len(jobs)} decoded differently in thread {i // len(jobs)}")
    return f"{len(jobs)} decodes x {THREADS} threads == serial"


def _check_capacity(ctx):
    _needs_callable(ctx)
    caller = _Caller(ctx.backend)
    count = 0
    for s in _samples(ctx.vectors, ctx.backend):
        H, W = s['height'], s['width']
        need = H * W * 3
        for capacity, null in ((need - 1, False), (0, False), (need, True)):
            status, hw, out = caller(s['data'], (0, 0, H, W), capacity=max(capacity, 0),
                                     null_out=null)
            what = "a NULL out" if null else f"capacity {capacity} < {need}"
            _require(status == DECODE_CAPACITY,
                     f"vector {s['index']}: status {status} for {what}, expected -2")
            _require(np.all(out == 0xA5), f"vector {s['index']}: out was written with {what}")
            _require((int(hw[0]), int(hw[1])) == (H, W),
                     f"vector {s['index']}: out_hw {hw.tolist()} with {what}, expected {[H, W]}")
            count += 1
    return f"{count} calls"


def _check_bad_arguments(ctx):
    _needs_callable(ctx)
    caller = _Caller(ctx.backend)
    count = 0
    for s in _samples(ctx.vectors, ctx.backend)[:4]:
        H, W = s['height'], s['width']
        for crop in ((0, 0, 0, W), (0, 0, H, 0), (-1, 0, H, W), (0, -1, H, W),
                     (0, 0, H + 1, W), (0, 0, H, W + 1), (H, 0, 1, 1), (0, W, 1, 1)):
            status, _, _ = caller(s['data'], crop, capacity=(H + 2) * (W + 2) * 3)
            _require(status == DECODE_BAD_ARGUMENT,
                     f"vector {s['index']} ({H}x{W}) crop {crop}: status {status}, expected -3")
            try:
                ctx.backend.decode_region_py(s['data'], crop)
            except ValueError:
                pass
            else:
                raise _Fail(f"vector {s['index']} crop {crop}: decode_region_py did not raise "
                            f"ValueError")
            count += 1
    return f"{count} bad crops"


def corrupt_inputs(vectors, formats):
    """``(label, data, crop)`` every backend declaring ``formats`` MUST refuse with -1.

    The crop is the whole image the data came from: a backend that decodes
    only the crop may stop before the damage (see the Conformance section of
    ``spec/backends.md``). Truncated files (BKD-022), a damaged JPEG header, a PNG with a damaged
    chunk (its CRC no longer matches), data of a format not declared and data
    with no known signature (BKD-021).
    """
    cases = []
    rng = np.random.default_rng(7)
    if 'jpeg' in formats:
        s = max(vectors.samples['jpeg'], key=lambda s: len(s['data']))
        data, whole = s['data'], (0, 0, s['height'], s['width'])
        sos = data.rfind(b'\xff\xda')
        cases += [('jpeg truncated in the scan', data[:(sos + len(data)) // 2], whole),
                  ('jpeg truncated to 4 bytes', data[:4], whole),
                  ('jpeg without its end marker', data[:-2], whole),
                  ('jpeg header garbage', data[:2] + rng.integers(0, 256, 200, dtype=np.uint8)
                   .tobytes().replace(b'\xff', b'\x00') + b'\xff\xd9', whole)]
    else:
        s = vectors.samples['jpeg'][-1]
        cases.append(('jpeg, not declared', s['data'], (0, 0, s['height'], s['width'])))
    if 'png' in formats:
        s = max(vectors.samples['png'], key=lambda s: len(s['data']))
        data, whole = s['data'], (0, 0, s['height'], s['width'])
        idat = data.find(b'IDAT')
        damaged = bytearray(data)
        damaged[idat + 20] ^= 0xFF
        cases += [('png truncated', data[:len(data) // 2], whole),
                  ('png without IEND', data[:data.rfind(b'IEND') - 4], whole),
                  ('png damaged IDAT', bytes(damaged), whole)]
    else:
        s = vectors.samples['png'][-1]
        cases.append(('png, not declared', s['data'], (0, 0, s['height'], s['width'])))
    cases.append(('no known signature', rng.integers(0, 256, 300, dtype=np.uint8).tobytes(),
                  (0, 0, 1, 1)))
    return cases


def corrupt_report(backend, vectors):
    """Run the corrupt inputs through ``backend``; ``[(label, status, raised, message)]``.

    ``raised`` is the name of what ``decode_region_py`` raised (or ``None``).
    """
    caller = _Caller(backend)
    report = []
    for label, data, crop in corrupt_inputs(vectors, backend.formats):
        status, _, _ = caller(data, crop, capacity=crop[2] * crop[3] * 3)
        try:
            backend.decode_region_py(data)
            raised, message = None, ''
        except DecodeError as exc:
            raised, message = 'DecodeError', str(exc)
        except Exception as exc:  # anything else is a failure the parent reports
            raised, message = type(exc).__name__, str(exc)
        report.append((label, int(status), raised, message))
    return report


def _check_corrupt(ctx):
    _needs_callable(ctx)
    if ctx.name is not None and ctx.isolate:
        report = _in_child(ctx, gray=False)
    else:
        report = corrupt_report(ctx.backend, ctx.vectors)
    for label, status, raised, message in report:
        _require(status == DECODE_CORRUPT, f"{label}: status {status}, expected -1")
        _require(raised == 'DecodeError' and message,
                 f"{label}: decode_region_py raised {raised or 'nothing'}, expected a DecodeError "
                 f"with a message")
    return f"{len(report)} inputs refused" + (" (in a child process)" if ctx.isolate and ctx.name else "")


def _corrupt_child(name, gray=False):
    from ..registry import Registry

    backend = Registry('ffcvx.decoders').get(name)
    report = gray_corrupt_report(backend, Vectors()) if gray else corrupt_report(backend, Vectors())
    print(json.dumps(report))


def _in_child(ctx, gray):
    """The corrupt-data report of ``ctx.backend`` computed in a child process.

    A crash on bad data (BKD-006 forbids it) must fail the check, not end the suite.
    """
    code = ("import sys; from ffcvx.testing.decoders import _corrupt_child; "
            "_corrupt_child(sys.argv[1], sys.argv[2] == 'gray')")
    proc = subprocess.run([sys.executable, '-c', code, ctx.name, 'gray' if gray else 'rgb'],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise _Fail(f"the child decoding corrupt data exited with {proc.returncode}: "
                    f"{' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: (height, width, kind, variant) of the one-component images of the gray check;
#: variant 'progressive' (JPEG) and 'alpha' (a gray + alpha PNG, colour type 4).
GRAY_SHAPES = ((1, 1, 'noise', ''), (17, 23, 'noise', ''), (48, 64, 'smooth', ''),
               (131, 97, 'smooth', ''), (64, 80, 'smooth', 'progressive'), (40, 72, 'noise', 'alpha'))


def gray_inputs(formats, seed=20260102):
    """One-component (grayscale) images of ``formats``, encoded by Pillow (BKD-026).

    Parameters
    ----------
    formats : collection of str
        ``'jpeg'`` and/or ``'png'`` are used.
    seed : int
        Seed of the pixels (the bytes also depend on Pillow's encoders).

    Returns
    -------
    list of (label, data, height, width)
        JPEGs of one component (baseline at quality 90, one progressive),
        PNGs of colour type 0 (8-bit) and one of colour type 4.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for h, w, kind, variant in GRAY_SHAPES:
        if kind == 'noise':
            pixels = rng.integers(0, 256, (h, w), dtype=np.uint8)
        else:
            yy, xx = np.mgrid[0:h, 0:w]
            pixels = np.clip(128 + 90 * np.sin(xx / 6.0) * np.cos(yy / 9.0)
                             + rng.normal(0, 5, (h, w)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, 'L')
        if 'jpeg' in formats and variant != 'alpha':
            buf = io.BytesIO()
            image.save(buf, 'JPEG', quality=90, progressive=variant == 'progressive')
            out.append((f"gray jpeg {h}x{w}{' ' + variant if variant else ''}", buf.getvalue(), h, w))
        if 'png' in formats and variant != 'progressive':
            buf = io.BytesIO()
            if variant == 'alpha':
                alpha = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), 'L')
                Image.merge('LA', (image, alpha)).save(buf, 'PNG')
            else:
                image.save(buf, 'PNG')
            out.append((f"gray png {h}x{w}{' ' + variant if variant else ''}", buf.getvalue(), h, w))
    return out


def gray_corrupt_report(backend, vectors):
    """``[(label, status)]`` of ``decode_region_gray`` on data it MUST refuse with -1 (BKD-026).

    The inputs of :func:`corrupt_inputs`, and gray JPEGs and PNGs of the
    declared formats truncated in the middle.
    """
    caller = _Caller(backend, GRAY_FUNCTION)
    cases = corrupt_inputs(vectors, backend.formats)
    for label, data, h, w in gray_inputs(backend.formats):
        if h * w > 1000:
            cases.append((f"{label} truncated", data[:len(data) // 2], (0, 0, h, w)))
    return [(label, int(caller(data, crop, capacity=crop[2] * crop[3])[0]))
            for label, data, crop in cases]


def _gray_cases(backend, h, w):
    """(crop, target) pairs: whole image, crops, and DCT-scale targets when declared."""
    cases = [((0, 0, h, w), (0, 0))] + [(c, (0, 0)) for c in _crops(h, w) if c != (0, 0, h, w)]
    if backend.supports_scale and min(h, w) >= 16:
        cases += [((0, 0, h, w), (h // 2, w // 2)), ((0, 0, h, w), (h // 8, w // 8)),
                  ((3, 5, h - 7, w - 9), ((h - 7) // 4, (w - 9) // 4))]
    return cases


def _check_gray(ctx):
    b = ctx.backend
    if not getattr(b, 'supports_gray', False):
        raise _Skip("supports_gray is False or absent (BKD-025: callers use decode_region)")
    _needs_callable(ctx)
    rgb, gray = _Caller(b), _Caller(b, GRAY_FUNCTION)
    inputs = gray_inputs(b.formats)
    _require(inputs, f"no gray inputs for formats {sorted(b.formats)}")
    count = 0
    for label, data, h, w in inputs:
        for crop, target in _gray_cases(b, h, w):
            s_rgb, hw_rgb, out_rgb = rgb(data, crop, target, capacity=h * w * 3)
            s_gray, hw_gray, out_gray = gray(data, crop, target, capacity=h * w)
            what = f"{label} crop {crop} target {target}"
            _require(s_gray == s_rgb == DECODE_OK,
                     f"{what}: status {s_gray} from decode_region_gray, {s_rgb} from decode_region")
            _require(hw_gray.tolist() == hw_rgb.tolist(),
                     f"{what}: out_hw {hw_gray.tolist()}, decode_region gave {hw_rgb.tolist()}")
            oh, ow = int(hw_rgb[0]), int(hw_rgb[1])
            want = out_rgb[:oh * ow * 3].reshape(oh, ow, 3)[:, :, 0]
            got = out_gray[:oh * ow].reshape(oh, ow)
            _require(np.array_equal(got, want),
                     f"{what}: not channel 0 of decode_region (max abs {_diff(got, want)[0]})")
            _require(np.all(out_gray[oh * ow:] == 0xA5),
                     f"{what}: decode_region_gray wrote past h * w bytes")
            count += 1
        status, hw, out = gray(data, (0, 0, h, w), capacity=h * w - 1)
        _require(status == DECODE_CAPACITY and np.all(out == 0xA5)
                 and (int(hw[0]), int(hw[1])) == (h, w),
                 f"{label}: capacity h * w - 1 gave status {status}, out_hw {hw.tolist()}, "
                 f"out {'untouched' if np.all(out == 0xA5) else 'written'} (BKD-014, BKD-026)")
        status, _, _ = gray(data, (0, 0, h + 1, w), capacity=(h + 1) * w)
        _require(status == DECODE_BAD_ARGUMENT, f"{label}: crop outside the image gave status "
                                                f"{status}, expected -3 (BKD-015)")
    if ctx.name is not None and ctx.isolate:
        report = _in_child(ctx, gray=True)
    else:
        report = gray_corrupt_report(b, ctx.vectors)
    for label, status in report:
        _require(status == DECODE_CORRUPT, f"decode_region_gray, {label}: status {status}, "
                                           f"expected -1")
    return (f"{len(inputs)} gray images, {count} regions == channel 0 of decode_region; "
            f"{len(report)} corrupt inputs refused")


def _check_batch(ctx):
    b = ctx.backend
    if b.kind != 'batch':
        raise _Skip(f"kind is {b.kind!r}, not 'batch'")
    ctx.require_available()
    if 'jpeg' not in b.formats:
        raise _Skip("'jpeg' not in formats")
    import torch

    max_tol, mean_tol = ctx.vectors.jpeg_tolerance()
    samples = ctx.vectors.samples['jpeg']
    count = 0
    for s in samples:
        out = b.decode_batch([np.frombuffer(s['data'], dtype=np.uint8)],
                             output_size=(s['height'], s['width']), device=b.device)
        _require(isinstance(out, torch.Tensor) and out.dtype == torch.uint8
                 and tuple(out.shape) == (1, s['height'], s['width'], 3),
                 f"jpeg vector {s['index']}: decode_batch gave {getattr(out, 'dtype', None)} "
                 f"{tuple(getattr(out, 'shape', ()))}")
        got = out[0].cpu().numpy()
        mx, mean = _diff(got, s['reference'])
        _require(mx <= max_tol and mean <= mean_tol,
                 f"jpeg vector {s['index']}: max abs {mx}, mean abs {mean:.2f} against the reference")
        count += 1
    bad = samples[-1]['data']
    try:
        b.decode_batch([np.frombuffer(samples[0]['data'], dtype=np.uint8),
                        np.frombuffer(bad[:len(bad) // 2], dtype=np.uint8)],
                       output_size=(8, 8), device=b.device)
    except DecodeError as exc:
        # BKD-042: the error says which sample of the batch failed.
        _require(getattr(exc, 'position', None) == 1, f"a truncated sample 1 was reported at "
                                                      f"position {getattr(exc, 'position', None)}")
    else:
        raise _Fail("decode_batch accepted a truncated JPEG")
    return f"{count} batches; a truncated sample raises DecodeError"


_RUNNERS = {
    'interface': _check_interface,
    'function-address': _check_function_address,
    'jpeg-vectors': _check_jpeg_vectors,
    'jpeg-golden': _check_jpeg_golden,
    'png-vectors': lambda ctx: _check_exact_vectors(ctx, 'png'),
    'raw-vectors': lambda ctx: _check_exact_vectors(ctx, 'raw'),
    'layout': _check_layout,
    'crop': _check_crop,
    'scale': _check_scale,
    'target-ignored': _check_target_ignored,
    'threads': _check_threads,
    'capacity': _check_capacity,
    'bad-arguments': _check_bad_arguments,
    'corrupt': _check_corrupt,
    'gray': _check_gray,
    'batch': _check_batch,
}


class _Context:
    def __init__(self, backend, name, golden_dir, vectors, isolate):
        self.backend = backend
        self.name = name
        self.golden_dir = golden_dir
        self.vectors = vectors
        self.isolate = isolate
        try:
            self.availability = backend.available()
        except BaseException as exc:  # noqa: B036 -- BKD-005 says it must not raise; report it
            self.availability = (False, f"available() raised {type(exc).__name__}: {exc}")

    def require_available(self):
        ok, why = self.availability if isinstance(self.availability, tuple) else (False, '')
        if not ok:
            raise _Skip(f"unavailable: {why}")


def run_suite(backend, name=None, golden_dir=None, vectors=None, isolate=True, only=None):
    """Run every check of :data:`CHECKS` on one backend.

    Parameters
    ----------
    backend : object
        The backend object (what the entry point loads).
    name : str, optional
        Its registered name: checked against ``backend.name`` (BKD-001) and
        used to load it again in the child process of the corrupt-data
        check. Without it that check runs in this process.
    golden_dir : str or os.PathLike, optional
        FFCV 1.0.2 golden files; None skips the golden check.
    vectors : Vectors, optional
        Default: ``Vectors()``, the spec vectors ffcvx carries (:func:`vectors_dir`).
    isolate : bool, default True
        Run the corrupt-data decodes in a child process (needs ``name``).
    only : iterable of str, optional
        Run only these checks (the others are not reported).

    Returns
    -------
    list of CheckResult
        One per check, in the order of :data:`CHECKS`.
    """
    ctx = _Context(backend, name, golden_dir, vectors if vectors is not None else Vectors(),
                   isolate)
    results = []
    for check, clauses, _ in CHECKS:
        if only is not None and check not in only:
            continue
        try:
            detail = _RUNNERS[check](ctx)
            results.append(CheckResult(check, 'pass', detail or '', clauses))
        except _Skip as exc:
            results.append(CheckResult(check, 'skip', str(exc), clauses))
        except _Fail as exc:
            results.append(CheckResult(check, 'fail', str(exc), clauses))
        except Exception as exc:  # an unexpected exception from the backend is a failure too
            results.append(CheckResult(check, 'fail', f"{type(exc).__name__}: {exc}", clauses))
    return results


def format_table(results, verbose=False):
    """The result table the CLI prints: check, result, clauses and reason.

    Parameters
    ----------
    results : list of CheckResult
    verbose : bool
        Also print the summary of passed checks (skips and failures always
        show their reason).

    Returns
    -------
    str
    """
    rows = [('check', 'result', 'clauses', 'reason / detail')]
    for r in results:
        detail = r.detail if (r.status != 'pass' or verbose) else ''
        rows.append((r.name, r.status, r.clauses, detail))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ['  '.join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + '  ' + row[3]
             for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths) + '  ' + '-' * 15)
    counts = {s: sum(r.status == s for r in results) for s in ('pass', 'fail', 'skip')}
    lines.append(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return '\n'.join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------
# pytest entry:
#   pytest -p ffcvx.testing.plugin --pyargs ffcvx.testing.decoders --ffcvx-backend NAME
# (or FFCVX_BACKEND=NAME without the plugin). The suite runs once per backend;
# its results are cached here for the session and handed out one check per test.

_CACHE = {}


def _option(config, name):
    # The plugin's options exist only when it is loaded (-p ffcvx.testing.plugin).
    try:
        return config.getoption(name)
    except ValueError:
        return None


def _backend_names(config):
    from ..registry import Registry

    names = _option(config, 'ffcvx_backend')
    if not names:
        names = [n.strip() for n in os.environ.get('FFCVX_BACKEND', '').split(',') if n.strip()]
    return names or Registry('ffcvx.decoders').names()


def _results_for(name, config):
    if name not in _CACHE:
        from ..registry import Registry
        from . import find_golden_dir

        backend = Registry('ffcvx.decoders').get(name)
        golden = find_golden_dir(_option(config, 'ffcvx_golden_dir')
                                 or os.environ.get('FFCVX_GOLDEN_DIR') or None)
        _CACHE[name] = {r.name: r for r in run_suite(backend, name=name, golden_dir=golden)}
    return _CACHE[name]


def pytest_generate_tests(metafunc):
    if 'ffcvx_decoder_check' in metafunc.fixturenames:
        params = [(n, c) for n in _backend_names(metafunc.config) for c in CHECK_NAMES]
        metafunc.parametrize('ffcvx_decoder_check', params, ids=[f'{n}-{c}' for n, c in params])


def test_decoder_conformance(ffcvx_decoder_check, request):
    """One check of the suite on one backend (pytest entry)."""
    import pytest

    name, check = ffcvx_decoder_check
    result = _results_for(name, request.config)[check]
    if result.status == 'skip':
        pytest.skip(result.detail)
    if result.status == 'fail':
        pytest.fail(f"{name} {check} ({result.clauses}): {result.detail}", pytrace=False)
