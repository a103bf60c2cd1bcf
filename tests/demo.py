"""The demo: a nightly job fails in the local dbt Cloud, the fault is fixed, the action restarts it.

Run with `make demo`. Everything happens on 127.0.0.1: the emulator runs real dbt-core on DuckDB,
and the action runs exactly as GitHub's runner would run its container.
`python -m tests.demo --sample docs/sample-summary.md` also writes the job summary there as a sample.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from tests.emulator import LocalDbtCloud
from tests.runner import run_action

STEPS = ["dbt seed", 'dbt run --select staging+ --vars \'{"who": "a b"}\'', "dbt test", "dbt docs generate"]
FAULT = "stg_payments"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def write_sample(path: Path, summary: str, base_url: str) -> None:
    """The summary as docs keep it: links to dbt Cloud's host instead of 127.0.0.1, single blank lines."""
    text = re.sub(r"\n{3,}", "\n\n", summary.replace(base_url, "https://cloud.getdbt.com")).strip()
    note = (
        "<!-- The job summary of one `make demo` run against the local dbt Cloud (tests/emulator), written by"
        " `python -m tests.demo --sample docs/sample-summary.md`; links rewritten to cloud.getdbt.com. -->"
    )
    path.write_text(f"{note}\n\n{text}\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="also write the job summary to this file")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="dbt-cloud-restart-demo-") as scratch,
        LocalDbtCloud(root=Path(scratch) / "cloud") as cloud,
    ):
        say(f"Local dbt Cloud listening on {cloud.base_url}")
        job_id = cloud.add_job(STEPS, name="nightly")
        for i, step in enumerate(STEPS, 1):
            print(f"  job {job_id} step {i}: {step}")

        say(f"Nightly run with a bad raw feed (fault injected into {FAULT})")
        cloud.set_faults([FAULT])
        run_id = cloud.trigger(job_id, cause="Scheduled nightly run")
        run = cloud.wait(run_id)
        for step in run["run_steps"]:
            print(f"  step {step['index']}: {step['status_humanized']:<9} {step['name']}")
        print(f"  run {run_id}: {run['status_humanized']}")
        if run["status"] != 20:
            print("the nightly run was expected to fail", file=sys.stderr)
            return 1

        say("The feed is fixed (fault cleared); restarting from the point of failure")
        cloud.set_faults([])
        result = run_action(
            Path(scratch),
            {
                "dbt-cloud-token": cloud.token,
                "account-id": str(cloud.account_id),
                "job-id": str(job_id),
                "dbt-cloud-host": cloud.base_url,
                "poll-interval": "1",
            },
        )
        print(result.log.rstrip())

        say("Step outputs (GITHUB_OUTPUT)")
        for name, value in result.outputs.items():
            print(f"  {name} = {value}")

        say("Job summary (GITHUB_STEP_SUMMARY): the Markdown GitHub renders on the workflow run page")
        print(result.summary)
        if args.sample:
            write_sample(args.sample, result.summary, cloud.base_url)
        say(f"Action exit code: {result.exit_code}")
        return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
