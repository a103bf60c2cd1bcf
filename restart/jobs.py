"""Several jobs in one step: each restarted on its own, in parallel, its log printed whole when it ends."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from restart import actions
from restart.orchestrate import Cloud, execute
from restart.outcome import Outcome
from restart.redaction import redact
from restart.settings import Settings, for_job
from restart.signals import Stop

MAX_PARALLEL_JOBS = 8


def execute_all(
    settings: Settings,
    log: actions.Log,
    env: Mapping[str, str],
    stop: Stop | None = None,
    connect: Callable[[Settings], Cloud] | None = None,
) -> list[tuple[int, Outcome]]:
    """Every job of the step, restarted independently and in parallel; (job id, outcome) in input order.

    Each job logs into its own buffer, printed whole when the job is done, so lines do not mix.
    `connect` makes each job's client (a `DbtCloud` from its settings by default).
    """
    stop = stop or Stop()

    def client(job_settings: Settings) -> Cloud | None:
        return connect(job_settings) if connect else None

    if len(settings.job_ids) <= 1:
        return [(settings.job_id, execute(settings, log, env, stop, client(settings)))]
    printing = threading.Lock()

    def one(job_id: int, run_id: int | None) -> Outcome:
        buffer = io.StringIO()
        job_log = actions.Log(actions=log.actions, stream=buffer, debug_enabled=log.debug_enabled)
        try:
            job_settings = for_job(settings, job_id, run_id)
            outcome = execute(job_settings, job_log, env, stop, client(job_settings))
        except Exception as exc:  # one job's bad state never stops the others
            message = redact(f"job {job_id}: unexpected {type(exc).__name__}: {exc}", settings.token)
            job_log.error(message, title="dbt-cloud-restart")
            outcome = Outcome(status="error", headline=message, strategy=settings.strategy, exit_code=1)
        with printing:
            log.info(f"==== job {job_id}: {outcome.status} ====")
            log.stream.write(buffer.getvalue())
            log.stream.flush()
        return outcome

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_JOBS, len(settings.job_ids))) as pool:
        futures = [pool.submit(one, job, run) for job, run in zip(settings.job_ids, settings.run_ids, strict=True)]
        return [(job, future.result()) for job, future in zip(settings.job_ids, futures, strict=True)]
