"""The memory-strategy conformance suite's parts; :mod:`ffcvx.testing.strategies` is the suite.

:mod:`.settings` chooses the strategies and holds the fixtures, :mod:`.files`
writes the suite's own ``.beton`` files, :mod:`.checks` compares what a strategy
serves with the spec reader.
"""
