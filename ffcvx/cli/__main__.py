"""``python -m ffcvx.cli``: the ``ffcvx`` command."""
from . import main

raise SystemExit(main())
