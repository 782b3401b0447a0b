"""The usage error of the ``ffcvx`` sub-commands: a problem with the user's input (exit 2).

Its own module so that every sub-command module can raise it without
importing the others; importable from :mod:`.common` as before.
"""

__all__ = ['UsageError']


class UsageError(Exception):
    """A problem with the user's input that needs a message, not a traceback (exit 2)."""
