"""Prepare a failed run in a running emulator, for the workflow that runs the action with `uses: ./`.

`python -m tests.emulator.selftest --url URL --token T [--ca CA.pem]` defines a job, injects a fault,
waits for the nightly run to fail, clears the fault (the fix), and prints `job-id=N` and
`run-id=N` lines (append them to GITHUB_OUTPUT).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import requests

STEPS = ["dbt seed", 'dbt run --select staging+ --vars \'{"who": "a b"}\'', "dbt test"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator.selftest", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ca", help="CA bundle that signs the emulator's certificate")
    parser.add_argument("--fault", default="stg_payments")
    args = parser.parse_args(argv)
    session = requests.Session()
    verify = args.ca or True  # per request: a session-wide setting loses to REQUESTS_CA_BUNDLE

    def post(path: str, body: dict[str, Any]) -> Any:
        response = session.post(f"{args.url}/_emulator/{path}", json=body, timeout=30, verify=verify)
        response.raise_for_status()
        return response.json()["data"]

    job_id = post("jobs", {"steps": STEPS, "name": "nightly"})["job_id"]
    post("faults", {"faults": [args.fault]})
    run_id = post("runs", {"job_id": job_id, "cause": "Scheduled nightly run"})["run_id"]
    deadline = time.monotonic() + 600
    while True:
        run = session.get(
            f"{args.url}/api/v2/accounts/1/runs/{run_id}/",
            headers={"Authorization": f"Token {args.token}"},
            timeout=30,
            verify=verify,
        ).json()["data"]
        if run["is_complete"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    post("faults", {"faults": []})
    if run["status"] != 20:
        print(f"run {run_id} should have failed, it is {run['status_humanized']}", file=sys.stderr)
        return 1
    print(f"job-id={job_id}")
    print(f"run-id={run_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
