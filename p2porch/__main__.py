"""``python -m p2porch`` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
