"""Runs dbtc's `trigger_job_from_failure` once (in the separate benchmark environment, `benchmarks/.venv-bench`).

Usage: `benchmarks/.venv-bench/bin/python benchmarks/dbtc_driver.py HOST:PORT ACCOUNT JOB` with DBT_CLOUD_SERVICE_TOKEN
and REQUESTS_CA_BUNDLE set. dbtc builds every URL as `https://{host}/api/...`, so the emulator runs with TLS.
Telemetry is off: `do_not_track=True` (dbtc sends a RudderStack event per API call otherwise).

The only adaptation: dbtc lists runs at `.../runs` without the trailing slash, which dbt Cloud accepts
and the emulator's router does not; a request hook adds it. The request count is unchanged.
Prints one JSON line: the new run's id and the steps dbtc sent.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    from dbtc import dbtCloudClient

    host, account_id, job_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = dbtCloudClient(host=host, do_not_track=True)
    session = client.cloud.session
    send = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith("/runs"):
            url += "/"
        return send(method, url, *args, **kwargs)

    session.request = request  # type: ignore[method-assign]
    run = client.cloud.trigger_job_from_failure(account_id, job_id, {"cause": "dbtc benchmark"}, should_poll=False)
    data = (run or {}).get("data") or {}
    print(json.dumps({"run_id": data.get("id"), "steps": data.get("steps_override") or []}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
