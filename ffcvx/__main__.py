"""``python -m ffcvx``: the same as the ``ffcvx`` command (:mod:`ffcvx.cli`)."""
from .cli import main

raise SystemExit(main())
