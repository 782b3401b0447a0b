"""The Loader: a .beton file, a memory strategy, an order and compiled pipelines."""
import enum
import os
import warnings

import numba
import numpy as np
import torch

from ..fields import decoders as _decoders
from ..memory_managers.select import select_strategy
from ..pipeline.graph import Branch, Graph, Pipeline
from ..pipeline.seeds import epoch_seed
from ..pipeline.operation import Operation
from ..pipeline.spec import PipelineSpec
from ..reader import Reader
from ..registry import Registry, decoder_for_format
from ..traversal_order import QuasiRandom, Random, Sequential, TraversalOrder
from ..transforms import ModuleWrapper, ToTensor
from .epoch_iterator import EpochIterator


_BUILTIN_DECODERS = tuple(getattr(_decoders, n) for n in _decoders.__all__)


class OrderOption(enum.Enum):
    """Built-in traversal orders."""

    SEQUENTIAL = Sequential
    RANDOM = Random
    QUASI_RANDOM = QuasiRandom


def _dist_rank_world():
    """This process's ``(rank, world_size)`` for ``distributed=True``.

    The initialised default ``torch.distributed`` process group decides; without
    one (e.g. a Loader built before ``init_process_group``), the ``RANK`` and
    ``WORLD_SIZE`` environment variables that ``torchrun`` sets; without those,
    ``(0, 1)`` with a warning.

    Raises
    ------
    ValueError
        If only one of ``RANK`` / ``WORLD_SIZE`` is set, either is not an
        integer, or they do not satisfy ``0 <= RANK < WORLD_SIZE``.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    rank_text, world_text = os.environ.get('RANK'), os.environ.get('WORLD_SIZE')
    if rank_text is None and world_text is None:
        warnings.warn("distributed=True, but no torch.distributed process group is initialised "
                      "and RANK / WORLD_SIZE are unset: this process loads the whole dataset "
                      "(rank 0 of 1)")
        return 0, 1
    if rank_text is None or world_text is None:
        # Guessing the missing one could give two processes the same shard.
        raise ValueError(f"distributed=True needs both RANK and WORLD_SIZE in the environment "
                         f"(or an initialised process group); got RANK={rank_text!r}, "
                         f"WORLD_SIZE={world_text!r}")
    try:
        rank, world_size = int(rank_text), int(world_text)
    except ValueError:
        raise ValueError(f"RANK and WORLD_SIZE must be integers, got RANK={rank_text!r}, "
                         f"WORLD_SIZE={world_text!r}") from None
    if not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world_size}")
    return rank, world_size


class Loader:
    """Iterate over a ``.beton`` file in batches, through compiled pipelines.

    Parameters
    ----------
    fname : str or path
        The ``.beton`` file.
    batch_size : int
    num_workers : int
        Threads that decode and augment (Numba threads); ``< 1`` means every
        CPU this process may run on. Capped at ``NUMBA_NUM_THREADS``.
    os_cache : bool or None
        FFCV's flag. True: read through the OS page cache (strategy 0).
        False: not the OS cache: the strategy ``FFCV_DEFAULT_CACHE_PROCESS``
        names, or the process cache (strategy 1) if it names none or ``0``.
        None: from ``FFCV_DEFAULT_CACHE_PROCESS`` (read when the Loader is
        made), the OS cache if unset.
    order : OrderOption or TraversalOrder subclass
    distributed : bool
        Give this process only its rank's share of every epoch, for any order
        (QUASI_RANDOM included). The rank and world size come from the
        initialised default ``torch.distributed`` process group or, without
        one, from the ``RANK`` and ``WORLD_SIZE`` environment variables that
        ``torchrun`` sets (neither: a warning, and the whole dataset).

        Every rank computes the same global order for an epoch, a function of
        ``seed`` and the epoch number (how many times the Loader was iterated
        before), so all ranks must pass the same seed and iterate their
        Loaders in step. Rank ``r`` takes positions ``r, r + world_size, ...``
        of that order.

        **Padding**: when the number of samples ``n`` (``len(indices)``) is not
        a multiple of ``world_size``, the global order is first extended by
        repeating its first ``(-n) % world_size`` samples (fewer than
        ``world_size``; cyclically if ``n`` is smaller still), as torch's
        ``DistributedSampler`` does. Every rank
        then gets ``ceil(n / world_size)`` samples and the same number of
        batches (DDP hangs otherwise), the ranks together cover all ``n``
        samples, and those few head samples are seen twice in that epoch.
        ``len(loader)`` is the number of batches of one rank.
    seed : int or None
        Seed of the traversal order and of the random augmentations; None
        draws one (0 when distributed, so ranks agree). Built-in random steps
        (crop decoders, flips, RandomTranslate, Cutout, colour jitter,
        RandomResizedCrop) draw per sample from (seed, epoch, step, sample
        index): the same seed gives the same batches whatever the thread
        count or batch size.
    indices : sequence of int or None
        Restrict the Loader to these samples, in this order for SEQUENTIAL.
    pipelines : dict of str to (list of Operation, PipelineSpec or None)
        Per field: the decoder (optional; the field's default otherwise) and
        transforms. A missing field gets ``[default decoder, ToTensor()]``;
        None drops it. Extra keys with a PipelineSpec add outputs, in this
        dict's order after the fields': ``source`` a field name reads that
        field again; ``source`` an Operation of a pipeline listed before it
        starts from that Operation's output (one decode, several outputs).
    custom_fields : dict of str to Field class
        Classes for fields stored with type id 255.
    drop_last : bool
        Drop the last, incomplete batch of each epoch.
    batches_ahead : int
        Batches prepared ahead of the training loop.
    recompile : bool
        Accepted for FFCV compatibility; compiled code is reused across epochs.
    backend : str or None
        Decoder backend name (entry-point group ``ffcvx.decoders``), e.g.
        ``"turbojpeg"``; None picks the best installed one per format. The
        named backend decodes the formats it declares; other formats (e.g.
        PNG samples when ``backend="turbojpeg"``) use the default order
        (spec/backends.md, BKD-053).
    order_kwargs : dict
        Extra arguments for the traversal order's constructor.
    cache : str, int or None
        Memory strategy, overriding ``os_cache`` and the environment: ``0``
        or ``"os"`` (OS page cache), ``1`` or ``"process"`` (bounded private
        cache filled ahead of need), ``2`` or ``"shared"`` (one copy per node
        in ``/dev/shm``), ``3`` or ``"redis"`` (pages served by a Redis
        server, filled once per file), or any name registered in the
        entry-point group ``ffcvx.caches``.
    cache_options : dict or None
        Keyword arguments of the strategy, e.g. ``{"max_bytes": 2**30}`` (the
        process cache's memory bound, bytes), ``{"shm_dir": "/dev/shm"}``, or
        ``{"url": "redis://host:6379/0", "fallback": "os"}`` (Redis; the URL
        defaults to ``FFCV_REDIS_URL``).

    Raises
    ------
    BetonFormatError
        If the file is corrupt (see ``spec/beton.md``).
    BackendNotFoundError
        If ``backend`` is unknown or unusable, or no backend decodes a stored format.
    ValueError
        For invalid arguments (the message says which), including an unknown
        memory strategy (the message lists the registered ones).
    """

    def __init__(self, fname, batch_size, num_workers=-1, os_cache=None,
                 order=OrderOption.SEQUENTIAL, distributed=False, seed=None, indices=None,
                 pipelines=None, custom_fields=None, drop_last=True, batches_ahead=3,
                 recompile=False, backend=None, order_kwargs=None, decoder_registry=None,
                 cache=None, cache_options=None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if int(batches_ahead) < 1:
            raise ValueError(f"batches_ahead must be at least 1, got {batches_ahead}")
        self.fname = str(fname)
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.batches_ahead = int(batches_ahead)
        self.recompile = recompile
        self.distributed = bool(distributed)
        self.reader = Reader(self.fname, custom_handlers=custom_fields or {})

        self.num_workers = self._thread_count(num_workers)
        self.rank, self.world_size = _dist_rank_world() if self.distributed else (0, 1)
        if seed is None:
            if self.distributed:
                warnings.warn("distributed=True without a seed: using seed 0 so that ranks agree")
                seed = 0
            else:
                seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
        self.seed = int(seed)

        if indices is None:
            self.indices = np.arange(self.reader.num_samples, dtype=np.uint64)
        else:
            idx = np.asarray(indices)
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= self.reader.num_samples)):
                raise ValueError(f"indices must be a 1-D sequence of sample numbers in "
                                 f"[0, {self.reader.num_samples})")
            self.indices = idx.astype(np.uint64)

        # The environment is read here, at construction, so a process can
        # change FFCV_DEFAULT_CACHE_PROCESS between Loaders.
        self.memory_manager = select_strategy(self.reader, cache=cache, os_cache=os_cache,
                                              options=cache_options)

        order_class = order.value if isinstance(order, OrderOption) else order
        if not (isinstance(order_class, type) and issubclass(order_class, TraversalOrder)):
            raise ValueError(f"order must be an OrderOption or a TraversalOrder subclass, got {order!r}")
        self.traversal_order = order_class(self, **(order_kwargs or {}))

        self._decoders = decoder_registry or Registry('ffcvx.decoders')
        self._backend_name = backend
        if backend is not None:
            self._decoders.get(backend)  # unknown names fail here, listing the registered ones
        self.num_slots = self.batches_ahead + 2
        self.graph = Graph(self._build_pipelines(pipelines or {}))
        self.next_epoch = 0
        self._current = None

    # -- construction helpers -----------------------------------------------

    @staticmethod
    def _thread_count(num_workers):
        available = len(os.sched_getaffinity(0))
        wanted = available if int(num_workers) < 1 else int(num_workers)
        limit = numba.config.NUMBA_NUM_THREADS
        if wanted > limit:
            warnings.warn(f"num_workers={wanted} exceeds NUMBA_NUM_THREADS={limit}; using {limit} "
                          f"(set NUMBA_NUM_THREADS before starting Python to allow more)")
            wanted = limit
        return wanted

    def _select_backend(self, fmt):
        return decoder_for_format(self._decoders, fmt, preferred=self._backend_name)

    @staticmethod
    def _as_operations(name, ops):
        ops = [ModuleWrapper(op) if isinstance(op, torch.nn.Module) else op for op in ops]
        for op in ops:
            if not isinstance(op, Operation):
                raise ValueError(f"pipeline {name!r}: {op!r} is not an Operation")
        return ops

    def _operations_for(self, name, field, spec):
        decoder_class = field.get_decoder_class()
        if isinstance(spec, PipelineSpec):
            ops = ([spec.decoder] if spec.decoder is not None else []) + list(spec.transforms)
        else:
            ops = list(spec)
        ops = self._as_operations(name, ops)
        if ops and isinstance(ops[0], decoder_class):
            return ops
        if ops and isinstance(ops[0], _BUILTIN_DECODERS):
            raise ValueError(f"pipeline {name!r}: {type(ops[0]).__name__} cannot decode a "
                             f"{type(field).__name__}; its decoder must be a {decoder_class.__name__}")
        try:
            decoder = decoder_class()
        except TypeError as exc:
            raise ValueError(f"pipeline {name!r}: the default decoder {decoder_class.__name__} needs "
                             f"arguments; put a decoder first in the pipeline ({exc})") from None
        return [decoder] + ops

    def _build_pipelines(self, pipelines):
        reader = self.reader
        memory_read = self.memory_manager.compile_reader()
        names = list(reader.field_names)
        entries = []
        for index, name in enumerate(names):
            if name in pipelines:
                spec = pipelines[name]
                if spec is None:
                    continue
            else:
                try:
                    spec = [reader.handlers[name].get_decoder_class()(), ToTensor()]
                except TypeError:
                    raise ValueError(f"field {name!r} has no default pipeline; pass one in "
                                     f"pipelines={{{name!r}: [...]}}") from None
            entries.append((name, index, spec))
        extras = [(name, spec) for name, spec in pipelines.items() if name not in names]
        for name, spec in extras:
            if not isinstance(spec, PipelineSpec):
                raise ValueError(f"pipelines has {name!r}, which is not a field of {self.fname} "
                                 f"(fields: {', '.join(names)}); use PipelineSpec(source=...) "
                                 f"for extra outputs")
            if isinstance(spec.source, Operation):
                if spec.decoder is not None:
                    raise ValueError(f"PipelineSpec for {name!r} starts from an Operation's output, "
                                     f"so it takes no decoder; put its steps in transforms")
            elif spec.source not in names:
                raise ValueError(f"PipelineSpec for {name!r} reads unknown field {spec.source!r}")
        # Operations that branches start from: a decoder among them keeps its own output.
        sources = {id(spec.source) for _, spec in extras if isinstance(spec.source, Operation)}

        built = []

        def add_pipeline(name, index, spec):
            field = reader.handlers[names[index]]
            ops = self._operations_for(name, field, spec)
            built.append(Pipeline(name, index, field, ops, reader.metadata[f'f{index}'], memory_read,
                                  self.batch_size, self.num_slots, self._select_backend,
                                  keep_decoder_output=id(ops[0]) in sources))

        for entry in entries:
            add_pipeline(*entry)
        for name, spec in extras:
            if not isinstance(spec.source, Operation):
                add_pipeline(name, names.index(spec.source), spec)
                continue
            steps = [p.step_of(spec.source) for p in built]
            source = next((step for step in steps if step is not None), None)
            if source is None:
                raise ValueError(f"PipelineSpec for {name!r} starts from {type(spec.source).__name__}, "
                                 f"which is in no pipeline listed before it")
            built.append(Branch(name, source, self._as_operations(name, spec.transforms),
                                self.batch_size, self.num_slots))
        return built

    # -- iteration ----------------------------------------------------------

    def _batches(self, epoch):
        order = self.traversal_order.sample_order(epoch)
        count = len(order) // self.batch_size if self.drop_last else -(-len(order) // self.batch_size)
        return [np.ascontiguousarray(order[b * self.batch_size:(b + 1) * self.batch_size], dtype=np.uint64)
                for b in range(count)]

    def __iter__(self):
        # One live epoch per Loader: a new iter() stops the previous epoch's
        # thread instead of leaking it (FFCV issues #345, #393).
        if self._current is not None:
            self._current.close()
        epoch = self.next_epoch
        self.next_epoch += 1
        self._current = EpochIterator(self.graph, self.memory_manager, self._batches(epoch),
                                      self.num_slots, self.num_workers, self.batches_ahead,
                                      epoch_seed(self.seed, epoch))
        return self._current

    def __len__(self):
        """Batches per epoch of this rank (the shard's size when distributed)."""
        count = len(self.indices)
        if self.distributed:
            # The padded shard size (TraversalOrder.shard): equal on all ranks.
            count = -(-count // self.world_size)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def close(self):
        """Stop any running epoch and release the file."""
        if self._current is not None:
            self._current.close()
            self._current = None
        if self.memory_manager is not None:
            self.memory_manager.close()
            self.memory_manager = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        current = getattr(self, '_current', None)
        if current is not None:
            current.close()
