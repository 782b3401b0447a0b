"""The robustness checks of the conformance suite: threads, bad input, gray, batches.

Each ``check_*`` function takes a :class:`~.calling.Context` and returns a
summary of what it covered, or raises :class:`~.calling.CheckSkipped` /
:class:`~.calling.CheckFailed`. The corrupt-data decodes run in a child process
when the backend has a registered name: a crash on bad data (BKD-006 forbids
it) must fail the check, not end the suite.
"""
import json
import subprocess
import sys
import threading

import numpy as np

from ...backend_api import (DECODE_BAD_ARGUMENT, DECODE_CAPACITY, DECODE_CORRUPT, DECODE_OK,
                            GRAY_FUNCTION)
from ...errors import DecodeError
from .calling import (Caller, CheckFailed, CheckSkipped, decode_c, max_mean_diff, needs_callable,
                      require, samples_of)
from .inputs import Vectors, corrupt_inputs, crops_of, gray_inputs

__all__ = ['THREADS', 'TIMEOUT_S', 'check_bad_arguments', 'check_batch', 'check_capacity',
           'check_corrupt', 'check_gray', 'check_threads', 'corrupt_child', 'corrupt_report',
           'gray_corrupt_report']

#: Seconds the child process of the corrupt-data check may take.
TIMEOUT_S = 120
#: Threads of the parallel-decode check.
THREADS = 4

def check_threads(ctx):
    """BKD-006: decode_region from 4 threads at once == serial decode."""
    needs_callable(ctx)
    caller = Caller(ctx.backend)
    jobs = []
    for s in samples_of(ctx.vectors, ctx.backend):
        for crop in crops_of(s['height'], s['width'])[:4]:
            jobs.append((s['data'], crop))
    serial = [decode_c(caller, data, crop) for data, crop in jobs]
    results = [None] * (len(jobs) * THREADS)
    errors = []

    def work(t):
        try:
            # each thread walks the jobs in its own order, so different images overlap
            start = (t * len(jobs)) // THREADS
            for j in list(range(start, len(jobs))) + list(range(start)):
                results[t * len(jobs) + j] = decode_c(caller, *jobs[j])
        except BaseException as exc:  # noqa: B036 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise CheckFailed(f"a thread failed: {errors[0]}")
    for i, got in enumerate(results):
        require(got is not None and np.array_equal(got, serial[i % len(jobs)]),
                f"job {i % len(jobs)} decoded differently in thread {i // len(jobs)}")
    return f"{len(jobs)} decodes x {THREADS} threads == serial"


def check_capacity(ctx):
    """BKD-014: status -2, out untouched and out_hw filled when out is too small or NULL."""
    needs_callable(ctx)
    caller = Caller(ctx.backend)
    count = 0
    for s in samples_of(ctx.vectors, ctx.backend):
        H, W = s['height'], s['width']
        need = H * W * 3
        for capacity, null in ((need - 1, False), (0, False), (need, True)):
            status, hw, out = caller(s['data'], (0, 0, H, W), capacity=max(capacity, 0),
                                     null_out=null)
            what = "a NULL out" if null else f"capacity {capacity} < {need}"
            require(status == DECODE_CAPACITY,
                    f"vector {s['index']}: status {status} for {what}, expected -2")
            require(np.all(out == 0xA5), f"vector {s['index']}: out was written with {what}")
            require((int(hw[0]), int(hw[1])) == (H, W),
                    f"vector {s['index']}: out_hw {hw.tolist()} with {what}, expected {[H, W]}")
            count += 1
    return f"{count} calls"


def check_bad_arguments(ctx):
    """BKD-015: status -3 for bad crops; ValueError from decode_region_py."""
    needs_callable(ctx)
    caller = Caller(ctx.backend)
    count = 0
    for s in samples_of(ctx.vectors, ctx.backend)[:4]:
        H, W = s['height'], s['width']
        for crop in ((0, 0, 0, W), (0, 0, H, 0), (-1, 0, H, W), (0, -1, H, W),
                     (0, 0, H + 1, W), (0, 0, H, W + 1), (H, 0, 1, 1), (0, W, 1, 1)):
            status, _, _ = caller(s['data'], crop, capacity=(H + 2) * (W + 2) * 3)
            require(status == DECODE_BAD_ARGUMENT,
                    f"vector {s['index']} ({H}x{W}) crop {crop}: status {status}, expected -3")
            try:
                ctx.backend.decode_region_py(s['data'], crop)
            except ValueError:
                pass
            else:
                raise CheckFailed(f"vector {s['index']} crop {crop}: decode_region_py did not raise "
                                  f"ValueError")
            count += 1
    return f"{count} bad crops"


