"""The decode checks of the conformance suite: interface, pixels, crops, scaling.

Each ``check_*`` function takes a :class:`~.calling.Context` and returns a
summary of what it covered, or raises :class:`~.calling.CheckSkipped` /
:class:`~.calling.CheckFailed`; the clauses each one enforces are listed in
:data:`~.catalogue.CHECKS`.
"""
import numpy as np

from ...backend_api import (CALLABLE_KINDS, DEVICES, FORMATS, GRAY_FUNCTION, KINDS, choose_scale,
                            scaled_range)
from .calling import (Caller, CheckFailed, CheckSkipped, decode_c, max_mean_diff, needs_callable,
                      require, samples_of)
from .inputs import crops_of, golden_jpegs, sha256_of

__all__ = ['SCALED_MEAN', 'check_crop', 'check_exact_vectors', 'check_function_address',
           'check_interface', 'check_jpeg_golden', 'check_jpeg_vectors', 'check_layout',
           'check_scale', 'check_target_ignored']

#: mean |scaled decode - (full decode then resize)| allowed per DCT scale k/8
#: (BKD-060; BKD-017 fixes the size, not the filter; the DCT-domain downscale is a
#: different low-pass filter than ffcvx's resize).
SCALED_MEAN = {1: 8.0, 2: 6.0, 4: 6.5, 8: 0.0}


def check_interface(ctx):
    """BKD-001..005: attributes, formats, device, kind; available() returns (bool, str)."""
    b = ctx.backend
    require(isinstance(getattr(b, 'name', None), str) and b.name,
            "name is not a non-empty str")
    if ctx.name is not None:
        require(b.name == ctx.name, f"name {b.name!r} differs from the entry point {ctx.name!r}")
    formats = getattr(b, 'formats', None)
    require(isinstance(formats, frozenset) and formats and formats <= FORMATS,
            f"formats {formats!r} is not a non-empty frozenset within {sorted(FORMATS)}")
    for attr in ('supports_crop', 'supports_scale'):
        require(isinstance(getattr(b, attr, None), bool), f"{attr} is not a bool")
    require(isinstance(getattr(b, 'supports_gray', False), bool),
            "supports_gray is not a bool (BKD-025; absent means False)")
    if getattr(b, 'supports_gray', False):
        require(b.kind in CALLABLE_KINDS, "a batch backend declares supports_gray (BKD-025)")
    require(getattr(b, 'device', None) in DEVICES, f"device {getattr(b, 'device', None)!r}")
    require(getattr(b, 'kind', None) in KINDS, f"kind {getattr(b, 'kind', None)!r}")
    if b.kind in CALLABLE_KINDS:
        require(b.device == 'cpu', f"a {b.kind} backend must have device 'cpu' (BKD-003)")
    result = ctx.availability
    require(isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
            and isinstance(result[1], str), f"available() returned {result!r}")
    require(result[0] or result[1], "available() is False with an empty reason")
    return (f"{b.kind}, {b.device}, formats {'+'.join(sorted(formats))}, "
            f"crop {b.supports_crop}, scale {b.supports_scale}")


def check_function_address(ctx):
    """BKD-010: function_address('decode_region') is an int; other names KeyError."""
    needs_callable(ctx)
    address = ctx.backend.function_address('decode_region')
    require(isinstance(address, int) and address != 0, f"address {address!r} is not a non-zero int")
    names = ['no_such_function']
    if not getattr(ctx.backend, 'supports_gray', False):
        names.append(GRAY_FUNCTION)      # only with supports_gray (BKD-010, BKD-025)
    for name in names:
        try:
            ctx.backend.function_address(name)
        except KeyError:
            continue
        raise CheckFailed(f"function_address({name!r}) did not raise KeyError")
    return f"decode_region address; KeyError for {', '.join(names)}"


