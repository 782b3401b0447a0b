"""FFCV 1.0's module path of ``RandomResizedCrop`` (``ffcv.transforms.random_resized_crop``).

The class lives in :mod:`ffcvx.transforms.resized_crop` (FFCV-SSL's module):
one Operation that takes FFCV 1.0's ``RandomResizedCrop(scale, ratio, size)``
and FFCV-SSL's ``RandomResizedCrop(output_size, ...)``, and crops decoded
images when it follows a decoder, as FFCV 1.0's transform did.
"""
from .resized_crop import RandomResizedCrop

__all__ = ['RandomResizedCrop']
