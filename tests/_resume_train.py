"""Training job of tests/loader/test_resume_kill.py: a small CNN on Fashion-MNIST, deterministic on CPU.

Usage: python _resume_train.py BETON CHECKPOINT WEIGHTS_OUT

Saves model, optimizer and ``loader.state_dict()`` after every batch (atomic
``os.replace``), printing ``batch N`` once saved; started again with the
checkpoint present, it resumes from it. Writes the final weights to WEIGHTS_OUT.
"""
import os
import sys

import torch
from torch import nn

from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import Convert, RandomHorizontalFlip, Squeeze, ToTensor, ToTorchImage

EPOCHS = 2


def main(beton, checkpoint, weights_out):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = Loader(beton, batch_size=50, num_workers=2, order=OrderOption.RANDOM, seed=3,
                    pipelines={'image': [SimpleRGBImageDecoder(), RandomHorizontalFlip(),
                                         ToTensor(), ToTorchImage(channels_last=False),
                                         Convert(torch.float32)],
                               'label': [IntDecoder(), ToTensor(), Squeeze()]})
    if os.path.exists(checkpoint):
        saved = torch.load(checkpoint)
        model.load_state_dict(saved['model'])
        optimizer.load_state_dict(saved['optimizer'])
        loader.load_state_dict(saved['loader'])
    step = 0
    while loader.state_dict()['epoch'] < EPOCHS:
        for images, labels in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images / 255), labels)
            loss.backward()
            optimizer.step()
            partial = checkpoint + '.partial'
            torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                        'loader': loader.state_dict()}, partial)
            os.replace(partial, checkpoint)
            step += 1
            print(f"batch {step}", flush=True)
    torch.save(model.state_dict(), weights_out)
    loader.close()


if __name__ == '__main__':
    main(*sys.argv[1:4])
