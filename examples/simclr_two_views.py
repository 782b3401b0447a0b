"""A SimCLR-style loader: two independently augmented views of each stored image.

Usage::

    ffcvx convert imagefolder ../shared/data/photos photos.beton --write-mode jpg
    python examples/simclr_two_views.py photos.beton [--batches 3] [--batch-size 32] [--num-workers -1]

Each view is RandomResizedCrop 224 + flip + colour jitter + grayscale +
Gaussian blur + solarization, the augmentations of SimCLR with BYOL's
asymmetric blur and solarization probabilities, as FFCV-SSL's examples
write them. ``custom_field_mapper`` (FFCV-SSL's argument) makes ``image2``
a second read of the ``image`` field; ffcvx decodes each JPEG once for both
views. Prints each batch's shapes and the rate in views per second
(compilation is in the first batch, so the rate is over the later ones).
"""
import argparse
import time

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import (GaussianBlur, RandomColorJitter, RandomGrayscale, RandomHorizontalFlip,
                              RandomSolarization, ToTensor, ToTorchImage)


def view(blur_prob, solarization_prob):
    """One view's pipeline, ending in a (B, 3, 224, 224) uint8 tensor."""
    return [RandomResizedCropRGBImageDecoder((224, 224), scale=(0.08, 1.0)),
            RandomHorizontalFlip(0.5),
            RandomColorJitter(0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
            RandomGrayscale(0.2),
            GaussianBlur(blur_prob, kernel_size=23, sigma=(0.1, 2.0)),
            RandomSolarization(solarization_prob),
            ToTensor(), ToTorchImage()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('path', help='a .beton with an RGB image field "image" and a label field "label"')
    parser.add_argument('--batches', type=int, default=3, help='batches to load (default 3)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--num-workers', type=int, default=-1, help='threads (-1: all cores)')
    args = parser.parse_args(argv)

    loader = Loader(args.path, batch_size=args.batch_size, num_workers=args.num_workers,
                    order=OrderOption.RANDOM, seed=0, drop_last=False,
                    custom_field_mapper={'image2': 'image'},
                    pipelines={'image': view(1.0, 0.0), 'image2': view(0.1, 0.2),
                               'label': [IntDecoder(), ToTensor()]})
    names = loader.graph.output_names
    done, views, start = 0, 0, None
    while done < args.batches:
        for batch in loader:
            batch = dict(zip(names, batch))
            print(f"batch {done}: " + ", ".join(f"{name} {tuple(batch[name].shape)}" for name in names))
            if start is None:
                start = time.perf_counter()        # after the first batch: compiled, warm
            else:
                views += 2 * batch['image'].shape[0]
            done += 1
            if done == args.batches:
                break
    if views:
        print(f"{views / (time.perf_counter() - start):,.0f} views/s on {loader.num_workers} thread(s)")
    loader.close()


if __name__ == '__main__':
    main()
