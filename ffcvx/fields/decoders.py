"""Every built-in decoder, under FFCV's module path ``ffcv.fields.decoders``."""
from .basic_decoders import BytesDecoder, FloatDecoder, IntDecoder, NDArrayDecoder
from .rgb_decoders import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder,
                           ResizedCropRGBImageDecoder, SimpleRGBImageDecoder)

__all__ = ['BytesDecoder', 'CenterCropRGBImageDecoder', 'FloatDecoder', 'IntDecoder',
           'NDArrayDecoder', 'RandomResizedCropRGBImageDecoder', 'ResizedCropRGBImageDecoder',
           'SimpleRGBImageDecoder']
