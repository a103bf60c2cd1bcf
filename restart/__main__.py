"""`python -m restart`: the command-line interface."""

import sys

from restart.cli import main

sys.exit(main())
