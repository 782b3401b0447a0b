"""Train a small CNN on Fashion-MNIST through the ffcvx Loader, on the CPU.

Usage: python examples/train_fashion_mnist.py DATA_DIR [--epochs N] [--workers N]

DATA_DIR holds train.beton and test.beton, as written by
``ffcvx convert fashion-mnist DATA_DIR``. Prints per-epoch loss, the loader's
own throughput (images/s with no model attached) and the final test accuracy.
"""
import argparse
import time
from pathlib import Path

import torch
from torch import nn

from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import Convert, RandomHorizontalFlip, Squeeze, ToTensor, ToTorchImage


def make_loader(path, batch_size, workers, train):
    image_ops = [SimpleRGBImageDecoder()]
    if train:
        image_ops.append(RandomHorizontalFlip())
    image_ops += [ToTensor(), ToTorchImage(channels_last=False), Convert(torch.float32)]
    return Loader(path, batch_size=batch_size, num_workers=workers,
                  order=OrderOption.RANDOM if train else OrderOption.SEQUENTIAL,
                  drop_last=train, seed=0,
                  pipelines={'image': image_ops, 'label': [IntDecoder(), ToTensor(), Squeeze()]})


def make_model():
    # Input (B, 3, 28, 28) in 0..255; the three channels are equal (gray).
    # Small enough to train in about a minute per epoch on two CPU cores.
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def loader_throughput(loader):
    """Images per second of one full pass with no model: the loader's own speed."""
    start = time.perf_counter()
    count = 0
    for images, _ in loader:
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predictions = model(images / 255.0).argmax(1)
            correct += int((predictions == labels).sum())
            total += labels.shape[0]
    return correct / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_dir', type=Path)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--workers', type=int, default=-1)
    args = parser.parse_args()
    torch.manual_seed(0)

    train = make_loader(args.data_dir / 'train.beton', args.batch_size, args.workers, train=True)
    test = make_loader(args.data_dir / 'test.beton', 512, args.workers, train=False)
    warm = loader_throughput(train)  # first pass also compiles the pipelines
    rate = loader_throughput(train)
    print(f"loader alone: {rate:,.0f} img/s (first pass, incl. compilation: {warm:,.0f} img/s)")

    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=4e-3,
                                                   total_steps=args.epochs * len(train))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    for epoch in range(args.epochs):
        model.train()
        start = time.perf_counter()
        seen = 0
        total_loss = 0.0
        for images, labels in train:
            loss = loss_fn(model(images / 255.0), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            seen += labels.shape[0]
            total_loss += loss.item() * labels.shape[0]
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total_loss / seen:.4f}, "
              f"{seen / elapsed:,.0f} img/s while training, {elapsed:.1f} s")
    accuracy = evaluate(model, test)
    print(f"test accuracy: {accuracy:.4f} on {len(test.indices)} test images")
    print(f"loader throughput: {rate:,.0f} img/s")
    train.close()
    test.close()
    if accuracy < 0.85:
        raise SystemExit(f"test accuracy {accuracy:.4f} is below the 0.85 target")


if __name__ == '__main__':
    main()
