"""Regenerate the decoder spec vectors in ffcvx/testing/vectors.

Usage::

    python spec/vectors/make_vectors.py [--out DIR]

The vectors are package data of ``ffcvx.testing`` (``ffcvx/testing/vectors``
of the source tree), so that an installed ffcvx can run the conformance suite;
this script stays with the spec it serves and writes there by default.

Writes, with ffcvx's own ``DatasetWriter`` (one worker, 2 MiB pages, samples
in dataset order):

* ``jpeg.beton.gz``, ``png.beton.gz``, ``raw.beton.gz``: one
  ``RGBImageField`` named ``image`` (write modes ``jpg`` at quality 90,
  ``png`` and ``raw``) and an ``IntField`` named ``label``. A ``.beton``
  is written in whole pages (``spec/beton.md`` FMT-040), so each file is
  4 MiB of mostly zeros; gzip (with a zero timestamp, so the bytes are
  reproducible) keeps them a few kilobytes each.
* ``jpeg_reference.npz``: the reference pixels of every JPEG sample
  (``sample<i>``), decoded by the ``pillow`` backend (libjpeg-turbo, ISLOW
  IDCT). BKD-023 lets other backends differ from them within a tolerance.
* ``vectors.json``: per file and sample the stored size, ``stored_sha256``
  (the stored region), ``pixels_sha256`` (of the expected pixels, C order
  ``(H, W, 3)`` uint8; for PNG and raw the source image, which both must
  reproduce exactly) and the tolerance for JPEG.

The source images are a pure function of a fixed seed, so rerunning the
script with the same Pillow (JPEG encoder and reference decoder) gives
byte-identical files.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
#: Where the suite finds the vectors: package data of ffcvx.testing.
PACKAGE_VECTORS = os.path.normpath(os.path.join(HERE, '..', '..', 'ffcvx', 'testing', 'vectors'))
SCHEMA = 'ffcvx-decoder-vectors/1'
SEED = 20260101
PAGE_SIZE = 1 << 21
#: (height, width, kind) of the source images of each file. ``gray`` images
#: have R = G = B, ``smooth`` ones are gradients with mild noise (small JPEGs),
#: ``noise`` ones are uniform noise (worst case for lossy coding).
SHAPES = {
    'jpeg': [(1, 1, 'smooth'), (17, 23, 'noise'), (48, 64, 'smooth'), (64, 48, 'gray'),
             (128, 160, 'smooth')],
    'png': [(1, 1, 'noise'), (5, 7, 'noise'), (33, 20, 'smooth'), (64, 64, 'gray'),
            (40, 72, 'noise')],
    'raw': [(1, 1, 'noise'), (7, 3, 'noise'), (24, 32, 'smooth')],
}
WRITE_MODES = {'jpeg': 'jpg', 'png': 'png', 'raw': 'raw'}
JPEG_QUALITY = 90
#: BKD-023's agreement bound between two backends on a baseline JPEG.
JPEG_TOLERANCE = {'max_abs': 24, 'mean_abs': 2.0, 'clause': 'BKD-023'}


def source_image(rng, h, w, kind):
    """One deterministic ``uint8 (h, w, 3)`` image."""
    if kind == 'noise':
        return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([255 * yy / max(h - 1, 1), 255 * xx / max(w - 1, 1),
                     127 + 100 * np.sin((yy + xx) / 7.0)], axis=2)
    base += rng.normal(0, 6, size=base.shape)
    image = np.clip(np.rint(base), 0, 255).astype(np.uint8)
    if kind == 'gray':
        image = np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(image)


def sources():
    """Source images per file name, from the fixed seed."""
    rng = np.random.default_rng(SEED)
    return {name: [source_image(rng, h, w, kind) for h, w, kind in shapes]
            for name, shapes in SHAPES.items()}


def sha256(array_or_bytes):
    data = array_or_bytes.tobytes() if isinstance(array_or_bytes, np.ndarray) else array_or_bytes
    return hashlib.sha256(data).hexdigest()


def write_beton(path, images, write_mode):
    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.writer import DatasetWriter

    dataset = [(image, label) for label, image in enumerate(images)]
    writer = DatasetWriter(path, {'image': RGBImageField(write_mode=write_mode,
                                                         jpeg_quality=JPEG_QUALITY),
                                  'label': IntField()},
                           page_size=PAGE_SIZE, num_workers=1, progress=False)
    writer.from_indexed_dataset(dataset, chunksize=len(dataset))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=PACKAGE_VECTORS,
                        help="output folder (default: ffcvx/testing/vectors of this source tree)")
    args = parser.parse_args(argv)

    from ffcvx.reader import Reader
    from ffcvx.registry import Registry

    pillow = Registry('ffcvx.decoders').get('pillow')
    ok, why = pillow.available()
    if not ok:
        sys.exit(f"the pillow backend makes the JPEG reference pixels: {why}")
    os.makedirs(args.out, exist_ok=True)
    manifest = {'schema': SCHEMA, 'seed': SEED, 'page_size': PAGE_SIZE, 'files': {}}
    reference = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, images in sources().items():
            beton = os.path.join(tmp, f'{name}.beton')
            write_beton(beton, images, WRITE_MODES[name])
            raw_bytes = open(beton, 'rb').read()
            reader = Reader(beton)
            samples = []
            for i, image in enumerate(images):
                stored = bytes(reader.read_sample_region(i, 'image'))
                entry = {'height': image.shape[0], 'width': image.shape[1],
                         'stored_size': len(stored), 'stored_sha256': sha256(stored)}
                if name == 'jpeg':
                    pixels = pillow.decode_region_py(stored)
                    reference[f'sample{i}'] = pixels
                    entry['pixels_sha256'] = sha256(pixels)
                    entry['exact'] = False
                else:
                    entry['pixels_sha256'] = sha256(image)
                    entry['exact'] = True
                samples.append(entry)
            gz_name = f'{name}.beton.gz'
            with open(os.path.join(args.out, gz_name), 'wb') as f:
                f.write(gzip.compress(raw_bytes, compresslevel=9, mtime=0))
            manifest['files'][name] = {
                'beton_gz': gz_name, 'beton_sha256': sha256(raw_bytes), 'format': name,
                'write_mode': WRITE_MODES[name], 'field': 'image', 'samples': samples,
            }
    manifest['files']['jpeg'].update({
        'jpeg_quality': JPEG_QUALITY, 'reference_npz': 'jpeg_reference.npz',
        'reference_from': 'the pillow backend (libjpeg-turbo, ISLOW IDCT)',
        'tolerance': JPEG_TOLERANCE})
    # np.savez_compressed stamps the zip members with the current time; write
    # the archive by hand with fixed timestamps so reruns give the same bytes.
    _save_npz(os.path.join(args.out, 'jpeg_reference.npz'), reference)
    with open(os.path.join(args.out, 'vectors.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    print(f"wrote {', '.join(sorted(os.listdir(args.out)))} in {args.out}")


def _save_npz(path, arrays):
    import zipfile
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f'{key}.npy', date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buf.getvalue())


if __name__ == '__main__':
    main()
