"""``python -m modules`` runs the ``draydog`` command."""

import sys

from modules.cli import main

sys.exit(main())
