"""Writer codec speed and quality: JPEG inputs shrunk to ``max_resolution`` and re-encoded.

Run: ``python benchmarks/bench_write_codec.py [--count 200] [--margins 1.5 2 4]``
(with ffcvx-turbojpeg built; issue 21, item 1).

Inputs: ``count`` JPEGs made from the shared photos, re-encoded with the
longest side drawn from 300..2000 px and quality from 75..95. Per image,
each path turns the file's bytes into the bytes a ``jpg`` image field
stores at ``max_resolution=256``, ``jpeg_quality=90``:

- (a) Pillow full decode, ``cv2.resize(INTER_AREA)``, Pillow encode;
- (b2) Pillow ``draft`` at 2x the target (ffcvx before issue 21), INTER_AREA,
  Pillow encode; (b) the same at ``DRAFT_MARGIN`` (3x): ffcvx's Pillow path;
- (c) the compiled codec: ``decode_shrunk`` (DCT scale keeping
  ``DRAFT_MARGIN`` times the target, C area resize), ``encode_jpeg``;
  (c') the same with other ``--margins``;
- (d) ``RGBImageField('jpg', max_resolution=256).encode`` of the bytes,
  with the compiled codec and (d0) with it disabled: the field's whole path.

Times are the best of ``--rounds`` interleaved rounds, per image, then
averaged. Quality against INTER_AREA of the full decode (the pixels (a)
encodes): "px" is the PSNR of the pooled squared error of the shrunk
pixels over all images ("exact" when every image is identical), "stored"
the mean per-image PSNR of the stored JPEG decoded, "d stored" its mean
per-image difference to (a)'s.
"""
import argparse
import io
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ffcvx.fields import RGBImageField
from ffcvx.fields import image_codecs
from ffcvx.fields.encoded import DRAFT_MARGIN, EncodedImage, target_size
from ffcvx.fields.pixels import to_rgb_array
from ffcvx.testing import shared_dir

MAX_RES = 256
QUALITY = 90


def make_inputs(count, folder, seed=0):
    photos = sorted(shared_dir('data', 'photos').glob('*/*.jpg'))
    rng = np.random.default_rng(seed)
    inputs = []
    for i in range(count):
        image = Image.open(photos[i % len(photos)]).convert('RGB')
        longest = int(rng.integers(300, 2001))
        scale = longest / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        out = io.BytesIO()
        image.resize(size, Image.LANCZOS).save(out, format='JPEG',
                                               quality=int(rng.integers(75, 96)))
        path = Path(folder) / f'{i:04d}.jpg'
        path.write_bytes(out.getvalue())
        inputs.append(path.read_bytes())
    return inputs


def pil_encode(pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format='JPEG', quality=QUALITY)
    return out.getvalue()


def shrink(pixels):
    h, w = pixels.shape[:2]
    target = target_size(w, h, MAX_RES)
    if target is None:
        return pixels
    return cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)


def path_a(data):
    pixels = shrink(np.asarray(Image.open(io.BytesIO(data)).convert('RGB')))
    return pixels, pil_encode(pixels)


def path_b(data):
    pixels, shrunk = EncodedImage(data, 'x').decode(to_rgb_array, 'F', MAX_RES, None)
    if not shrunk:
        pixels = shrink(pixels)
    return pixels, pil_encode(pixels)


def path_b2(data):
    image = Image.open(io.BytesIO(data))
    target = target_size(image.width, image.height, MAX_RES)
    pixels = np.asarray(image.convert('RGB')) if target is None else None
    if target is not None:
        image.draft(image.mode, (2 * target[0], 2 * target[1]))
        pixels = cv2.resize(np.asarray(image.convert('RGB')), target,
                            interpolation=cv2.INTER_AREA)
    return pixels, pil_encode(pixels)


def path_c(data, margin=DRAFT_MARGIN):
    codec = image_codecs.compiled_codec()
    w, h = Image.open(io.BytesIO(data)).size      # header only, as jpeg_header
    target = target_size(w, h, MAX_RES) or (w, h)
    pixels = codec.decode_shrunk(data, target[0], target[1], margin=margin)
    return pixels, codec.encode_jpeg(pixels, QUALITY)


def field_path(data, compiled):
    field = RGBImageField('jpg', max_resolution=MAX_RES, jpeg_quality=QUALITY)
    record = np.zeros(1, dtype=field.metadata_type)
    stored = {}

    def malloc(size):
        stored['buffer'] = np.empty(size, np.uint8)
        return 0, stored['buffer']

    saved = image_codecs.compiled_codec
    if not compiled:
        image_codecs.compiled_codec = lambda: None
    try:
        field.encode(record[0:1], data, malloc)
    finally:
        image_codecs.compiled_codec = saved
    return None, stored['buffer'].tobytes()


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=200)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--margins', type=float, nargs='*', default=[1.5, 2.0, 4.0])
    args = parser.parse_args()
    assert image_codecs.compiled_codec() is not None, 'build ffcvx-turbojpeg first'
    with tempfile.TemporaryDirectory() as folder:
        inputs = make_inputs(args.count, folder)
    paths = {
        'a  Pillow full + INTER_AREA + Pillow enc': path_a,
        'b2 Pillow draft 2x (ffcvx before)': path_b2,
        f'b  Pillow draft {DRAFT_MARGIN}x (ffcvx, no backend)': path_b,
        f'c  compiled decode_shrunk {DRAFT_MARGIN}x + encode': path_c,
        **{f"c' compiled, margin {m:g}": (lambda d, m=m: path_c(d, m)) for m in args.margins},
        'd  RGBImageField.encode, compiled': lambda d: field_path(d, True),
        'd0 RGBImageField.encode, Pillow only': lambda d: field_path(d, False),
    }
    best = {name: np.full(len(inputs), np.inf) for name in paths}
    quality = {name: ([], []) for name in paths}
    for rnd in range(args.rounds):
        for i, data in enumerate(inputs):
            if rnd == 0:
                reference = path_a(data)[0]
            for name, run in paths.items():
                start = time.perf_counter()
                pixels, stored = run(data)
                best[name][i] = min(best[name][i], time.perf_counter() - start)
                if rnd == 0:
                    if pixels is not None:
                        quality[name][0].append(np.mean((pixels.astype(np.float64)
                                                         - reference) ** 2))
                    quality[name][1].append(psnr(np.asarray(Image.open(io.BytesIO(stored))),
                                                 reference))
    base = best[next(iter(paths))].mean()
    sizes = [max(Image.open(io.BytesIO(d)).size) for d in inputs]
    print(f"{len(inputs)} images, longest side {min(sizes)}..{max(sizes)} "
          f"(mean {np.mean(sizes):.0f}), max_resolution={MAX_RES}, q{QUALITY}")
    print(f"{'path':42s} {'ms/img':>8s} {'speed-up':>8s} {'PSNR px':>8s} {'stored':>8s} "
          f"{'d stored':>8s}")
    stored_a = np.array(quality[next(iter(paths))][1])
    for name in paths:
        mse, stored = quality[name]
        if not mse:
            px_text = '-'
        elif np.mean(mse) == 0:
            px_text = 'exact'
        else:
            px_text = f"{10 * np.log10(255.0 ** 2 / np.mean(mse)):.2f}"
        print(f"{name:42s} {best[name].mean() * 1e3:8.2f} {base / best[name].mean():8.2f} "
              f"{px_text:>8s} {np.mean(stored):8.2f} {np.mean(np.array(stored) - stored_a):8.2f}")


if __name__ == '__main__':
    main()