def check_jpeg_vectors(ctx):
    """BKD-023: JPEG spec vectors within BKD-023 of the reference pixels."""
    if 'jpeg' not in ctx.backend.formats:
        raise CheckSkipped("'jpeg' not in formats")
    needs_callable(ctx)
    max_tol, mean_tol = ctx.vectors.jpeg_tolerance()
    worst_max, worst_mean = 0, 0.0
    for s in ctx.vectors.samples['jpeg']:
        got = ctx.backend.decode_region_py(s['data'])
        require(got.shape == s['reference'].shape,
                f"jpeg vector {s['index']}: shape {got.shape}, expected {s['reference'].shape}")
        mx, mean = max_mean_diff(got, s['reference'])
        require(mx <= max_tol and mean <= mean_tol,
                f"jpeg vector {s['index']}: max abs {mx} (<= {max_tol}), mean abs {mean:.2f} "
                f"(<= {mean_tol}) against the reference pixels")
        worst_max, worst_mean = max(worst_max, mx), max(worst_mean, mean)
    return (f"{len(ctx.vectors.samples['jpeg'])} samples, max abs {worst_max}, "
            f"mean abs {worst_mean:.2f} (tolerance {max_tol}, {mean_tol})")


def check_jpeg_golden(ctx):
    """BKD-023: FFCV 1.0.2 golden JPEGs within the golden README's max-abs tolerance."""
    if 'jpeg' not in ctx.backend.formats:
        raise CheckSkipped("'jpeg' not in formats")
    needs_callable(ctx)
    if ctx.golden_dir is None:
        raise CheckSkipped("golden files not found (pass --golden-dir DIR)")
    cases = golden_jpegs(ctx.golden_dir)
    if not cases:
        raise CheckSkipped(f"no JPEG samples in the golden files of {ctx.golden_dir}")
    worst = 0
    for case, i, data, expected, max_abs in cases:
        got = ctx.backend.decode_region_py(data)
        require(got.shape == expected.shape, f"golden {case} sample {i}: shape {got.shape}, "
                                              f"expected {expected.shape}")
        mx, _ = max_mean_diff(got, expected)
        require(mx <= max_abs, f"golden {case} sample {i}: max abs {mx} > {max_abs} "
                                f"(golden README tolerance)")
        worst = max(worst, mx)
    return f"{len(cases)} golden JPEGs, max abs {worst} (tolerance {cases[0][4]})"


def check_exact_vectors(ctx, fmt):
    """BKD-023 (PNG), BKD-002 (raw): the ``fmt`` spec vectors decode to exactly the source pixels."""
    if fmt not in ctx.backend.formats:
        reason = f"{fmt!r} not in formats"
        if fmt == 'raw':
            reason += " (CPU decoders copy raw pixels themselves, BKD-002)"
        raise CheckSkipped(reason)
    if ctx.backend.kind == 'batch':
        raise CheckSkipped(f"kind is 'batch': {fmt} samples are checked by the batch check")
    ctx.require_available()
    for s in ctx.vectors.samples[fmt]:
        got = ctx.backend.decode_region_py(s['data'])
        require(got.shape == (s['height'], s['width'], 3),
                f"{fmt} vector {s['index']}: shape {got.shape}, expected "
                f"{(s['height'], s['width'], 3)}")
        require(sha256_of(got) == s['pixels_sha256'],
                f"{fmt} vector {s['index']}: pixels differ from the source image "
                f"({sha256_of(got)[:12]} != {s['pixels_sha256'][:12]})")
    return f"{len(ctx.vectors.samples[fmt])} samples, exact"


