"""Starting a run without ever starting two: the trigger protocol, built on the `cause` marker.

The POST is repeated at once only when it surely never reached dbt Cloud (the transport does that: no
connection, or refused with 429). When its answer is lost (timeout, dropped connection, 5xx), the
job's recent runs are searched for the marker the body's cause carries, and a run found there is
adopted. Only when none shows up is the POST sent once more; if the first run then shows up beside
the second, the second is cancelled.
"""

from __future__ import annotations

from typing import Any, Protocol

from restart.api import run_id_of
from restart.transport import ApiError, RetryPolicy, maybe_processed

RECONCILE_CHECKS = 3  # looks at the job's runs for a trigger whose answer was lost


class TriggerClient(Protocol):
    """What the protocol needs of the client.

    Runs stay the API's JSON here, unlike elsewhere: a run that carries the marker must be seen even
    when it lacks a field a `Run` record needs, or the protocol would POST again beside it.
    """

    @property
    def retry(self) -> RetryPolicy: ...

    def sleep(self, seconds: float) -> None: ...

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]: ...

    def runs_with_cause(self, job_id: int, text: str) -> list[dict[str, Any]]: ...

    def cancel_run(self, run_id: int) -> dict[str, Any]: ...


def trigger_run(client: TriggerClient, job_id: int, body: dict[str, Any], marker: str) -> tuple[dict[str, Any], str]:
    """POST a new run without ever sending it twice blindly; returns (run, what to warn about or '')."""
    try:
        return client.trigger(job_id, body), ""
    except ApiError as error:
        if not maybe_processed(error):
            raise
        lost = error
    for check in range(RECONCILE_CHECKS):
        found = client.runs_with_cause(job_id, marker)
        if found:
            return found[0], f"the answer to the trigger was lost; adopted run {found[0].get('id')} that it created"
        client.sleep(min(client.retry.backoff * 2**check, client.retry.max_backoff))
    try:
        run = client.trigger(job_id, body)
    except ApiError as error:
        error.args = (f"{error} (the first attempt failed too: {lost})",)
        raise
    return drop_duplicate(client, job_id, marker, run)


def drop_duplicate(client: TriggerClient, job_id: int, marker: str, run: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """After a second POST: keep the first trigger's run if it exists after all, cancelling `run`."""
    ours = run_id_of(run)
    try:
        earlier = [r for r in client.runs_with_cause(job_id, marker) if run_id_of(r) != ours]
    except ApiError as exc:
        return (
            run,
            f"could not check that the first trigger created no run ({exc}): look for two runs of job {job_id}",
        )
    if not earlier or ours is None:
        return run, ""
    kept = earlier[0]
    try:
        client.cancel_run(ours)
    except ApiError as exc:
        return kept, (
            f"the first trigger did create run {kept.get('id')} after all: kept it, but run {ours} that the"
            f" second trigger started could not be cancelled ({exc}): cancel it in dbt Cloud"
        )
    return kept, f"the first trigger did create run {kept.get('id')} after all: kept it, cancelled run {ours}"
