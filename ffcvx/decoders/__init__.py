"""The decode layer: Operations that turn a field's stored bytes into a batch.

Part of the pipeline layer: these modules import ``ffcvx.pipeline`` and
torch, and the format layer (``ffcvx.fields``) reaches them only lazily
(``Field.get_decoder_class`` and the FFCV-path aliases), so that writing a
dataset imports neither.

=====================  ==========================================================
module                 job
=====================  ==========================================================
``basic``              IntDecoder, FloatDecoder, NDArrayDecoder, BytesDecoder
``image``              the image decoders' base: channels, backends, the engine seam
``simple``             SimpleRGBImageDecoder
``crop``               ResizedCrop / RandomResizedCrop / CenterCrop decoders
``sample_engine``      the per-sample compiled engine (native and python backends)
``batch_engine``       the per-batch engine (backends of kind ``batch``, BKD-042)
``kernels``            samplers, resize kernels, byte helpers (public to transforms)
=====================  ==========================================================

Status codes: ``ffcvx.status`` (BKD-070).
"""
from .basic import BytesDecoder, FloatDecoder, IntDecoder, NDArrayDecoder
from .crop import CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder, ResizedCropRGBImageDecoder
from .image import ImageDecoder
from .simple import SimpleRGBImageDecoder

__all__ = ['BytesDecoder', 'CenterCropRGBImageDecoder', 'FloatDecoder', 'IntDecoder',
           'NDArrayDecoder', 'RandomResizedCropRGBImageDecoder', 'ResizedCropRGBImageDecoder',
           'SimpleRGBImageDecoder']
