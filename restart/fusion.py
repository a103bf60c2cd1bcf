"""What a dbt v2 (Fusion) step's `skipped` results mean, read against its manifest. Pure.

Fusion records ephemeral models, no-op nodes and tests dbt State reused as `skipped`, and does not
always record the node that failed (dbt-fusion #1130). So a `skipped` node is held back by a failure
only when a failed node of the same step is its ancestor, and when no failed node is recorded the
failed roots are found from the manifest: nodes the command selected and did not record (the parents
of what was skipped among them).
"""

from __future__ import annotations

from collections.abc import Iterable

from restart.artifacts import Manifest, RunResults
from restart.dbt_vocabulary import Status
from restart.graph import descendants_of
from restart.selection import executes_node


def held_back(
    results: RunResults, manifest: Manifest, failed: Iterable[str], executes: frozenset[str] | None
) -> list[str]:
    """The `skipped` nodes a failed node of `failed` is an ancestor of, in the order dbt reported them.

    Ephemeral models (and anything else the command does not execute) are never held back.
    """
    below = descendants_of(manifest, failed)
    return [
        r.unique_id
        for r in results.results
        if r.status == Status.SKIPPED
        and r.unique_id in below
        and r.unique_id in manifest.nodes
        and executes_node(manifest.nodes[r.unique_id], executes)
    ]


def failed_roots(results: RunResults, manifest: Manifest, executes: frozenset[str] | None) -> list[str]:
    """The nodes the command executes that run_results.json does not record: those that failed unrecorded.

    Only meaningful when the command selected every node it executes (no `--select`/`--exclude`/
    `--selector`): then each of them is recorded once it finished, ephemeral models too (`skipped`),
    so one missing did not finish; the parents of what was skipped are among them, and so is a
    failed node nothing depends on. Sorted.
    """
    recorded = {r.unique_id for r in results.results}
    return sorted(uid for uid, node in manifest.nodes.items() if uid not in recorded and executes_node(node, executes))
