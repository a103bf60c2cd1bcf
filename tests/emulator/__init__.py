"""A local emulator of the dbt Cloud Administrative API v2 that runs real dbt-core on DuckDB."""

from .cloud import LocalDbtCloud
from .engine import PROJECT_DIR, step_name
from .model import CANCELLED, ERROR, QUEUED, RUNNING, STARTING, SUCCESS
from .server import RecordedRequest

__all__ = [
    "CANCELLED",
    "ERROR",
    "PROJECT_DIR",
    "QUEUED",
    "RUNNING",
    "STARTING",
    "SUCCESS",
    "LocalDbtCloud",
    "RecordedRequest",
    "step_name",
]
