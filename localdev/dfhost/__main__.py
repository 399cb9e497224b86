"""``python -m localdev.dfhost``."""

from __future__ import annotations

import sys

from localdev.dfhost.cli import main

sys.exit(main())
