"""A training job SIGKILLed at a random batch and restarted from its last checkpoint
(model + optimizer + ``loader.state_dict()``) ends with the uninterrupted run's weights."""
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from ffcvx.datasets import FashionMNIST
from ffcvx.fields import IntField, RGBImageField
from ffcvx.writer import DatasetWriter

from _common import REPO

SCRIPT = str(REPO / 'tests' / '_resume_train.py')
SAMPLES = 1200


@pytest.fixture(scope='module')
def beton(tmp_path_factory):
    data = FashionMNIST(train=False)     # installed by make setup (dataset-fashion-mnist)
    samples = [(np.repeat(data.images[i][:, :, None], 3, axis=2), int(data.labels[i]))
               for i in range(SAMPLES)]
    path = tmp_path_factory.mktemp('kill') / 'fashion.beton'
    DatasetWriter(path, {'image': RGBImageField(write_mode='raw'), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(samples)
    return str(path)


def _train(beton, folder, name):
    return subprocess.Popen([sys.executable, SCRIPT, beton, str(folder / f'{name}.ckpt'),
                             str(folder / f'{name}.weights')], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_and_resumed_training_ends_with_the_uninterrupted_weights(beton, tmp_path):
    whole = _train(beton, tmp_path, 'whole')
    out, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err
    total = out.count('batch ')
    assert total == 2 * (SAMPLES // 50)
    kill_at = random.Random().randint(3, total - 3)
    victim = _train(beton, tmp_path, 'resumed')
    for line in victim.stdout:
        if line.strip() == f'batch {kill_at}':
            victim.kill()        # SIGKILL: no clean-up runs
            break
    victim.wait(timeout=60)
    assert victim.returncode == -9 and not (tmp_path / 'resumed.weights').exists()
    rest = _train(beton, tmp_path, 'resumed')
    out, err = rest.communicate(timeout=600)
    assert rest.returncode == 0, err
    # the checkpoint is written before "batch k" is printed, possibly a later one too
    assert total - kill_at - 1 <= out.count('batch ') <= total - kill_at
    expected = torch.load(tmp_path / 'whole.weights')
    got = torch.load(tmp_path / 'resumed.weights')
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), (key, kill_at)
