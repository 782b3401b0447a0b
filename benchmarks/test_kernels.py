"""Per-image kernel speed on one thread: JPEG decode, region decode, resize.

Run: ``.venv/bin/python -m pytest benchmarks/test_kernels.py --benchmark-only``
(or ``.venv/bin/python benchmarks/test_kernels.py`` for a plain printout).

Inputs are built in memory like ImageNet: random crops of the shared photos,
longest side 500 px, JPEG quality 90 (Pillow, 4:2:0). Every figure is images
per second on the calling thread, the kernels being called from one
``@njit(nogil=True)`` loop exactly as a compiled decoder calls them
(``ctypes`` function pointers), so no Python overhead is counted.

- ``full_decode``: the whole image at full scale (the decode limit);
- ``rrc_region_decode``: RandomResizedCrop parameters (torchvision's
  sampler, scale 0.08-1, ratio 3/4-4/3), ``decode_region`` at target 224;
- ``rrc_region_decode_resize``: the same + ``ffcvx_resize_rgb`` to 224x224
  (what ``RandomResizedCropRGBImageDecoder((224, 224))`` does per sample);
- ``rrc_full_decode_resize``: FFCV's way, full decode then crop + resize.
"""
import ctypes
import glob
import io
import math
import time

import numpy as np
import pytest
from PIL import Image

from ffcvx.testing import shared_dir

NUM_IMAGES = 300
OUT = 224
REPEATS = 5
RESULTS = {}

I64 = ctypes.c_int64
DECODE_PROTO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, I64, I64, I64, I64, I64,
                                I64, I64, ctypes.c_void_p, I64, ctypes.c_void_p)
RESIZE_PROTO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, I64, I64, I64, ctypes.c_void_p,
                                I64, I64, ctypes.c_void_p, I64)
SCRATCH_PROTO = ctypes.CFUNCTYPE(I64, I64, I64, I64, I64)


def photo_files():
    """The shared photos' paths (fails, naming FFCVX_SHARED, when the folder is missing)."""
    return sorted(glob.glob(str(shared_dir("data", "photos") / "*" / "*.jpg")))


def make_jpegs(count=NUM_IMAGES, seed=0):
    """ImageNet-like JPEGs: random crops (60-100% per side), longest side 500, q90.

    Returns
    -------
    blob : ndarray of uint8, shape (total_bytes,)
        All files back to back.
    offsets : ndarray of int64, shape (count + 1,)
        File i is ``blob[offsets[i]:offsets[i + 1]]``.
    sizes : ndarray of int64, shape (count, 2)
        (height, width) of each image in pixels.
    """
    files = photo_files()
    if not files:
        pytest.skip("shared photos not found")
    rng = np.random.default_rng(seed)
    photos = [Image.open(f).convert("RGB") for f in files]
    blobs, sizes = [], []
    for i in range(count):
        img = photos[i % len(photos)]
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = img.crop((x, y, x + cw, y + ch))
        scale = 500 / max(cw, ch)
        crop = crop.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BILINEAR)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
        sizes.append((crop.height, crop.width))
    offsets = np.cumsum([0] + [b.size for b in blobs]).astype(np.int64)
    return np.concatenate(blobs), offsets, np.array(sizes, np.int64)


