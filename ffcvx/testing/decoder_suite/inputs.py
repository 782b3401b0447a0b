"""The inputs of the decoder conformance suite: spec vectors, golden JPEGs, made-up images.

The spec vectors are package data of ``ffcvx.testing`` (``ffcvx/testing/vectors``:
small ``.beton`` files written by ffcvx, gzipped, with ``vectors.json``;
``spec/vectors/make_vectors.py`` of the source tree writes them), so an
installed ffcvx has them too. FFCV 1.0.2's golden JPEG files are used when
found (``shared/golden/ffcv-1.0.2``). The gray check makes its one-component
JPEGs and PNGs itself with Pillow (:func:`gray_inputs`), and the corrupt-data
checks damage the vectors (:func:`corrupt_inputs`).
"""
import gzip
import hashlib
import importlib.resources
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ['GRAY_SHAPES', 'Vectors', 'corrupt_inputs', 'crops_of', 'golden_jpegs', 'gray_inputs',
           'sha256_of', 'vectors_dir']


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
        from ...reader import Reader

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
                        if sha256_of(row['reference']) != meta['pixels_sha256']:
                            raise ValueError(f"jpeg vector {i}: reference pixels differ from "
                                             f"vectors.json")
                    rows.append(row)
                self.samples[fmt] = rows

    def jpeg_tolerance(self):
        """``(max_abs, mean_abs)`` for JPEG pixels (BKD-023)."""
        tol = self.manifest['files']['jpeg']['tolerance']
        return tol['max_abs'], tol['mean_abs']


def sha256_of(array):
    """Hex SHA-256 of an array's C-order bytes (how vectors.json names pixels)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def golden_jpegs(golden_dir, limit=None):
    """``(case, index, data, expected_pixels, max_abs)`` of every JPEG sample of the golden files."""
    from ...reader import Reader

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


def crops_of(h, w):
    """Crops of an h x w image: corners, edges, odd offsets, single pixels."""
    crops = {(0, 0, h, w), (0, 0, 1, 1), (h - 1, w - 1, 1, 1), (0, w - 1, h, 1), (h - 1, 0, 1, w)}
    if h > 4 and w > 4:
        crops |= {(1, 1, h - 2, w - 2), (h // 3, w // 5, h // 2, w // 2), (3, 5, h - 4, w - 6),
                  (h // 2, 0, (h + 1) // 2, w // 3 + 1), (0, w // 2 + 1, h // 2 + 1, w - w // 2 - 1)}
    return sorted(c for c in crops if c[2] > 0 and c[3] > 0)


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
