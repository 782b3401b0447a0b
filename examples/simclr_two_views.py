"""A SimCLR-style loader: two independently augmented views of each stored image.

Usage::

    ffcvx convert imagefolder ../shared/data/photos photos.beton --write-mode jpg
    python examples/simclr_two_views.py photos.beton [--batches 3] [--batch-size 32] [--num-workers -1]

Each view is its own RandomResizedCrop 224 + flip + colour changes, so the
two views of a sample differ; ``custom_field_mapper`` (FFCV-SSL's argument)
makes ``image2`` a second read of the ``image`` field. The brightness,
contrast and saturation steps stand in for the full SimCLR colour
augmentations. Prints each batch's shapes and the rate in views per second
(compilation included in the first batch, so the rate is over the later ones).
"""
import argparse
import time

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import (RandomBrightness, RandomContrast, RandomHorizontalFlip, RandomSaturation,
                              ToTensor, ToTorchImage)


def view():
    """One view's pipeline: crop, flip, colour, then a (B, 3, 224, 224) uint8 tensor."""
    return [RandomResizedCropRGBImageDecoder((224, 224), scale=(0.08, 1.0)),
            RandomHorizontalFlip(0.5),
            RandomBrightness(0.4, p=0.8), RandomContrast(0.4, p=0.8), RandomSaturation(0.4, p=0.8),
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
                    pipelines={'image': view(), 'image2': view(), 'label': [IntDecoder(), ToTensor()]})
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
