"""`python -m restart`: the command-line interface (and `python -m restart relay`, the webhook relay)."""

import sys

if sys.argv[1:2] == ["relay"]:
    from restart.relay import main as relay

    sys.exit(relay(sys.argv[2:]))

from restart.cli import main

sys.exit(main())
