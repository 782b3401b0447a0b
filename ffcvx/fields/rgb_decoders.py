"""Former home of the image decoders, kept as a re-export: use :mod:`ffcvx.decoders`.

The decoders are in ``ffcvx.decoders.simple`` and ``ffcvx.decoders.crop``,
the samplers and resize kernels in ``ffcvx.decoders.kernels``, the status
codes in ``ffcvx.status``.
"""
from ..backend_api import DECODE_REGION_PROTO  # noqa: F401
from ..decoders.crop import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder,  # noqa: F401
                             ResizedCropRGBImageDecoder)
from ..decoders.image import PNG_CHANNEL_ORDERS  # noqa: F401
from ..decoders.kernels import (RESIZE_PROTO, RESIZE_SCRATCH_PROTO, get_center_crop,  # noqa: F401
                                get_random_crop)
from ..decoders.simple import SimpleRGBImageDecoder  # noqa: F401
