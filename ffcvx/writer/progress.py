"""Progress of one write: the tqdm bar, the outcome counts and the closing line.

The bar counts samples (``img`` when the writer has an image field) and
advances once per work item, as the calling process encodes it or a worker
reports it done; tqdm derives the rate and the ETA from ``total``. The
fields' outcome labels (:mod:`ffcvx.fields.outcomes`) come back with each
item's report, as counts, and are summed here into a :class:`WriteStats`.
"""
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from tqdm import tqdm

from ..fields import ImageField
from ..fields.outcomes import OUTCOMES
from .imagefolder import FALLBACK

__all__ = ['Progress', 'WriteStats', 'progress_disabled']


def progress_disabled(progress):
    """Whether the bar and the closing line are off: ``progress=False`` or ``TQDM_DISABLE`` set."""
    return (not progress or
            os.environ.get('TQDM_DISABLE', '').lower() not in ('', '0', 'false'))


@dataclass(frozen=True)
class WriteStats:
    """What one write did: ``DatasetWriter.last_write``, also returned by the ``from_*`` methods.

    Attributes
    ----------
    path : str
        The file written.
    num_samples : int
        Samples written.
    seconds : float
        Wall-clock time of the write, from its start to the file in place.
    outcomes : dict[str, dict[str, int]]
        Per field that reports outcomes (the image fields), the number of
        samples per outcome label, every label of
        :data:`ffcvx.fields.outcomes.OUTCOMES` present (in that order):
        ``'passed through'`` (a JPEG stored byte for byte), ``'shrunk'``
        (shrunk to ``max_resolution``, then stored), ``'re-encoded'``
        (stored as a JPEG or PNG written here at its size), ``'raw'``
        (stored as pixels at its size). Each field's counts sum to
        ``num_samples``.
    fast_path : str or None
        The fast path the samples were read with, e.g. ``'torchvision
        ImageFolder'`` (files read by path instead of ``dataset[i]``), or None.
    read_by_path : int
        Samples whose image the fast path read by path; the others of a
        fast-path write were read with ``dataset[i]`` (files the field
        refuses as more than 8 bits per channel). 0 without a fast path.
    unit : str
        ``'img'`` when the writer has an image field, else ``'samples'``.
    """

    path: str
    num_samples: int
    seconds: float
    outcomes: dict = field(default_factory=dict)
    fast_path: Optional[str] = None
    read_by_path: int = 0
    unit: str = 'samples'

    @property
    def samples_per_second(self):
        """float: ``num_samples / seconds`` (0.0 for an empty or instant write)."""
        return self.num_samples / self.seconds if self.seconds > 0 else 0.0

    def summary(self):
        """The closing line, e.g. ``wrote 2,000 samples to out.beton in 3.1 s (645 img/s): image:
        1,200 passed through, 700 shrunk, 100 re-encoded, 0 raw``."""
        text = (f"wrote {self.num_samples:,} samples to {os.path.basename(self.path)} in "
                f"{self.seconds:.1f} s ({self.samples_per_second:,.0f} {self.unit}/s)")
        parts = [f"{name}: " + ", ".join(f"{count:,} {label}" for label, count in counts.items())
                 for name, counts in self.outcomes.items()]
        if self.fast_path is not None:
            by_path = (f"read {self.read_by_path:,} images by path ({self.fast_path} fast path"
                       + (f"; {self.num_samples - self.read_by_path:,} with dataset[i])"
                          if self.read_by_path < self.num_samples else ")"))
            parts.append(by_path)
        return text + (": " + "; ".join(parts) if parts else "")


class _ProgressBar(tqdm):
    """tqdm without its monitor thread: tqdm never stops that thread, and while it lives
    the next write's workers could not be forked (``workers.start_method``)."""

    monitor_interval = 0


class Progress:
    """The bar of one write and the sum of its outcome counts.

    Used as a context manager around the encoding: the bar exists only
    inside it (it is entered after workers were forked). :meth:`advance` is
    called once per work item.

    Parameters
    ----------
    path : str
        The target (its name labels the bar).
    num_samples : int
        The bar's total.
    field_names : list of str
    handlers : list of Field
    disabled : bool
        No bar and no closing line (:func:`progress_disabled`).
    fast_path : str or None
        The source's fast path (``Source.fast_path``).
    """

    def __init__(self, path, num_samples, field_names, handlers, disabled, fast_path=None):
        self.path = path
        self.num_samples = num_samples
        self.disabled = disabled
        self.fast_path = fast_path
        self.unit = 'img' if any(isinstance(h, ImageField) for h in handlers) else 'samples'
        # image fields that return outcomes are listed even when no sample reached them
        self.reporting = [name for name, h in zip(field_names, handlers)
                          if isinstance(h, ImageField) and type(h).encode is ImageField.encode]
        self.field_names = field_names
        self.counts = {}
        self.started = time.perf_counter()
        self.bar = None

    def __enter__(self):
        # 1.28M/1.28M reads better than 1281167/1281167; below, tqdm would show 31.0/31.0
        self.bar = _ProgressBar(total=self.num_samples, unit=self.unit,
                                unit_scale=self.num_samples >= 100_000,
                                disable=self.disabled,
                                desc=f'Writing {os.path.basename(self.path)}')
        return self

    def __exit__(self, *exc_info):
        self.bar.close()
        return False

    def advance(self, done, counts):
        """Count ``done`` more samples written and their ``(field, outcome) -> samples`` counts."""
        for key, count in counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        if done:
            self.bar.update(done)

    def finish(self):
        """The :class:`WriteStats` of the write; prints its closing line unless disabled."""
        seconds = time.perf_counter() - self.started
        outcomes = {}
        for name in self.field_names:
            labels = {label: count for (group, label), count in self.counts.items()
                      if group == name}
            if name in self.reporting:
                ordered = {label: labels.pop(label, 0) for label in OUTCOMES}
                outcomes[name] = {**ordered, **labels}
            elif labels:                   # a custom field's own labels
                outcomes[name] = labels
        read_by_path = (self.num_samples - self.counts.get(FALLBACK, 0)
                        if self.fast_path is not None else 0)
        stats = WriteStats(self.path, self.num_samples, seconds, outcomes, self.fast_path,
                           read_by_path, self.unit)
        if not self.disabled:
            tqdm.write(stats.summary(), file=sys.stderr)
        return stats
