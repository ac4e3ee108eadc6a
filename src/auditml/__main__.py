"""``python -m auditml`` is the ``auditml`` command."""

import sys

from auditml.cli import main

sys.exit(main())
