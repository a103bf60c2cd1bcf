"""dbt as if it were started at DBT_EMULATOR_NOW (an ISO time, UTC): the emulator's clock switch.

A microbatch model run without `--event-time-start/--event-time-end` builds the batches up to the time
its invocation started (dbt_common's invocation clock), so the clock decides which batches a nightly
run builds. Run as `python dbt_at.py <dbt arguments>`.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import UTC, datetime

import dbt_common.invocation as invocation

CLOCK_ENV = "DBT_EMULATOR_NOW"


def _at() -> datetime:
    moment = datetime.fromisoformat(os.environ[CLOCK_ENV])
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _reset_invocation_id() -> None:
    invocation._INVOCATION_ID = str(uuid.uuid4())
    invocation._INVOCATION_STARTED_AT = _at()


if __name__ == "__main__":
    invocation.reset_invocation_id = _reset_invocation_id  # before dbt imports it
    _reset_invocation_id()
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    sys.exit(cli())
