"""What newer dbt engines record differently, read from a step's artifacts. Pure: no I/O.

dbt Core 1.12 (and dbt v2) skip every node when an `on-run-start` hook fails
(`skip_nodes_if_on_run_start_fails` is the default from 1.12), and `on_error: continue` lets the
children of a failed model run on its stale data; `dbt retry` reruns neither kind as the job meant.
"""

from __future__ import annotations

import re

from restart.artifacts import FAILED, Manifest, RunResults

CONTINUE_ON_ERROR_FROM = (1, 12)  # the first dbt Core with `on_error: continue` (beta)
RAN = frozenset({"success", "pass", "warn"})  # statuses of a node that executed to the end
ERRORED_KINDS = ("model.", "seed.", "snapshot.")  # nodes whose error may leave children on stale data
HOOK = "operation."
UNIT_TEST = "unit_test."  # runs on fixtures, before its model: never on the model's data


def version_at_least(dbt_version: str, minimum: tuple[int, int]) -> bool:
    """Whether `1.12.6` (or `2.0.0-preview.45`) is at least `minimum`; False when unknown."""
    match = re.match(r"\s*v?(\d+)\.(\d+)", dbt_version)
    return match is not None and (int(match.group(1)), int(match.group(2))) >= minimum


def on_run_start_failed(results: RunResults) -> bool:
    """Every node skipped and none failed: an `on-run-start` hook failed before any node ran.

    dbt 1.12 records the hook's error as an `operation.` result, or nothing (dbt v2). Narrowing such a
    step to its skipped nodes would lose what dbt never recorded (the unit tests of a `dbt build`).
    """
    nodes = [r for r in results.results if not r.unique_id.startswith(HOOK)]
    return bool(nodes) and all(r.status == "skipped" for r in nodes)


def continued_on_error(results: RunResults) -> bool:
    """Whether children of a failed model may have run after it (dbt 1.12+ `on_error: continue`)."""
    if not version_at_least(results.dbt_version, CONTINUE_ON_ERROR_FROM):
        return False
    errored = any(r.status in FAILED and r.unique_id.startswith(ERRORED_KINDS) for r in results.results)
    return errored and any(r.status in RAN and not r.unique_id.startswith(HOOK) for r in results.results)


def stale_children(results: RunResults, manifest: Manifest) -> list[str]:
    """Nodes of the step that ran to the end although a model they descend from failed, in dbt's order.

    Without `on_error: continue` dbt skips every descendant of a failed model, so none ran; with it they
    ran on the stale relation (tests of the failed model included), and `dbt retry` does not rerun them.
    Unit tests are never stale: `dbt build` runs them on fixtures before their model, whatever `on_error`.
    """
    children: dict[str, list[str]] = {}
    for uid, node in manifest.nodes.items():
        for parent in node.depends_on:
            children.setdefault(parent, []).append(uid)
    roots = [r.unique_id for r in results.results if r.status in FAILED and r.unique_id.startswith(ERRORED_KINDS)]
    seen, queue = set(roots), list(roots)
    while queue:
        for child in children.get(queue.pop(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    stale = seen - set(roots)
    return [
        r.unique_id
        for r in results.results
        if r.status in RAN and r.unique_id in stale and not r.unique_id.startswith(UNIT_TEST)
    ]
