"""Transforms: augmentations and conversions, as pipeline Operations (FFCV's names)."""
from .common import Squeeze
from .flip import RandomHorizontalFlip
from .module import ModuleWrapper
from .normalize import NormalizeImage
from .ops import Convert, ToDevice, ToTensor, ToTorchImage, View

__all__ = ['Convert', 'ModuleWrapper', 'NormalizeImage', 'RandomHorizontalFlip', 'Squeeze',
           'ToDevice', 'ToTensor', 'ToTorchImage', 'View']
