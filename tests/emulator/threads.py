"""The emulator's threads run untraced."""

from __future__ import annotations

import sys


def untraced() -> None:
    """Stop tracing the calling thread (coverage's tracer, under `make test --cov`).

    Coverage measures only the `restart` package, which the emulator never runs: tracing the emulator's
    server, executors and webhook threads cost the suite CPU and measured nothing.
    """
    sys.settrace(None)
