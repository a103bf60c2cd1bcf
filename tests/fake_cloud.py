"""An in-memory dbt Cloud for the orchestration's unit tests: runs as the API gives them, no HTTP, no dbt."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from restart.records import FINISHED, RetryDetails, Run, run_from_json
from restart.transport import ApiError, NotFound, RetryPolicy


def run_json(
    run_id: int, status: int, *, job_id: int = 7, steps: Iterable[tuple[int, str, int]] = (), **fields: Any
) -> dict[str, Any]:
    """A run as `GET runs/{id}/` answers it; `steps` as (index, name, status); `trigger` adds to its trigger."""
    return {
        "id": run_id,
        "job_definition_id": job_id,
        "status": status,
        "href": f"https://cloud.example/runs/{run_id}",
        "trigger": {"cause": fields.pop("cause", ""), **fields.pop("trigger", {})},
        "run_steps": [{"index": i, "name": name, "status": s} for i, name, s in steps],
        **fields,
    }


@dataclass
class FakeCloud:
    """The endpoints the restart calls, answered from `runs` (newest first) and `artifacts`."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[tuple[int, str, int | None], Any] = field(default_factory=dict)
    details: RetryDetails | None = None
    new_status: int = 10  # the status a triggered run ends with
    calls_made: list[str] = field(default_factory=list)
    triggered: list[dict[str, Any]] = field(default_factory=list)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def calls(self) -> int:
        return len(self.calls_made)

    def sleep(self, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass

    def _find(self, run_id: int) -> dict[str, Any]:
        found = next((r for r in self.runs if r["id"] == run_id), None)
        if found is None:
            raise NotFound(f"run {run_id} not found", 404)
        return found

    def get_run(self, run_id: int, include: Iterable[str] = ("trigger", "job", "run_steps")) -> Run:
        self.calls_made.append(f"get_run {run_id}")
        return run_from_json(self._find(run_id))

    def latest_finished_run_id(self, job_id: int) -> int | None:
        self.calls_made.append("latest_finished_run_id")
        return next((int(r["id"]) for r in self.runs if r["status"] in FINISHED), None)

    def get_job(self, job_id: int) -> dict[str, Any]:
        self.calls_made.append("get_job")
        return {"id": job_id}

    def get_artifact(self, run_id: int, path: str, step: int | None = None) -> Any:
        self.calls_made.append(f"get_artifact {run_id} {path} {step}")
        return self.artifacts.get((run_id, path, step))

    def get_artifact_bytes(self, run_id: int, path: str, step: int | None = None) -> bytes | None:
        self.calls_made.append(f"get_artifact_bytes {run_id} {path} {step}")
        return None

    def recent_runs(self, job_id: int, limit: int = 25) -> list[Run]:
        self.calls_made.append("recent_runs")
        return [run_from_json(r) for r in self.runs[:limit]]

    def runs_with_cause(self, job_id: int, text: str) -> list[dict[str, Any]]:
        self.calls_made.append("runs_with_cause")
        return [r for r in reversed(self.runs) if text in str(r["trigger"].get("cause"))]

    def retry_details(self, run_id: int) -> RetryDetails:
        self.calls_made.append("retry_details")
        if self.details is None:
            raise ApiError("no retry details")
        return self.details

    def _start(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A new run whose trigger records the request's fields, as dbt Cloud's does."""
        run = run_json(max(r["id"] for r in self.runs) + 1, self.new_status, job_id=job_id, trigger=body)
        self.runs.insert(0, run)
        return dict(run)

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        self.calls_made.append("trigger")
        self.triggered.append(body)
        return self._start(job_id, dict(body))

    def rerun(self, job_id: int) -> dict[str, Any]:
        self.calls_made.append("rerun")
        latest = self.runs[0]["id"]
        run = self._start(job_id, {"cause": "rerun"})
        self.runs[0]["retrying_run_id"] = run["retrying_run_id"] = latest  # dbt Cloud reruns the job's latest run
        return run

    def cancel_run(self, run_id: int) -> dict[str, Any]:
        self.calls_made.append(f"cancel_run {run_id}")
        return self._find(run_id)
