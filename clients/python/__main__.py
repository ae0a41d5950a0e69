"""``python -m clients.python file|mic ...``"""

from __future__ import annotations

import sys

from clients.python.cli import main

sys.exit(main())
