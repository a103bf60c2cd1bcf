"""HTTP-level faults the emulator can be told to inject: error answers, dropped connections, delays.

A fault matches a method and a path pattern and fires `times` times, either before the request is
handled (nothing happens on the server) or after it (the work is done, e.g. a run is created, and
only the answer is lost or replaced).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class HttpFault:
    """One injected fault."""

    method: str
    path: str  # a regular expression searched in the request path
    query: str = ""  # a regular expression searched in the query string ("" matches any)
    status: int = 503
    times: int = 1
    when: Literal["before", "after"] = "before"
    drop: bool = False  # close the connection without answering
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (or dropping)
    hits: int = 0


class FaultList:
    """The faults in force, consumed as they fire."""

    def __init__(self) -> None:
        self._faults: list[HttpFault] = []
        self._lock = threading.Lock()

    def add(self, fault: HttpFault) -> HttpFault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, when: str, query: str = "") -> HttpFault | None:
        """The first live fault for this request at this moment, counted as fired."""
        with self._lock:
            for fault in self._faults:
                live = fault.when == when and fault.method == method and fault.hits < fault.times
                if live and re.search(fault.path, path) and re.search(fault.query, query):
                    fault.hits += 1
                    return fault
        return None
