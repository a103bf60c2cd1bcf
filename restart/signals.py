"""The runner's cancellation (SIGTERM, or SIGINT on a terminal), seen between waits as `Interrupted`."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Stop:
    """A cancellation request (SIGTERM/SIGINT from the runner), checked between polls."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum = 0

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGTERM)

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`; raises `Interrupted` as soon as a stop is requested."""
        if self.wait(seconds):
            raise Interrupted(self.signum)

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; whether a stop was requested (the only part a test replaces: time)."""
        return self.event.wait(seconds)


class Interrupted(Exception):
    """The workflow was cancelled while the action waited."""
