"""Choose a Loader's memory strategy from its arguments and ``FFCV_DEFAULT_CACHE_PROCESS``.

Strategies are classes registered under the entry-point group
``ffcvx.caches`` and made as ``cls(reader, **options)``. The numbers FFCV and
its forks use are aliases of the names: ``0`` ``os``, ``1`` ``process``,
``2`` ``shared``, ``3`` ``redis``.
"""
import os

from ..registry import Registry

#: Entry-point group of memory strategies.
GROUP = 'ffcvx.caches'
#: Environment variable holding the default strategy (number or name).
ENV_VAR = 'FFCV_DEFAULT_CACHE_PROCESS'
#: FFCV's strategy numbers, as names.
NUMBERS = {'0': 'os', '1': 'process', '2': 'shared', '3': 'redis'}
#: The strategy of a file given by URL unless ``cache`` names another that reads URLs.
REMOTE = 'remote'


def _describe(registry):
    by_name = {name: number for number, name in NUMBERS.items()}
    return ', '.join(f"{by_name[n]}/{n}" if n in by_name else n for n in registry.names())


def strategy_name(cache=None, os_cache=None, environ=None):
    """The name of the strategy a Loader with these arguments uses.

    Parameters
    ----------
    cache : str, int or None
        A strategy number or name; overrides everything else.
    os_cache : bool or None
        FFCV's flag. True: ``os``. False: the strategy the environment names
        if it is not ``os``, else ``process`` (FFCV's meaning of False).
    environ : Mapping or None
        Where ``FFCV_DEFAULT_CACHE_PROCESS`` is read; ``os.environ`` (now,
        not at import) when None.

    Returns
    -------
    name : str
        Lower-case name, not yet checked against the registry.
    source : str
        Where it came from, for error messages.
    """
    environ = os.environ if environ is None else environ
    if cache is not None:
        value, source = str(cache), f"cache={cache!r}"
    else:
        env_value = environ.get(ENV_VAR, '').strip()
        env_name = NUMBERS.get(env_value, env_value.lower()) if env_value else 'os'
        source = f"{ENV_VAR}={env_value!r}" if env_value else 'the default'
        if os_cache is None:
            value = env_name
        elif os_cache:
            value, source = 'os', 'os_cache=True'
        else:
            value = env_name if env_name != 'os' else 'process'
            source = 'os_cache=False' if env_name == 'os' else f"os_cache=False and {source}"
    value = value.strip().lower()
    return NUMBERS.get(value, value), source


def select_strategy(reader, cache=None, os_cache=None, options=None, registry=None, environ=None):
    """Make the memory strategy for ``reader``.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    cache : str, int or None
        ``0``-``3`` or a registered name (``os``, ``process``, ``shared``,
        ``redis``, ``remote``, or any third-party one); see
        :func:`strategy_name` for the precedence of ``cache``, ``os_cache``
        and the environment. A reader of a URL uses ``remote`` when None.
    os_cache : bool or None
    options : dict or None
        Keyword arguments of the strategy's constructor (e.g. ``max_bytes``
        for ``process``).
    registry : ffcvx.registry.Registry or None
        Registry of group ``ffcvx.caches``; a fresh one when None.
    environ : Mapping or None
        Environment to read; ``os.environ`` when None.

    Returns
    -------
    ffcvx.memory_managers.MemoryManager

    Raises
    ------
    ValueError
        If the chosen strategy is not registered (the message lists the
        registered ones), or ``options`` are not accepted by it; for a
        reader of a URL (REM-005), ``os_cache=True`` or a strategy without
        ``reads_urls``.
    ffcvx.errors.BackendNotFoundError
        If the strategy's entry point fails to load.
    """
    registry = registry or Registry(GROUP)
    remote = getattr(getattr(reader, 'source', None), 'remote', False)
    if remote and cache is None:
        # FFCV_DEFAULT_CACHE_PROCESS names the default for local files; os_cache=False
        # (FFCV's private read-ahead cache) is what the remote strategy is.
        if os_cache:
            raise ValueError(f"os_cache=True: {reader.file_name} is a URL, which has no OS page "
                             f"cache; leave os_cache out (the 'remote' strategy is used), and "
                             f"give cache_options={{'cache_dir': ...}} for a disk cache on the node")
        name, source = REMOTE, 'the default for URLs'
    else:
        name, source = strategy_name(cache, os_cache, environ)
    if name not in registry.names():
        raise ValueError(f"{source}: no memory strategy {name!r}; registered strategies: "
                         f"{_describe(registry) or '(none)'}")
    strategy_class = registry.get(name)
    if remote and not getattr(strategy_class, 'reads_urls', False):
        raise ValueError(f"memory strategy {name!r} ({source}) reads local files only, and "
                         f"{reader.file_name} is a URL; use cache={REMOTE!r} (the default for "
                         f"URLs) or a strategy that declares reads_urls")
    try:
        return strategy_class(reader, **dict(options or {}))
    except TypeError as exc:
        raise ValueError(f"memory strategy {name!r} ({source}) does not accept options "
                         f"{sorted(options or {})}: {exc}") from None
