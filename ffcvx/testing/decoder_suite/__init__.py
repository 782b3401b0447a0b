"""The decoder-backend conformance suite, one module per job.

:mod:`.catalogue` names the checks; :mod:`.inputs` loads the spec vectors and
makes the other inputs; :mod:`.calling` calls a backend and defines what a
check raises; :mod:`.checks_decode` and :mod:`.checks_errors` are the checks;
:mod:`.suite` is the pytest class :class:`~.suite.DecoderBackendTests` that
runs one test per check; :mod:`.report` runs that class in process and
collects one :class:`~.report.CheckResult` per check, and :mod:`.table`
prints them. :mod:`ffcvx.testing.decoders` is the public face of all this.
"""
