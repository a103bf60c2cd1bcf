"""Starting a run without ever starting two: the trigger protocol, built on the `cause` marker.

The POST is repeated at once only when it surely never reached dbt Cloud (the transport does that: no
connection, or refused with 429). When its answer is lost (timeout, dropped connection, 5xx), the
job's recent runs are searched for the marker the body's cause carries, and a run found there is
adopted. Only when none shows up is the POST sent once more; if the first run then shows up beside
the second, the second is cancelled.

dbt Cloud's own rerun from failure takes no cause, but the run it starts names the run it retries
(`retrying_run_id`): a lost answer is searched for by that, and the rerun is never sent twice.

When the search itself fails, `TriggerUnknown` says that a run may exist and how to find it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from restart.records import run_id_of
from restart.transport import ApiError, RetryPolicy, maybe_processed

RECONCILE_CHECKS = 3  # looks at the job's runs for a trigger whose answer was lost


class TriggerUnknown(ApiError):
    """A POST whose answer was lost, and no way to tell whether it started a run: one may be running.

    `look_for` says how to recognise that run in dbt Cloud (the marker in its cause, or the run it retries).
    """

    def __init__(self, message: str, status: int | None = None, *, look_for: str) -> None:
        super().__init__(message, status)
        self.look_for = look_for


class TriggerClient(Protocol):
    """What the protocol needs of the client.

    Runs stay the API's JSON here, unlike elsewhere: a run that carries the marker must be seen even
    when it lacks a field a `Run` record needs, or the protocol would POST again beside it.
    """

    @property
    def retry(self) -> RetryPolicy: ...

    def sleep(self, seconds: float) -> None: ...

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]: ...

    def rerun(self, job_id: int) -> dict[str, Any]: ...

    def runs_with_cause(self, job_id: int, text: str) -> list[dict[str, Any]]: ...

    def runs_retrying(self, job_id: int, run_id: int) -> list[dict[str, Any]]: ...

    def cancel_run(self, run_id: int) -> dict[str, Any]: ...


def _search(
    client: TriggerClient, find: Callable[[], list[dict[str, Any]]], lost: ApiError, job_id: int, look_for: str
) -> dict[str, Any] | None:
    """The run a POST whose answer was lost (`lost`) started, if it shows up within a few looks.

    Raises `TriggerUnknown` when the runs cannot be listed: a run may exist, and nothing names it.
    """
    for check in range(RECONCILE_CHECKS):
        try:
            found = find()
        except ApiError as exc:
            raise TriggerUnknown(
                f"the answer to the trigger of job {job_id} was lost ({lost}) and its runs could not be listed"
                f" ({exc}): a run may have started; look in job {job_id} for {look_for} before restarting again",
                exc.status,
                look_for=look_for,
            ) from exc
        if found:
            return found[0]
        client.sleep(min(client.retry.backoff * 2**check, client.retry.max_backoff))
    return None


def trigger_run(client: TriggerClient, job_id: int, body: dict[str, Any], marker: str) -> tuple[dict[str, Any], str]:
    """POST a new run without ever sending it twice blindly; returns (run, what to warn about or '')."""
    try:
        return client.trigger(job_id, body), ""
    except ApiError as error:
        if not maybe_processed(error):
            raise
        lost = error
    look_for = f"a run whose cause carries {marker}"
    found = _search(client, lambda: client.runs_with_cause(job_id, marker), lost, job_id, look_for)
    if found is not None:
        return found, f"the answer to the trigger was lost; adopted run {found.get('id')} that it created"
    try:
        run = client.trigger(job_id, body)
    except ApiError as error:
        error.args = (f"{error} (the first attempt failed too: {lost})",)
        raise
    return drop_duplicate(client, job_id, marker, run)


def rerun_run(client: TriggerClient, job_id: int, previous_id: int) -> tuple[dict[str, Any], str]:
    """POST dbt Cloud's rerun from failure of run `previous_id` once; a lost answer is searched for, never resent.

    The run a rerun starts names the run it retries (`retrying_run_id`), the marker the search looks for.
    """
    try:
        return client.rerun(job_id), ""
    except ApiError as error:
        if not maybe_processed(error):
            raise
        lost = error
    look_for = f"a run retrying run {previous_id} (retrying_run_id {previous_id})"
    found = _search(client, lambda: client.runs_retrying(job_id, previous_id), lost, job_id, look_for)
    if found is not None:
        return found, f"the answer to the rerun was lost; adopted run {found.get('id')} that it created"
    raise TriggerUnknown(
        f"the answer to the rerun of job {job_id} was lost ({lost}) and no run retrying run {previous_id} showed up:"
        f" it was not sent again; dbt Cloud may still start it, so look in job {job_id} for {look_for}"
        " before restarting again",
        lost.status,
        look_for=look_for,
    )


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
