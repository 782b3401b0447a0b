"""``Loader.code``: the compiled code an epoch runs (FFCV 1.0's attribute).

FFCV compiles a Loader's pipelines once, when the Loader is made, and keeps
the result in ``Loader.code``; with ``recompile=True`` it compiles them
again at every epoch, so ``loader.code`` is another object after each
``iter(loader)``. ffcvx plans its pipelines again at each epoch and
generates code anew only for steps whose input or attributes changed (or
for every step with ``recompile=True``); :class:`EpochCode` is the record
of one such result, kept while no step's code changes.
"""

__all__ = ['EpochCode', 'epoch_code']


class EpochCode:
    """The compiled functions of every step of a Loader's pipelines, for one epoch or more.

    Equal only to itself: a new object means the code was compiled again,
    even where Numba's cache of equal code gave back the same functions.

    Parameters
    ----------
    graph : ffcvx.pipeline.graph.Graph
        Planned.

    Attributes
    ----------
    outputs : tuple of str
        The Loader's output names, in batch order.
    functions : tuple of tuple
        Per output, the functions of its steps in order: Numba dispatchers,
        or Python functions for steps that run uncompiled.
    """

    def __init__(self, graph):
        self.outputs = tuple(graph.output_names)
        self.functions = _functions(graph)

    def current(self, graph):
        """Whether ``graph``'s steps still run exactly these functions."""
        now = _functions(graph)
        return len(now) == len(self.functions) and all(
            len(a) == len(b) and all(f is g for f, g in zip(a, b))
            for a, b in zip(now, self.functions))

    def __repr__(self):
        steps = sum(len(f) for f in self.functions)
        return f"<EpochCode of {len(self.outputs)} outputs, {steps} steps>"


def _functions(graph):
    return tuple(tuple(step.code for step in pipeline.steps) for pipeline in graph.pipelines)


def epoch_code(previous, graph, recompile):
    """The ``Loader.code`` after ``graph`` was planned for an epoch.

    Parameters
    ----------
    previous : EpochCode or None
        The code of the last epoch (None before the first).
    graph : ffcvx.pipeline.graph.Graph
    recompile : bool
        The Loader's ``recompile``: a new object whatever the functions.

    Returns
    -------
    EpochCode
        ``previous`` itself when it is still what ``graph`` runs and
        ``recompile`` is False; a new one otherwise.
    """
    if previous is not None and not recompile and previous.current(graph):
        return previous
    return EpochCode(graph)
