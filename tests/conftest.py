"""Settings every test shares: the CLI's output is read as a CI log would show it.

pytest-xdist's workers inherit a COLUMNS of 80 (and a developer's shell may export one); the CLI honours
COLUMNS, so tables would fold differently from one run to the next. Without it, and with no terminal, the
CLI renders at its own log width, which is what the tests that read its tables expect. This module is
imported before any test module, so before the CLI's consoles are made.
"""

from __future__ import annotations

import os

os.environ.pop("COLUMNS", None)
