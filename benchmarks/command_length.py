"""Longest restart command for a synthetic 500-model project, before and after compaction.

Run with `python -m benchmarks.command_length`. The project is built in memory (no dbt): 500
models in 10 layers, each reading one or two models of the layer above, each with a `not_null`
test; one model near the root fails in `dbt build` and `dbt run`, so everything below it is skipped.
"""

from __future__ import annotations

import random

from restart import commands as cmds
from restart.artifacts import Manifest, ManifestNode
from restart.plan import EXECUTES
from restart.selection import compact, pulls_in_tests, select_nodes

MODELS, LAYERS = 500, 10


def project(seed: int = 7) -> Manifest:
    rng = random.Random(seed)
    nodes: dict[str, ManifestNode] = {}
    per_layer = MODELS // LAYERS
    previous: list[str] = []
    for layer in range(LAYERS):
        current = []
        for i in range(per_layer):
            name = f"model_{layer:02d}_{i:03d}"
            uid = f"model.big.{name}"
            parents = tuple(rng.sample(previous, k=min(len(previous), rng.choice([1, 2])))) if previous else ()
            folder = "staging" if layer < 3 else "marts"
            nodes[uid] = ManifestNode(uid, "model", "big", name, ("big", folder, name), False, parents)
            test = f"test.big.not_null_{name}_id.{layer:02d}{i:03d}"
            nodes[test] = ManifestNode(
                test, "test", "big", f"not_null_{name}_id", ("big", folder, f"not_null_{name}_id"), False, (uid,)
            )
            current.append(uid)
        previous = current
    return Manifest(nodes)


def failed_set(manifest: Manifest, root: str, kinds: frozenset[str]) -> list[str]:
    children: dict[str, list[str]] = {}
    for uid, node in manifest.nodes.items():
        for parent in node.depends_on:
            children.setdefault(parent, []).append(uid)
    seen, stack = [root], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.append(child)
                stack.append(child)
    return [uid for uid in seen if manifest.nodes[uid].resource_type in kinds]


def main() -> None:
    manifest = project()
    print(f"{'command':<14} {'failed root':<22} {'nodes':>6} {'before':>8} {'after':>7} {'selectors':>14}")
    for command_text in ("dbt build", "dbt run"):
        command = cmds.parse(command_text)
        kinds = EXECUTES[command.name]
        for root in ("model.big.model_00_003", "model.big.model_01_010", "model.big.model_05_020"):
            ids = failed_set(manifest, root, kinds)
            selection = select_nodes(ids, manifest)
            indirect = command.name in ("build", "test") and pulls_in_tests(ids, manifest)
            before = command.narrowed(list(selection.selectors), indirect_empty=indirect)
            short = compact(ids, selection, manifest, kinds)
            after = command.narrowed(list(short), indirect_empty=indirect)
            counts = f"{len(selection.selectors)} -> {len(short)}"
            print(f"{command_text:<14} {root[10:]:<22} {len(ids):>6} {len(before):>8} {len(after):>7} {counts:>14}")


if __name__ == "__main__":
    main()