def rrc_params(height, width, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's ``RandomResizedCrop.get_params``: (top, left, h, w)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def build_kernels():
    """Compiled loops calling the C kernels; returns a dict of callables."""
    from numba import njit
    from numba.extending import get_cython_function_address
    import importlib.metadata

    eps = [ep for ep in importlib.metadata.entry_points(group="ffcvx.decoders")
           if ep.name == "turbojpeg"]
    if not eps:
        pytest.skip("ffcvx-turbojpeg not installed")
    backend = eps[0].load()
    decode = DECODE_PROTO(backend.function_address("decode_region"))
    resize = RESIZE_PROTO(get_cython_function_address("ffcvx._ext.resize", "ffcvx_resize_rgb"))
    scratch_bytes = SCRATCH_PROTO(
        get_cython_function_address("ffcvx._ext.resize", "ffcvx_resize_scratch_bytes"))

    @njit(nogil=True)
    def decode_all(blob, offsets, crops, target, buf, hw):
        bad = 0
        for i in range(offsets.size - 1):
            src = blob[offsets[i]:offsets[i + 1]]
            bad += decode(src.ctypes.data, src.size, crops[i, 0], crops[i, 1], crops[i, 2],
                          crops[i, 3], target, target, buf.ctypes.data, buf.size,
                          hw.ctypes.data) != 0
        return bad

    @njit(nogil=True)
    def decode_resize_all(blob, offsets, crops, target, buf, hw, out, scratch):
        bad = 0
        for i in range(offsets.size - 1):
            src = blob[offsets[i]:offsets[i + 1]]
            bad += decode(src.ctypes.data, src.size, crops[i, 0], crops[i, 1], crops[i, 2],
                          crops[i, 3], target, target, buf.ctypes.data, buf.size,
                          hw.ctypes.data) != 0
            if scratch_bytes(hw[0], hw[1], out.shape[1], out.shape[2]) > scratch.size:
                bad += 1
                continue
            bad += resize(buf.ctypes.data, hw[0], hw[1], 3 * hw[1], out[i].ctypes.data,
                          out.shape[1], out.shape[2], scratch.ctypes.data, scratch.size) != 0
        return bad

    @njit(nogil=True)
    def full_then_resize_all(blob, offsets, sizes, crops, buf, hw, out, scratch):
        bad = 0
        for i in range(offsets.size - 1):
            src = blob[offsets[i]:offsets[i + 1]]
            bad += decode(src.ctypes.data, src.size, 0, 0, sizes[i, 0], sizes[i, 1], 0, 0,
                          buf.ctypes.data, buf.size, hw.ctypes.data) != 0
            y, x, h, w = crops[i, 0], crops[i, 1], crops[i, 2], crops[i, 3]
            start = (y * hw[1] + x) * 3
            bad += resize(buf[start:].ctypes.data, h, w, 3 * hw[1], out[i].ctypes.data,
                          out.shape[1], out.shape[2], scratch.ctypes.data, scratch.size) != 0
        return bad

    return decode_all, decode_resize_all, full_then_resize_all


class KernelBench:
    """Data, buffers and compiled loops shared by the benchmarks."""

    def __init__(self):
        self.blob, self.offsets, self.sizes = make_jpegs()
        rng = np.random.default_rng(1)
        self.n = self.sizes.shape[0]
        self.full = np.array([(0, 0, h, w) for h, w in self.sizes], np.int64)
        self.crops = np.array([rrc_params(h, w, rng) for h, w in self.sizes], np.int64)
        self.buf = np.empty(int(self.sizes.prod(axis=1).max()) * 3, np.uint8)
        self.hw = np.zeros(2, np.int64)
        self.out = np.empty((self.n, OUT, OUT, 3), np.uint8)
        self.scratch = np.empty(1 << 22, np.uint8)
        self.decode_all, self.decode_resize_all, self.full_then_resize_all = build_kernels()
        self.runs = {
            "full_decode": lambda: self.decode_all(self.blob, self.offsets, self.full, 0,
                                                   self.buf, self.hw),
            "rrc_region_decode": lambda: self.decode_all(self.blob, self.offsets, self.crops, OUT,
                                                         self.buf, self.hw),
            "rrc_region_decode_resize": lambda: self.decode_resize_all(
                self.blob, self.offsets, self.crops, OUT, self.buf, self.hw, self.out,
                self.scratch),
            "rrc_full_decode_resize": lambda: self.full_then_resize_all(
                self.blob, self.offsets, self.sizes, self.crops, self.buf, self.hw, self.out,
                self.scratch),
        }
        for run in self.runs.values():  # compile, warm caches, check status codes
            assert run() == 0

    def rate(self, name):
        """Best of REPEATS passes over all images, in images per second."""
        best = math.inf
        for _ in range(REPEATS):
            start = time.perf_counter()
            assert self.runs[name]() == 0
            best = min(best, time.perf_counter() - start)
        return self.n / best


@pytest.fixture(scope="module")
def kernels():
    return KernelBench()


@pytest.mark.parametrize("name", ["full_decode", "rrc_region_decode", "rrc_region_decode_resize",
                                  "rrc_full_decode_resize"])
def test_kernel_speed(benchmark, kernels, name):
    rates = []
    benchmark.pedantic(lambda: rates.append(kernels.rate(name)), rounds=3, iterations=1)
    RESULTS[name] = max(rates)
    benchmark.extra_info["img_per_s"] = round(max(rates))
    benchmark.extra_info["us_per_img"] = round(1e6 / max(rates), 1)
    print(f"\n{name}: {max(rates):,.0f} img/s ({1e6 / max(rates):.0f} us/img), one thread")
    if name == "rrc_region_decode_resize" and "rrc_region_decode" in RESULTS:
        decode_us = 1e6 / RESULTS["rrc_region_decode"]
        total_us = 1e6 / RESULTS["rrc_region_decode_resize"]
        print(f"RandomResizedCrop 224 split: region decode {decode_us:.0f} us, "
              f"resize {total_us - decode_us:.0f} us per image")


def main():
    bench = KernelBench()
    crop_area = np.mean(bench.crops[:, 2] * bench.crops[:, 3] / bench.sizes.prod(axis=1))
    print(f"{bench.n} JPEGs, {bench.blob.size / bench.n / 1024:.1f} KiB mean, "
          f"mean RRC crop area {crop_area:.0%} of the image")
    rates = {name: bench.rate(name) for name in bench.runs}
    for name, rate in rates.items():
        print(f"{name:28s} {rate:8,.0f} img/s  {1e6 / rate:6.0f} us/img")
    decode_us = 1e6 / rates["rrc_region_decode"]
    resize_us = 1e6 / rates["rrc_region_decode_resize"] - decode_us
    print(f"RandomResizedCrop 224 per image: region decode {decode_us:.0f} us + "
          f"resize {resize_us:.0f} us")


if __name__ == "__main__":
    main()
