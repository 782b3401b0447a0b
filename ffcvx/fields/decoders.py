"""Every built-in decoder, under FFCV's module path ``ffcv.fields.decoders``.

The decoders live in the decode layer, :mod:`ffcvx.decoders`; this module
re-exports them (importing it imports the pipeline and torch).
"""
from ..decoders import (BytesDecoder, CenterCropRGBImageDecoder, FloatDecoder, IntDecoder,
                        NDArrayDecoder, RandomResizedCropRGBImageDecoder, ResizedCropRGBImageDecoder,
                        SimpleRGBImageDecoder)

__all__ = ['BytesDecoder', 'CenterCropRGBImageDecoder', 'FloatDecoder', 'IntDecoder',
           'NDArrayDecoder', 'RandomResizedCropRGBImageDecoder', 'ResizedCropRGBImageDecoder',
           'SimpleRGBImageDecoder']