def corrupt_report(backend, vectors):
    """Run the corrupt inputs through ``backend``; ``[(label, status, raised, message)]``.

    ``raised`` is the name of what ``decode_region_py`` raised (or ``None``).
    """
    caller = Caller(backend)
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


def check_corrupt(ctx):
    """BKD-021, BKD-022: truncated, damaged and foreign data: -1 and DecodeError, no crash."""
    needs_callable(ctx)
    if ctx.name is not None and ctx.isolate:
        report = corrupt_report_in_child(ctx, gray=False)
    else:
        report = corrupt_report(ctx.backend, ctx.vectors)
    for label, status, raised, message in report:
        require(status == DECODE_CORRUPT, f"{label}: status {status}, expected -1")
        require(raised == 'DecodeError' and message,
                f"{label}: decode_region_py raised {raised or 'nothing'}, expected a DecodeError "
                f"with a message")
    return f"{len(report)} inputs refused" + (" (in a child process)" if ctx.isolate and ctx.name else "")


def corrupt_child(name, gray=False):
    from ...registry import Registry

    backend = Registry('ffcvx.decoders').get(name)
    report = gray_corrupt_report(backend, Vectors()) if gray else corrupt_report(backend, Vectors())
    print(json.dumps(report))


def corrupt_report_in_child(ctx, gray):
    """The corrupt-data report of ``ctx.backend`` computed in a child process.

    A crash on bad data (BKD-006 forbids it) must fail the check, not end the suite.
    """
    code = ("import sys; from ffcvx.testing.decoder_suite.checks_errors import corrupt_child; "
            "corrupt_child(sys.argv[1], sys.argv[2] == 'gray')")
    proc = subprocess.run([sys.executable, '-c', code, ctx.name, 'gray' if gray else 'rgb'],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CheckFailed(f"the child decoding corrupt data exited with {proc.returncode}: "
                          f"{' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gray_corrupt_report(backend, vectors):
    """``[(label, status)]`` of ``decode_region_gray`` on data it MUST refuse with -1 (BKD-026).

    The inputs of :func:`corrupt_inputs`, and gray JPEGs and PNGs of the
    declared formats truncated in the middle.
    """
    caller = Caller(backend, GRAY_FUNCTION)
    cases = corrupt_inputs(vectors, backend.formats)
    for label, data, h, w in gray_inputs(backend.formats):
        if h * w > 1000:
            cases.append((f"{label} truncated", data[:len(data) // 2], (0, 0, h, w)))
    return [(label, int(caller(data, crop, capacity=crop[2] * crop[3])[0]))
            for label, data, crop in cases]


def gray_cases(backend, h, w):
    """(crop, target) pairs: whole image, crops, and DCT-scale targets when declared."""
    cases = [((0, 0, h, w), (0, 0))] + [(c, (0, 0)) for c in crops_of(h, w) if c != (0, 0, h, w)]
    if backend.supports_scale and min(h, w) >= 16:
        cases += [((0, 0, h, w), (h // 2, w // 2)), ((0, 0, h, w), (h // 8, w // 8)),
                  ((3, 5, h - 7, w - 9), ((h - 7) // 4, (w - 9) // 4))]
    return cases


def check_gray(ctx):
    """BKD-025, BKD-026.

    decode_region_gray == channel 0 of decode_region on gray JPEG/PNG; capacity -2, corrupt -1.
    """
    b = ctx.backend
    if not getattr(b, 'supports_gray', False):
        raise CheckSkipped("supports_gray is False or absent (BKD-025: callers use decode_region)")
    needs_callable(ctx)
    rgb, gray = Caller(b), Caller(b, GRAY_FUNCTION)
    inputs = gray_inputs(b.formats)
    require(inputs, f"no gray inputs for formats {sorted(b.formats)}")
    count = 0
    for label, data, h, w in inputs:
        for crop, target in gray_cases(b, h, w):
            s_rgb, hw_rgb, out_rgb = rgb(data, crop, target, capacity=h * w * 3)
            s_gray, hw_gray, out_gray = gray(data, crop, target, capacity=h * w)
            what = f"{label} crop {crop} target {target}"
            require(s_gray == s_rgb == DECODE_OK,
                    f"{what}: status {s_gray} from decode_region_gray, {s_rgb} from decode_region")
            require(hw_gray.tolist() == hw_rgb.tolist(),
                    f"{what}: out_hw {hw_gray.tolist()}, decode_region gave {hw_rgb.tolist()}")
            oh, ow = int(hw_rgb[0]), int(hw_rgb[1])
            want = out_rgb[:oh * ow * 3].reshape(oh, ow, 3)[:, :, 0]
            got = out_gray[:oh * ow].reshape(oh, ow)
            require(np.array_equal(got, want),
                    f"{what}: not channel 0 of decode_region (max abs {max_mean_diff(got, want)[0]})")
            require(np.all(out_gray[oh * ow:] == 0xA5),
                    f"{what}: decode_region_gray wrote past h * w bytes")
            count += 1
        status, hw, out = gray(data, (0, 0, h, w), capacity=h * w - 1)
        require(status == DECODE_CAPACITY and np.all(out == 0xA5)
                and (int(hw[0]), int(hw[1])) == (h, w),
                f"{label}: capacity h * w - 1 gave status {status}, out_hw {hw.tolist()}, "
                f"out {'untouched' if np.all(out == 0xA5) else 'written'} (BKD-014, BKD-026)")
        status, _, _ = gray(data, (0, 0, h + 1, w), capacity=(h + 1) * w)
        require(status == DECODE_BAD_ARGUMENT, f"{label}: crop outside the image gave status "
                                                f"{status}, expected -3 (BKD-015)")
    if ctx.name is not None and ctx.isolate:
        report = corrupt_report_in_child(ctx, gray=True)
    else:
        report = gray_corrupt_report(b, ctx.vectors)
    for label, status in report:
        require(status == DECODE_CORRUPT, f"decode_region_gray, {label}: status {status}, "
                                           f"expected -1")
    return (f"{len(inputs)} gray images, {count} regions == channel 0 of decode_region; "
            f"{len(report)} corrupt inputs refused")


def check_batch(ctx):
    """BKD-042: decode_batch: (B, H, W, 3) uint8 within BKD-023 of the reference."""
    b = ctx.backend
    if b.kind != 'batch':
        raise CheckSkipped(f"kind is {b.kind!r}, not 'batch'")
    ctx.require_available()
    if 'jpeg' not in b.formats:
        raise CheckSkipped("'jpeg' not in formats")
    import torch

    max_tol, mean_tol = ctx.vectors.jpeg_tolerance()
    samples = ctx.vectors.samples['jpeg']
    count = 0
    for s in samples:
        out = b.decode_batch([np.frombuffer(s['data'], dtype=np.uint8)],
                             output_size=(s['height'], s['width']), device=b.device)
        require(isinstance(out, torch.Tensor) and out.dtype == torch.uint8
                and tuple(out.shape) == (1, s['height'], s['width'], 3),
                f"jpeg vector {s['index']}: decode_batch gave {getattr(out, 'dtype', None)} "
                f"{tuple(getattr(out, 'shape', ()))}")
        got = out[0].cpu().numpy()
        mx, mean = max_mean_diff(got, s['reference'])
        require(mx <= max_tol and mean <= mean_tol,
                f"jpeg vector {s['index']}: max abs {mx}, mean abs {mean:.2f} against the reference")
        count += 1
    bad = samples[-1]['data']
    try:
        b.decode_batch([np.frombuffer(samples[0]['data'], dtype=np.uint8),
                        np.frombuffer(bad[:len(bad) // 2], dtype=np.uint8)],
                       output_size=(8, 8), device=b.device)
    except DecodeError as exc:
        # BKD-042: the error says which sample of the batch failed.
        require(getattr(exc, 'position', None) == 1, f"a truncated sample 1 was reported at "
                                                      f"position {getattr(exc, 'position', None)}")
    else:
        raise CheckFailed("decode_batch accepted a truncated JPEG")
    return f"{count} batches; a truncated sample raises DecodeError"
