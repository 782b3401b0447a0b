"""The Loader: a .beton file, a memory strategy, an order and compiled pipelines."""
import warnings
import weakref

import numpy as np

from ..memory_managers.select import select_strategy
from ..pipeline.compiler import Compiler
from ..pipeline.seeds import EpochSeeds
from ..reader import Reader
from ..storage import network_options, open_source
from ..registry import Registry, decoder_for_format
from ..traversal_order import TraversalOrder
from .assembly import build_graph
from .distributed import rank_and_world_size
from . import resume
from .filtering import filter_loader
from .epoch_iterator import EpochIterator, thread_count
from .epoch_code import epoch_code
from .stats import EpochStats, loader_stats
from .lifetime import close_epoch as _close_epoch, release as _release
from .orders import ORDER_MAP, ORDER_TYPE, OrderOption, epoch_batches  # noqa: F401 (FFCV's paths)


class Loader:
    """Iterate over a ``.beton`` file in batches, through compiled pipelines.

    Parameters
    ----------
    fname : str or path
        The ``.beton`` file: a path, or a URL (``s3://``, ``gs://``, ``az://``,
        ``http(s)://``, any fsspec protocol), read by the ``remote`` strategy
        (spec/remote.md).
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
        Generate and compile every Operation's code again at each epoch
        (FFCV's meaning; generated code equal to code compiled before in
        this process reuses that, see ``ffcvx.pipeline.code_cache``). Without it, each epoch still plans the pipelines
        again: a step whose declared State or buffer, input, or simple
        attributes (numbers, strings, tuples, e.g. ``decoder.output_size``
        set between epochs for progressive resizing) changed gets new buffers
        and new code; unchanged steps keep theirs. :attr:`code` tells which.
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
        ``{"url": "redis://host:6379/0", "fallback": "os", "key_ttl": 86400}``
        (Redis; the URL defaults to ``FFCV_REDIS_URL``; keys expire ``key_ttl``
        seconds after their last renewal), or ``{"cache_dir": "/scratch/ffcvx",
        "max_cache_bytes": 2**40, "timeout": 30, "retries": 4, "immutable": False}``
        (a URL's pages, see
        :class:`~ffcvx.memory_managers.remote_cache.RemoteCacheManager`; the
        Reader's first requests follow ``timeout``, ``retries`` and ``client`` too).
    storage_options : dict or None
        Options of a URL's filesystem, fsspec's keys (REM-003): e.g.
        ``{"key": ..., "secret": ..., "endpoint_url": "https://s3.example.org"}``
        for S3. An ffcvx extension.

    jit : bool or None
        Compile the Operations with Numba (True) or run them as plain Python
        (False: slow, ordinary tracebacks). None: ``Compiler.is_enabled``
        when the Loader is made (FFCV's ``Compiler.set_enabled``).
    path : str or path
        FFCV-SSL's name for ``fname``; give one of the two.
    custom_field_mapper : dict of str to str or None
        FFCV-SSL's extra reads of a field: ``{new output name: field name}``;
        each new output needs its pipeline in ``pipelines`` and is decoded
        from that field independently (e.g. two augmented views).

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

    def __init__(self, fname=None, batch_size=None, num_workers=-1, os_cache=None,
                 order=OrderOption.SEQUENTIAL, distributed=False, seed=None, indices=None,
                 pipelines=None, custom_fields=None, drop_last=True, batches_ahead=3,
                 recompile=False, backend=None, order_kwargs=None, decoder_registry=None,
                 cache=None, cache_options=None, jit=None, path=None, custom_field_mapper=None,
                 storage_options=None):
        if isinstance(num_workers, (OrderOption, type)):
            # FFCV-SSL's positional order is (path, batch_size, order, num_workers).
            num_workers, order = (-1 if order is OrderOption.SEQUENTIAL else order), num_workers
        if (fname is None) == (path is None):
            raise TypeError("Loader needs the .beton file as fname (FFCV) or path (FFCV-SSL), once")
        if batch_size is None:
            raise TypeError("Loader needs batch_size")
        # The arguments as given, for filter() (FFCV's ``_args``).
        self._args = dict(fname=fname if path is None else path, batch_size=batch_size,
                          num_workers=num_workers, os_cache=os_cache, order=order,
                          distributed=distributed, seed=seed, indices=indices, pipelines=pipelines,
                          custom_fields=custom_fields, drop_last=drop_last,
                          batches_ahead=batches_ahead, recompile=recompile, backend=backend,
                          order_kwargs=order_kwargs, decoder_registry=decoder_registry, cache=cache,
                          cache_options=cache_options, jit=jit,
                          custom_field_mapper=custom_field_mapper, storage_options=storage_options)
        fname = fname if path is None else path
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if int(batches_ahead) < 1:
            raise ValueError(f"batches_ahead must be at least 1, got {batches_ahead}")
        self.fname = str(fname)
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.batches_ahead = int(batches_ahead)
        self.recompile = bool(recompile)
        self.jit = Compiler.is_enabled if jit is None else bool(jit)
        self.distributed = bool(distributed)
        # A URL's first requests (the Reader's tables) follow the network cache_options.
        self.reader = Reader(open_source(self.fname, storage_options,
                                         **network_options(self.fname, cache_options)),
                             custom_handlers=custom_fields or {})

        self.num_workers = thread_count(num_workers)
        self.rank, self.world_size = rank_and_world_size() if self.distributed else (0, 1)
        if seed is None:
            if self.distributed:
                warnings.warn("distributed=True without a seed: using seed 0 so that ranks agree")
                seed = 0
            else:
                seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
        self.seed = int(seed)
        self._args['seed'] = self.seed  # a filtered Loader keeps this one's order and draws

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
        # The running epoch's iterator, weakly: the iterator keeps this Loader
        # alive, not the reverse. A one-element list so that the finalizer,
        # which must not hold the Loader itself, sees the current one.
        self._current = [None]
        self._stats = []  # EpochStats of the last two epochs started, oldest first
        self._closed = False
        # Runs on close(), when the Loader is collected, or at interpreter
        # exit, whichever comes first, and only once. It holds the epoch slot
        # and the strategy, never ``self``, so it keeps nothing alive.
        self._finalizer = weakref.finalize(self, _release, self._current, self.memory_manager)
        try:
            self._build(order, order_kwargs, decoder_registry, backend, pipelines,
                        custom_field_mapper)
        except BaseException:
            # A Loader that failed to build is never returned: release the
            # strategy now (a /dev/shm segment, a Redis connection) rather
            # than whenever gc gets to it.
            self.close()
            raise

    def _build(self, order, order_kwargs, decoder_registry, backend, pipelines,
               custom_field_mapper):
        """The rest of ``__init__``: traversal order, backends and the compiled graph."""
        order_class = order.value if isinstance(order, OrderOption) else order
        if not (isinstance(order_class, type) and issubclass(order_class, TraversalOrder)):
            raise ValueError(f"order must be an OrderOption or a TraversalOrder subclass, got {order!r}")
        self.traversal_order = order_class(self, **(order_kwargs or {}))

        self._decoders = decoder_registry or Registry('ffcvx.decoders')
        self._backend_name = backend
        if backend is not None:
            self._decoders.get(backend)  # unknown names fail here, listing the registered ones
        self.num_slots = self.batches_ahead + 2
        # Compiled whatever jit says: decoders call it from compiled helpers in both modes.
        with Compiler.planning(True, self.num_workers):
            memory_read = self.memory_manager.compile_reader()
        with Compiler.planning(self.jit, self.num_workers):
            self.graph, self.pipeline_specs = build_graph(
                self.reader, pipelines or {}, memory_read, self.batch_size,
                self.num_slots, self._select_backend, self.fname, custom_field_mapper)
        #: Output name -> its Pipeline (FFCV's ``Loader.pipelines``); ``.operations`` lists its steps.
        self.pipelines = {p.name: p for p in self.graph.pipelines}
        self._code = epoch_code(None, self.graph, False)
        self.next_epoch = 0
        # Resume position (ffcvx.loader.resume): batches of next_epoch to skip,
        # and the running epoch's {'epoch', 'start', 'total', 'count': [handed out]}.
        self._resume_global = None
        self._progress = None
        #: The sample order of epoch 0 (FFCV's attribute).
        self.first_traversal_order = self.next_traversal_order()

    # -- construction helpers -----------------------------------------------

    def _select_backend(self, fmt):
        return decoder_for_format(self._decoders, fmt, preferred=self._backend_name)

    # -- iteration ----------------------------------------------------------

    def next_traversal_order(self):
        """The sample order of the next epoch (this rank's share), ndarray[uint64]."""
        return self.traversal_order.sample_order(self.next_epoch)

    def _batches(self, epoch):
        return epoch_batches(self.traversal_order.sample_order(epoch), self.batch_size,
                             self.drop_last)

    def __iter__(self):
        if self._closed:
            raise RuntimeError(f"this Loader of {self.fname} was closed: close() released its "
                               f"file and memory strategy; make a new Loader to iterate again")
        # One live epoch per Loader: a new iter() stops the previous epoch's
        # thread instead of leaking it (FFCV issues #345, #393).
        self._close_current()
        epoch = self.next_epoch
        if epoch > 0 or self.recompile:
            # Operations' attributes may have changed since the last epoch
            # (progressive resizing sets decoder.output_size): plan again.
            with Compiler.planning(self.jit, self.num_workers):
                self.graph.plan(recompile=self.recompile)
            self._code = epoch_code(self._code, self.graph, self.recompile)
        self.next_epoch += 1
        start, self._resume_global = self._resume_global, None
        batches = self._batches(epoch) if start is None else resume.resumed_batches(self, epoch, start)
        self._progress = {'epoch': epoch, 'start': start or 0, 'total': len(batches), 'count': [0]}
        stats = EpochStats(epoch, map(len, batches), self.memory_manager, start or 0)
        self._stats = self._stats[-1:] + [stats]
        iterator = EpochIterator(self.graph, self.memory_manager, batches, self.num_slots,
                                 self.num_workers, self.batches_ahead, EpochSeeds(self.seed, epoch),
                                 owner=self, handed_out=self._progress['count'], stats=stats)
        # Weak: the iterator keeps this Loader alive (``next(iter(Loader(...)))``
        # works, as in FFCV), not the other way round, so no cycle delays freeing.
        self._current[0] = weakref.ref(iterator)
        return iterator

    @property
    def code(self):
        """The epoch's compiled code (FFCV's attribute), an :class:`~.epoch_code.EpochCode`: the
        same object while no step's code is generated again, new at each ``iter()`` with recompile."""
        return self._code

    def _close_current(self):
        _close_epoch(self._current)

    def __len__(self):
        """Batches per epoch of this rank (the shard's size when distributed)."""
        count = len(self.indices)
        if self.distributed:
            # The padded shard size (TraversalOrder.shard): equal on all ranks.
            count = -(-count // self.world_size)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def filter(self, field_name, condition):
        """A Loader over the samples whose ``field_name`` output satisfies ``condition`` (FFCV's API).

        The field is decoded once, in dataset order, with this Loader's
        pipeline for it (the default one if none was given); every other
        argument is kept.

        Parameters
        ----------
        field_name : str
        condition : callable(sample) -> bool
            Called with one sample of the field's output (one row of a batch).

        Returns
        -------
        Loader
            With ``indices`` the selected samples' numbers, in this Loader's
            ``indices`` order.
        """
        return filter_loader(self, field_name, condition)

    def stats(self):
        """``{'current': dict or None, 'last': dict or None}``: the running epoch's and the
        last ended epoch's counts, waits and storage reads, plain values
        (keys and units: :meth:`ffcvx.loader.stats.EpochStats.as_dict`)."""
        return loader_stats(self._stats)

    def state_dict(self):
        """Where this Loader stands, as a small dict of plain values (torchdata's Stateful).

        Valid after any batch and between epochs; costs microseconds after
        the first call (which reads a few MB for the file's identity). Holds
        epoch, batches and samples done, seed, batch size, world size, order,
        and digests of the file and of ``indices``; no per-sample arrays.
        """
        return resume.loader_state(self)

    def load_state_dict(self, state):
        """Continue from ``state`` (from :meth:`state_dict`) at the next ``iter()``.

        The next epoch starts at the saved epoch and skips the samples already
        handed out, without reading them; on the same world size what follows
        is bit-identical to the uninterrupted run, and on another one (same
        global batch) every remaining sample comes once across ranks, with
        its augmentations (``ffcvx.loader.resume``).

        Raises
        ------
        ffcvx.loader.resume.ResumeError
            (a ValueError) If the state is from another file, ``indices``,
            order, global batch size, drop_last, seed or state version,
            naming each mismatch; or if it is damaged (a field missing, of
            the wrong type or out of range, ``resume.resume_position``),
            naming each such field. The Loader is then unchanged.
        """
        # Checked before the running epoch is stopped: a refused state changes nothing.
        position = resume.resume_position(self, state)
        self._close_current()
        self.next_epoch, self._resume_global = position
        self._progress = None

    def close(self):
        """Stop any running epoch and release the file and the memory strategy.

        Idempotent. Afterwards ``iter(loader)`` raises RuntimeError. The same
        release runs when an unclosed Loader is garbage-collected (no live
        iterator holds it then) and at interpreter exit.
        """
        self._closed = True
        self._finalizer()
        self.memory_manager = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
