"""The action's outputs, made from outcomes, within GitHub's 1 MB per job."""

from __future__ import annotations

import json
from collections.abc import Sequence

from restart.outcome import Outcome

OUTPUT_BUDGET = 900_000  # bytes of output values; GitHub drops a job's outputs past 1 MB
JOB_KEYS_ROOM = 2048  # bytes of each job's share of OUTPUT_BUDGET kept for its id and quotes in every output
LISTS = ("steps", "rerun-nodes", "missing-nodes")  # outputs that are JSON arrays
JSON_VALUES = (*LISTS, "context")  # outputs that are JSON values (arrays, or an object)


NO_OUTCOME = Outcome(status="error", headline="", strategy="")  # for the output names alone


def outputs_of(outcome: Outcome) -> dict[str, str]:
    """The action's outputs; every key is always written."""
    plan, verdict, saved = outcome.plan, outcome.verdict, outcome.avoided
    run = outcome.new_run or outcome.existing
    return {
        "run-id": str(run.id) if run else "",
        "run-url": run.href if run else "",
        "status": outcome.status,
        "previous-run-id": str(outcome.previous.id) if outcome.previous else "",
        "restarted": "true" if outcome.restarted else "false",
        "steps": json.dumps(plan.steps_override if plan else []),
        "rerun-nodes": json.dumps(plan.rerun_nodes if plan else []),
        "issue-url": outcome.issue_url,
        "verified": _verified(outcome),
        "missing-nodes": json.dumps(list(verdict.missing) if verdict else []),
        "avoided-nodes": str(saved.nodes) if saved else "",
        "avoided-seconds": str(round(saved.seconds, 1)) if saved else "",
        "context": json.dumps(outcome.context.body if outcome.context else {}),
    }


def _verified(outcome: Outcome) -> str:
    """`true`/`false` when the nodes or the context of the new run were checked, '' when neither was."""
    checks = [c.verified for c in (outcome.verdict, outcome.context_check) if c is not None]
    return "" if not checks else ("true" if all(checks) else "false")


def outputs_by_job(outcomes: Sequence[tuple[int, Outcome]], budget: int = OUTPUT_BUDGET) -> tuple[dict[str, str], str]:
    """Outputs of a multi-job step, each one a JSON object keyed by job id; (outputs, warning).

    Each job gets an equal share of the 1 MB guard (see `fit_outputs`), less room for the job ids.
    """
    share = budget // max(len(outcomes), 1) - JOB_KEYS_ROOM
    per_job: dict[str, dict[str, str]] = {}
    warnings = []
    for job, outcome in outcomes:
        per_job[str(job)], warning = fit_outputs(outputs_of(outcome), share)
        if warning:
            warnings.append(f"job {job}: {warning}")
    names = next(iter(per_job.values())).keys() if per_job else outputs_of(NO_OUTCOME).keys()
    values = {
        name: json.dumps({job: json.loads(o[name]) if name in JSON_VALUES else o[name] for job, o in per_job.items()})
        for name in names
    }
    return values, "; ".join(warnings)


def fit_outputs(values: dict[str, str], budget: int = OUTPUT_BUDGET) -> tuple[dict[str, str], str]:
    """Outputs within GitHub's 1 MB per job: `rerun-nodes`, then `missing-nodes`, are shortened; (outputs, warning)."""
    warnings = []
    for name in ("rerun-nodes", "missing-nodes"):
        size = sum(len(v.encode()) for v in values.values())
        if size <= budget or name not in values:
            continue
        nodes: list[str] = json.loads(values[name])
        room = budget - (size - len(values[name].encode()))
        kept: list[str] = []
        used = 2
        for node in nodes:
            used += len(json.dumps(node).encode()) + 2
            if used > room:
                break
            kept.append(node)
        warnings.append(f"output {name} lists {len(kept)} of {len(nodes)} nodes: GitHub keeps 1 MB of outputs per job")
        values = {**values, name: json.dumps(kept)}
    return values, "; ".join(warnings)
