"""Lazy registries of pluggable backends, found through Python entry points.

Each kind of backend has its own entry-point group:

* ``ffcvx.decoders``: image decoder backends (``spec/backends.md``);
* ``ffcvx.caches``: memory strategies.

Entry points are listed when a registry is created but loaded only when a
backend is first asked for, so installing many backends costs nothing at
import time. A :class:`Registry` is an ordinary object: a Loader makes its own
(or is handed one), and nothing here is process-wide state.
"""
from importlib import metadata

from .backend_api import CALLABLE_KINDS, KINDS
from .errors import BackendNotFoundError

#: What to ``pip install`` for the backends ffcvx knows about but may not have.
INSTALL_HINTS = {
    'ffcvx.decoders': {
        'turbojpeg': 'pip install ./backends/turbojpeg  (needs: apt-get install libjpeg62-turbo-dev)',
        'imagecodecs': 'pip install ./backends/imagecodecs',
        'pillow': 'pip install ./backends/pillow',
        'nvjpeg': 'pip install ./backends/nvjpeg  (needs a CUDA build of torch and torchvision)',
    },
}

#: Preferred decoder backends per image format, best first (BKD-052). Registered
#: backends not listed here come after these, by name.
DEFAULT_DECODER_ORDER = {
    'jpeg': ('turbojpeg', 'imagecodecs', 'pillow'),
    'png': ('imagecodecs', 'pillow'),
}


class Registry:
    """Backends of one kind, keyed by name.

    Parameters
    ----------
    group : str
        Entry-point group, e.g. ``'ffcvx.decoders'``.
    extra : dict of str to object, optional
        Backends to register directly (tests, or a user's own object) without
        an installed distribution. They take precedence over entry points.
    """

    def __init__(self, group, extra=None):
        self.group = group
        self._entry_points = {ep.name: ep for ep in metadata.entry_points(group=group)}
        self._loaded = dict(extra or {})

    def names(self):
        """Sorted names of every registered backend (loaded or not)."""
        return sorted(set(self._entry_points) | set(self._loaded))

    def get(self, name):
        """The backend called ``name``, loading its entry point on first use.

        Raises
        ------
        BackendNotFoundError
            If no backend of that name is registered (the message lists the
            registered ones and the ``pip install`` that adds it, if known), or
            if loading it fails.
        """
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points.get(name)
        if ep is None:
            hint = INSTALL_HINTS.get(self.group, {}).get(name)
            msg = (f"no {self.group} backend named {name!r}; registered: "
                   f"{', '.join(self.names()) or '(none)'}")
            if hint:
                msg += f". Install it with: {hint}"
            raise BackendNotFoundError(msg)
        try:
            backend = ep.load()
        except Exception as exc:  # an import error inside a third-party package
            raise BackendNotFoundError(
                f"{self.group} backend {name!r} ({ep.value}) failed to load: {exc}") from exc
        self._loaded[name] = backend
        return backend

    def usable(self, name):
        """Whether backend ``name`` is registered, loads and reports itself available."""
        try:
            ok, _ = self.get(name).available()
        except BackendNotFoundError:
            return False
        return bool(ok)


def decoder_order(registry, fmt):
    """Names of the registered decoder backends in the order tried for ``fmt`` (BKD-052).

    The format's entries of :data:`DEFAULT_DECODER_ORDER` that are registered,
    then every other registered backend, by name. Nothing is loaded.
    """
    names = registry.names()
    preferred = [n for n in DEFAULT_DECODER_ORDER.get(fmt, ()) if n in names]
    return preferred + [n for n in names if n not in preferred]


def _install_hints(fmt):
    hints = INSTALL_HINTS['ffcvx.decoders']
    names = [n for n in DEFAULT_DECODER_ORDER.get(fmt, ()) if n in hints] or list(hints)
    return '; '.join(f"{n}: {hints[n]}" for n in names)


def decoder_for_format(registry, fmt, preferred=None):
    """Choose the decoder backend of one image format for the image decoders.

    Parameters
    ----------
    registry : Registry
        A registry of group ``ffcvx.decoders``.
    fmt : str
        ``'jpeg'`` or ``'png'``.
    preferred : str or None
        The backend the user named (``Loader(backend=...)``). It is used for
        every format it declares; for a format it does not declare, the
        default order applies (BKD-053).

    Returns
    -------
    object
        The backend: registered, loaded, available and declaring ``fmt``.
        Without ``preferred`` (and for formats the preferred one does not
        declare) it is of a kind whose ``decode_region`` compiled code can call
        (``native`` or ``python``): the default order never picks a ``batch``
        backend (BKD-052). A named backend of kind ``batch`` is returned for
        the formats it declares; the image decoder then decodes the field with
        ``decode_batch``, or raises if it cannot (BKD-042).

    Raises
    ------
    BackendNotFoundError
        If the preferred backend is unknown, unavailable (its ``available()``
        reason, e.g. ``no CUDA device ...``) or of an unknown kind (BKD-053),
        or if no usable backend decodes ``fmt``; the message lists the
        registered backends and what to ``pip install`` (BKD-054).
    """
    if preferred is not None:
        backend = registry.get(preferred)
        if backend.kind not in KINDS:
            raise BackendNotFoundError(
                f"decoder backend {preferred!r} is of kind {backend.kind!r}; the image decoders "
                f"call backends of kind {' or '.join(sorted(KINDS))} only "
                f"(spec/backends.md BKD-004)")
        # A format the named backend does not declare takes the default order
        # (BKD-053), without asking the backend whether it can run here.
        if fmt in backend.formats:
            ok, why = backend.available()
            if not ok:
                raise BackendNotFoundError(f"decoder backend {preferred!r} is unavailable here: {why}")
            return backend
    for name in decoder_order(registry, fmt):
        # Format and kind first: available() may be costly (a CUDA probe).
        try:
            backend = registry.get(name)
        except BackendNotFoundError:
            continue
        if fmt in backend.formats and backend.kind in CALLABLE_KINDS and registry.usable(name):
            return backend
    raise BackendNotFoundError(
        f"no installed decoder backend can decode {fmt!r} images "
        f"(registered: {', '.join(registry.names()) or 'none'}). Install one of: {_install_hints(fmt)}")
