"""A PNG-only ffcvx decoder backend living outside ffcvx (a test fixture).

It shows what a third party needs: one :class:`ffcvx.backend_api.PythonDecoderBackend`
subclass and an entry point in the group ``ffcvx.decoders``. It decodes only
what ffcvx writes for PNG samples (8-bit RGB, colour type 2, no interlace,
FMT-037) with :mod:`zlib` and numpy, and refuses anything else, which
BKD-022 allows (status -1).
"""
import struct
import zlib

import numpy as np

from ffcvx.backend_api import PythonDecoderBackend

__all__ = ["backend", "ToyPNGBackend"]


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


class ToyPNGBackend(PythonDecoderBackend):
    """Registered as ``toy``: 8-bit RGB PNG only, no crop, no scale."""

    name = "toy"
    formats = frozenset({"png"})
    requires = ("zlib",)

    def decode(self, data, crop, target):
        """Decode a whole 8-bit RGB, non-interlaced PNG.

        Returns
        -------
        ndarray of uint8, shape (H, W, 3)

        Raises
        ------
        ValueError
            For a damaged chunk (CRC), another colour type or bit depth.
        """
        pos, idat, header = 8, [], None
        while pos + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            crc = data[pos + 8 + length:pos + 12 + length]
            if len(body) != length or len(crc) != 4:
                raise ValueError("PNG chunk runs past the end of the data")
            # the checksum is what tells a damaged file from a valid one
            if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
                raise ValueError(f"PNG chunk {kind!r}: CRC mismatch")
            if kind == b"IHDR":
                header = struct.unpack(">IIBBBBB", body)
            elif kind == b"IDAT":
                idat.append(body)
            elif kind == b"IEND":
                break
            pos += 12 + length
        if header is None:
            raise ValueError("PNG without IHDR")
        width, height, depth, colour, _, _, interlace = header
        if (depth, colour, interlace) != (8, 2, 0):
            raise ValueError(f"only 8-bit RGB non-interlaced PNGs (got depth {depth}, "
                             f"colour type {colour}, interlace {interlace})")
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
        stride = width * 3
        if raw.size != height * (stride + 1):
            raise ValueError(f"PNG image data has {raw.size} bytes, expected {height * (stride + 1)}")
        rows = raw.reshape(height, stride + 1)
        out = np.zeros((height, stride), dtype=np.int32)
        prev = np.zeros(stride, dtype=np.int32)
        for r in range(height):
            kind, line = rows[r, 0], rows[r, 1:].astype(np.int32)
            if kind == 0:
                cur = line
            elif kind == 2:
                cur = (line + prev) & 0xFF
            elif kind in (1, 3, 4):
                # left-dependent filters need the pixel to the left: go pixel by pixel
                cur = np.zeros(stride, dtype=np.int32)
                for i in range(stride):
                    left = cur[i - 3] if i >= 3 else 0
                    up_left = prev[i - 3] if i >= 3 else 0
                    if kind == 1:
                        pred = left
                    elif kind == 3:
                        pred = (left + prev[i]) // 2
                    else:
                        pred = int(_paeth(np.int32(left), prev[i], np.int32(up_left)))
                    cur[i] = (line[i] + pred) & 0xFF
            else:
                raise ValueError(f"PNG row {r}: unknown filter type {kind}")
            out[r] = cur
            prev = cur
        return out.astype(np.uint8).reshape(height, width, 3)


#: The object the entry point loads.
backend = ToyPNGBackend()
