"""How a Loader's epoch and memory strategy are released: by ``close()``, the finalizer
that runs when an unclosed Loader is collected, or interpreter exit."""

__all__ = ['close_epoch', 'release']


def close_epoch(current):
    """Stop the epoch whose iterator ``current[0]`` (a weakref or None) names."""
    ref, current[0] = current[0], None
    iterator = ref() if ref is not None else None
    if iterator is not None:
        iterator.close()


def release(current, memory_manager):
    """The Loader's finalizer: stop its epoch, then close its memory strategy.

    The epoch goes first: its producer thread reads through the strategy
    until it has stopped (``EpochIterator.close`` waits for it, except on the
    producer thread itself, where the strategy's own close copes).
    """
    try:
        close_epoch(current)
    finally:
        if memory_manager is not None:
            memory_manager.close()
