"""The Loader and its traversal-order options (FFCV's ``ffcv.loader``)."""
from .loader import Loader, OrderOption

__all__ = ['Loader', 'OrderOption']
