"""Transforms: augmentations and conversions, as pipeline Operations (FFCV's and FFCV-SSL's names)."""
from .color_jitter import RandomBrightness, RandomContrast, RandomSaturation
from .colorjitter import LabelColorJitter, RandomColorJitter
from .common import Squeeze
from .cutout import Cutout
from .erasing import RandomErasing
from .flip import LabelRandomHorizontalFlip, RandomHorizontalFlip
from .gaussian_blur import GaussianBlur, LabelGaussianBlur
from .grayscale import LabelGrayscale, RandomGrayscale
from .mixup import ImageMixup, LabelMixup, MixupToOneHot
from .module import ModuleWrapper
from .normalize import NormalizeImage
from .ops import Convert, ToDevice, ToTensor, ToTorchImage, View
from .poisoning import Poison
from .resized_crop import (CenterCrop, CornerCrop, LabelRandomResizedCrop, PadRGBImageDecoder,
                           RandomResizedCrop)
from .replace_label import ReplaceLabel
from .rotate import Rotate
from .solarization import LabelSolarization, RandomSolarization
from .translate import LabelTranslate, RandomTranslate

__all__ = ['ToTensor', 'ToDevice', 'ToTorchImage', 'NormalizeImage', 'Convert', 'Squeeze', 'View',
           'RandomResizedCrop', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'ImageMixup',
           'LabelMixup', 'MixupToOneHot', 'Poison', 'ReplaceLabel', 'ModuleWrapper',
           'RandomBrightness', 'RandomContrast', 'RandomSaturation',
           'LabelRandomHorizontalFlip', 'LabelTranslate',
           'RandomColorJitter', 'LabelColorJitter', 'RandomGrayscale', 'LabelGrayscale',
           'RandomSolarization', 'LabelSolarization',
           'GaussianBlur', 'LabelGaussianBlur', 'RandomErasing', 'Rotate',
           'LabelRandomResizedCrop', 'CenterCrop', 'CornerCrop', 'PadRGBImageDecoder']
