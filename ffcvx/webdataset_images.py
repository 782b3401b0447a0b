"""WebDataset tar shards as ``(encoded image bytes, int label)`` samples.

For :meth:`ffcvx.writer.DatasetWriter.from_webdataset` (``ffcvx convert
webdataset``): :func:`expand_shards` turns shard patterns into the list of
shards, :class:`WebDatasetImages` is the per-shard pipeline. The image
member's bytes go to the image field undecoded, so that a JPEG can be stored
byte for byte (``jpeg_passthrough``).
"""
import os

from .extras import require

__all__ = ['IMAGE_KEYS', 'SampleError', 'WebDatasetImages', 'expand_shards']

#: Image member suffixes tried in this order when no key is given.
IMAGE_KEYS = ('jpg', 'jpeg', 'png', 'webp')


class SampleError(ValueError):
    """A sample of the shards that cannot be converted: no image member, a label that is no integer."""


def _is_local(shard):
    # webdataset opens anything with a scheme (pipe:, http://, s3://, ...) through gopen
    return ':' not in shard.split('/', 1)[0]


def expand_shards(patterns, user='DatasetWriter.from_webdataset'):
    """Shards of ``patterns`` in order, braces expanded as webdataset does.

    Parameters
    ----------
    patterns : sequence of str
        Paths or URLs, each possibly a brace pattern (``data-{000..009}.tar``)
        or a ``::``-separated list (webdataset's ``expand_urls``).
    user : str
        Who asks, for the message naming the extra when webdataset is missing.

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        If a local shard does not exist (all such are named); URLs are not checked.
    ValueError
        If the patterns expand to no shard.
    ffcvx.extras.MissingExtraError
        If the ``webdataset`` package is not installed.
    """
    webdataset = require('webdataset', 'webdataset', user)
    shards = []
    for pattern in patterns:
        shards.extend(webdataset.shardlists.expand_urls(os.fspath(pattern)))
    if not shards:
        raise ValueError("no shards given")
    missing = [shard for shard in shards if _is_local(shard) and not os.path.isfile(shard)]
    if missing:
        shown = ', '.join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FileNotFoundError(f"no such shard: {shown}")
    return shards


class WebDatasetImages:
    """The pipeline that turns one shard's WebDataset into ``(image bytes, label)`` tuples.

    Picklable (writer workers may be spawned); used once to count each
    shard's samples and once to write them, and yields the same both times.

    Parameters
    ----------
    image_key : str or None
        Suffix of the image member (``jpg`` for ``KEY.jpg``); alternatives
        separated by ``;`` as in webdataset's ``to_tuple`` (``jpg;png``).
        None: the first of :data:`IMAGE_KEYS` that the sample has.
    label_key : str
        Suffix of the label member: an integer as text (``KEY.cls`` holding
        ``3``; surrounding white space allowed).

    Raises
    ------
    SampleError
        While iterating: a sample without the image member or the label
        member, or whose label is not an integer, naming the sample's key
        and shard and listing the members it has.
    """

    def __init__(self, image_key=None, label_key='cls'):
        self.image_keys = tuple(image_key.lower().split(';')) if image_key else IMAGE_KEYS
        self.label_key = label_key.lower()   # webdataset lower-cases member suffixes

    def __call__(self, dataset):
        return map(self.sample, dataset)

    def sample(self, record):
        """``(bytes, int)`` of one webdataset sample dict (``{'__key__': ..., 'jpg': b'...'}``)."""
        image_key = next((key for key in self.image_keys if key in record), None)
        if image_key is None:
            raise SampleError(f"{_where(record)} has no image member "
                              f"({' or '.join('.' + k for k in self.image_keys)}); "
                              f"its members: {_members(record)}")
        if self.label_key not in record:
            raise SampleError(f"{_where(record)} has no label member .{self.label_key}; "
                              f"its members: {_members(record)}")
        text = record[self.label_key]
        try:
            label = int(text)           # int() takes bytes of ASCII digits, blanks around them
        except (TypeError, ValueError):
            raise SampleError(f"{_where(record)}: label .{self.label_key} is {bytes(text[:40])!r}, "
                              f"not an integer") from None
        return record[image_key], label

    def __repr__(self):
        return f"WebDatasetImages(image_key={';'.join(self.image_keys)!r}, label_key={self.label_key!r})"


def _where(record):
    return f"sample {record.get('__key__')!r} of shard {record.get('__url__')!r}"


def _members(record):
    return ', '.join('.' + key for key in record if not key.startswith('__')) or 'none'