def check_layout(ctx):
    """BKD-012, BKD-030: C-contiguous uint8 (H, W, 3); decode_region == decode_region_py."""
    needs_callable(ctx)
    caller = Caller(ctx.backend)
    samples = samples_of(ctx.vectors, ctx.backend)
    for s in samples:
        got = ctx.backend.decode_region_py(s['data'])
        require(isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.flags.c_contiguous
                and got.shape == (s['height'], s['width'], 3),
                f"vector {s['index']}: decode_region_py gave {type(got).__name__} "
                f"{getattr(got, 'dtype', None)} {getattr(got, 'shape', None)}, not C-contiguous "
                f"uint8 {(s['height'], s['width'], 3)}")
        c = decode_c(caller, s['data'], (0, 0, s['height'], s['width']))
        require(np.array_equal(c, got), f"vector {s['index']}: decode_region and "
                                         f"decode_region_py differ (BKD-030)")
    return f"{len(samples)} samples through decode_region and decode_region_py"


def check_crop(ctx):
    """BKD-016, BKD-019: crop decode == full decode then crop, exactly, edges included."""
    needs_callable(ctx)
    if not ctx.backend.supports_crop:
        raise CheckSkipped("supports_crop is False (BKD-019: whole decode, then the window is copied)")
    caller = Caller(ctx.backend)
    count = 0
    for s in samples_of(ctx.vectors, ctx.backend):
        full = ctx.backend.decode_region_py(s['data'])
        for crop in crops_of(s['height'], s['width']):
            y, x, h, w = crop
            want = full[y:y + h, x:x + w]
            got = ctx.backend.decode_region_py(s['data'], crop)
            require(np.array_equal(got, want),
                    f"vector {s['index']} crop {crop}: decode_region_py differs from the full "
                    f"decode's window (max abs {max_mean_diff(got, want)[0] if got.shape == want.shape else got.shape})")
            require(np.array_equal(decode_c(caller, s['data'], crop), want),
                    f"vector {s['index']} crop {crop}: decode_region differs from the window")
            count += 1
    return f"{count} crops, exact"


def check_scale(ctx):
    """BKD-017: scaled size by the k/8 rule; pixels close to full decode then resize."""
    needs_callable(ctx)
    if not ctx.backend.supports_scale:
        raise CheckSkipped("supports_scale is False (BKD-018)")
    from ..._ext.resize import resize_rgb

    seen, count = set(), 0
    for s in samples_of(ctx.vectors, ctx.backend):
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
            require(got.shape == (y1 - y0, x1 - x0, 3),
                    f"vector {s['index']} crop {(y, x, h, w)} target {target}: shape "
                    f"{got.shape}, the k={k} rule gives {(y1 - y0, x1 - x0, 3)}")
            step = 8 // k
            ref = np.empty_like(got)
            resize_rgb(np.ascontiguousarray(full[y0 * step:min(y1 * step, H),
                                                 x0 * step:min(x1 * step, W)]), ref)
            _, mean = max_mean_diff(got, ref)
            require(mean <= SCALED_MEAN[k],
                    f"vector {s['index']} crop {(y, x, h, w)} target {target} (k={k}): mean abs "
                    f"{mean:.2f} > {SCALED_MEAN[k]} against full decode then resize")
            require(np.array_equal(decode_c(Caller(ctx.backend), s['data'], (y, x, h, w),
                                               target), got),
                    f"vector {s['index']}: decode_region and decode_region_py differ at k={k}")
            seen.add(k)
            count += 1
    require(count > 0, "no vector large enough to check scaling")
    return f"{count} scaled decodes, k in {sorted(seen)}"


def check_target_ignored(ctx):
    """BKD-018: without scale support a target changes nothing."""
    needs_callable(ctx)
    if ctx.backend.supports_scale:
        raise CheckSkipped("supports_scale is True (the scale check applies)")
    count = 0
    for s in samples_of(ctx.vectors, ctx.backend):
        H, W = s['height'], s['width']
        full = ctx.backend.decode_region_py(s['data'])
        got = ctx.backend.decode_region_py(s['data'], (0, 0, H, W), (max(H // 8, 1), max(W // 8, 1)))
        require(np.array_equal(got, full), f"vector {s['index']}: a target changed the output")
        count += 1
    return f"{count} samples"
