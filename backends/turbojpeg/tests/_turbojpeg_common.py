"""What the turbojpeg backend's test modules share: the data folder, JPEG bytes, the C call."""
import ctypes
import io

import numpy as np

from ffcvx.testing import shared_dir  # noqa: F401  (re-exported to the test modules)



def jpeg_bytes(img, **options):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=options.pop("quality", 90), **options)
    return buf.getvalue()


I64 = ctypes.c_int64
DECODE_PROTO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, I64, I64, I64, I64, I64,
                                I64, I64, ctypes.c_void_p, I64, ctypes.c_void_p)


def call_c(c_decode, data, crop, target, capacity):
    src = np.frombuffer(data, np.uint8)
    out = np.zeros(max(capacity, 1), np.uint8)
    hw = np.zeros(2, np.int64)
    status = c_decode(src.ctypes.data, src.size, *crop, *target, out.ctypes.data, capacity,
                      hw.ctypes.data)
    return status, out, (int(hw[0]), int(hw[1]))
