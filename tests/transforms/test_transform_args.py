"""The transforms' shared argument checks (``_args.py``) and the label ops' one input rule."""
import math

import numpy as np
import pytest
import torch

from ffcvx.pipeline.state import State
from ffcvx.transforms import (LabelColorJitter, LabelGaussianBlur, LabelGrayscale,
                              LabelRandomHorizontalFlip, LabelSolarization, LabelTranslate)
from ffcvx.transforms._args import number, probability, range_pair, seed_arg


@pytest.mark.parametrize('value, rules, expected', [
    ((0.1, 0.5), dict(low=0, low_open=True), (0.1, 0.5)),
    ([2, 2], dict(low=0, low_open=True), (2.0, 2.0)),             # min == max allowed
    (np.array([0.0, 1.0]), dict(low=0, high=1), (0.0, 1.0)),
    (0.7, dict(low=0, low_open=True, scalar=True), (0.7, 0.7)),
    ((1.0, math.inf), dict(low=0, low_open=True, finite=False), (1.0, math.inf)),
])
def test_range_pair_accepts(value, rules, expected):
    assert range_pair('Op', 'arg', value, **rules) == expected


@pytest.mark.parametrize('value, rules, message', [
    ((0.5, 0.2), {}, 'Op: arg must be a pair (min, max) with min <= max, finite, got (0.5, 0.2)'),
    ((0.0, 1.0), dict(low=0, low_open=True), 'with 0 < min <= max'),
    ((0.1, 1.2), dict(low=0, high=1), 'with 0 <= min <= max <= 1'),
    ((1.0, math.inf), {}, 'finite'),
    ((math.nan, 1.0), dict(finite=False), 'Op: arg must be a pair'),
    (0.5, {}, 'Op: arg must be a pair'),                            # no scalar unless allowed
    (0.0, dict(low=0, low_open=True, scalar=True), 'a number or a pair (min, max) with 0 < min'),
    ((1, 2, 3), {}, 'Op: arg must be a pair'),
    ('ab', {}, 'Op: arg must be a pair'),
    ((True, 2), {}, 'Op: arg must be a pair'),
])
def test_range_pair_refuses_in_one_form(value, rules, message):
    with pytest.raises(ValueError) as info:
        range_pair('Op', 'arg', value, **rules)
    assert message in str(info.value)


def test_numbers_probabilities_and_seeds():
    assert number('Op', 'x', 3, low=0) == 3.0 and probability('Op', 'p', 1) == 1.0
    for value, rules, message in ((-1, dict(low=0), 'Op: x must be a finite number >= 0, got -1'),
                                  (0, dict(low=0, low_open=True), 'a finite number > 0'),
                                  (math.inf, {}, 'a finite number, got inf'),
                                  (300, dict(high=255, unit='uint8'), 'a finite number <= 255 (uint8)'),
                                  ('1', {}, 'a finite number'), (True, {}, 'a finite number')):
        with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
            number('Op', 'x', value, **rules)
    with pytest.raises(ValueError, match=r'Op: p must be a finite number in \[0, 1\], got 1.5'):
        probability('Op', 'p', 1.5)
    assert seed_arg('Op', None) is None and seed_arg('Op', np.int64(3)) == 3
    for bad in (-1, 1.5, True, '2'):
        with pytest.raises(ValueError, match='Op: seed must be None or an integer >= 0'):
            seed_arg('Op', bad)


LABEL_OPS = [LabelRandomHorizontalFlip(seed=1), LabelTranslate(2, seed=1), LabelGrayscale(seed=1),
             LabelSolarization(seed=1), LabelGaussianBlur(0.5, seed=1), LabelColorJitter(seed=1),
             LabelColorJitter(seed=1, with_order=True)]


@pytest.mark.parametrize('op', LABEL_OPS, ids=lambda op: type(op).__name__)
def test_label_ops_share_one_input_rule(op):
    columns = {'LabelTranslate': 2, 'LabelColorJitter': 8 if getattr(op, 'with_order', False) else 4}
    added = columns.get(type(op).__name__, 1)
    for shape, width in (((), 1), ((1,), 1), ((3,), 3)):
        for dtype in (np.int64, np.float32, np.uint8):
            state, query = op.declare_state_and_memory(State(True, torch.device('cpu'), shape,
                                                             np.dtype(dtype)))
            assert state.shape == query.shape == (width + added,)
            assert state.dtype == query.dtype == np.float32
    for shape, dtype in (((8, 8, 3), np.uint8), ((2, 1), np.int64), (None, np.int64), ((1,), np.void)):
        with pytest.raises(ValueError, match=f'{type(op).__name__} appends columns to labels'):
            op.declare_state_and_memory(State(True, torch.device('cpu'), shape, np.dtype(dtype)))
    with pytest.raises(ValueError, match='before ToTensor'):
        op.declare_state_and_memory(State(False, torch.device('cpu'), (1,), torch.int64))
