"""``python -m simulacra_session``: the ``simulacra-session`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
