"""Argument checks of the crop decoders: ranges, sizes, seeds, RandomResizedCrop's two signatures."""
import numpy as np

from . import _args
from ._args import positive_int, seed_arg

_SIGNATURES = ("RandomResizedCrop takes FFCV 1.0's RandomResizedCrop(scale, ratio, size) or "
               "FFCV-SSL's RandomResizedCrop(output_size, scale=(0.08, 1.0), ratio=(3/4, 4/3), "
               "seed=None, second_seed=None)")
#: Marks an argument not given (None is a valid seed).
UNSET = object()


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pair(value):
    try:
        a, b = value
    except (TypeError, ValueError):
        return None
    return (a, b) if all(isinstance(v, (int, float, np.integer, np.floating))
                         and not isinstance(v, (bool, np.bool_)) for v in (a, b)) else None


def range_pair(op, name, value):
    """``(low, high)`` as floats with ``0 < low <= high`` (an infinite high allowed), else ValueError."""
    return _args.range_pair(op, name, value, low=0, low_open=True, finite=False)


def output_size_pair(op, value):
    """``(height, width)`` of positive ints, else ValueError naming ``op``."""
    pair = _pair(value)
    if pair is None or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(f"{op}: output_size must be a pair (height, width) of positive ints, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def seed_or_none(op, name, value):
    """None or an int >= 0 (not a bool), else ValueError naming ``op`` and ``name``."""
    return seed_arg(op, value, name)


def parse_random_resized_crop(args, output_size, scale, ratio, size):
    """``(output_size, scale, ratio)`` from FFCV 1.0's or FFCV-SSL's arguments (``UNSET`` = not given).

    Keywords decide (``size``: FFCV 1.0, ``output_size``: FFCV-SSL); else
    three positional arguments ending in an int are FFCV 1.0's; else the
    first positional argument: a pair of ints > 1 is an output size, a pair
    of numbers in (0, 1] not both ints a scale.

    Raises
    ------
    TypeError
        For arguments fitting neither signature, naming both.
    ValueError
        For a bad size or range.
    """
    ffcv1 = size is not UNSET
    ssl = output_size is not UNSET
    if len(args) == 3 and _is_int(args[2]) and not ffcv1 and not ssl:
        ffcv1 = True            # (scale, ratio, size): FFCV 1.0's order, whatever the scale's type
    if args and not ffcv1 and not ssl:
        first = _pair(args[0])
        if first is not None and all(_is_int(v) and v > 1 for v in first):
            ssl = True
        elif first is not None and all(0 < v <= 1 for v in first) and not all(map(_is_int, first)):
            ffcv1 = True
        else:
            raise TypeError(f"{_SIGNATURES}; the first argument {args[0]!r} is neither an output "
                            f"size (a pair of ints > 1) nor a scale (a pair of floats in (0, 1])")
    if ssl and ffcv1:
        raise TypeError(f"{_SIGNATURES}: output_size and size cannot both be given")
    names = ('output_size', 'scale', 'ratio') if ssl else ('scale', 'ratio', 'size')
    if len(args) > 3:
        raise TypeError(f"{_SIGNATURES}: got {len(args)} positional arguments")
    given = dict(output_size=output_size, scale=scale, ratio=ratio, size=size)
    for name, value in zip(names, args):
        if given[name] is not UNSET:
            raise TypeError(f"RandomResizedCrop got multiple values for argument {name!r}")
        given[name] = value
    if ffcv1:
        missing = [n for n in names if given[n] is UNSET]
        if missing:
            raise TypeError(f"{_SIGNATURES}: FFCV 1.0's form misses {', '.join(missing)}")
        side = positive_int('RandomResizedCrop', 'size', given['size'])
        out = (side, side)
    elif ssl:
        out = output_size_pair('RandomResizedCrop', given['output_size'])
    else:
        raise TypeError(f"{_SIGNATURES}: no output size given")
    scale = (0.08, 1.0) if given['scale'] is UNSET else given['scale']
    ratio = (3 / 4, 4 / 3) if given['ratio'] is UNSET else given['ratio']
    return out, range_pair('RandomResizedCrop', 'scale', scale), range_pair('RandomResizedCrop', 'ratio', ratio)
