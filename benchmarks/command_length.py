"""Longest restart command for a synthetic 500-model project, before and after compaction.

Run with `python -m benchmarks.command_length`. The project is built in memory (no dbt): 500
models in 10 layers, each reading one or two models of the layer above, each tagged with its layer
(`layer_07`) and kept in a folder per layer (`models/marts/layer_07`), each with a `not_null` test
(tagged alike); the models of layer 4 are ephemeral (never executed, no tests). In `dbt build` and
`dbt run`, either one model near the root fails, so everything below it is skipped, or every model
of a layer fails at once (a warehouse outage on the last layer's models), with what is below them.
"""

from __future__ import annotations

import random

from restart import commands as cmds
from restart.artifacts import Manifest, ManifestNode
from restart.dbt_vocabulary import EXECUTES
from restart.selection import compact, pulls_in_tests, select_nodes
from restart.selector import render

MODELS, LAYERS, EPHEMERAL_LAYER = 500, 10, 4


def project(seed: int = 7) -> Manifest:
    rng = random.Random(seed)
    nodes: dict[str, ManifestNode] = {}
    per_layer = MODELS // LAYERS
    previous: list[str] = []
    for layer in range(LAYERS):
        current = []
        tags = (f"layer_{layer:02d}",)
        for i in range(per_layer):
            name = f"model_{layer:02d}_{i:03d}"
            uid = f"model.big.{name}"
            parents = tuple(rng.sample(previous, k=min(len(previous), rng.choice([1, 2])))) if previous else ()
            folder = "staging" if layer < 3 else "marts"
            where = f"models/{folder}/layer_{layer:02d}"
            materialized = "ephemeral" if layer == EPHEMERAL_LAYER else "table"
            fqn = ("big", folder, f"layer_{layer:02d}", name)
            nodes[uid] = ManifestNode(
                uid, "model", "big", name, fqn, False, parents, tags, f"{where}/{name}.sql", materialized
            )
            current.append(uid)
            if materialized == "ephemeral":
                continue
            test = f"test.big.not_null_{name}_id.{layer:02d}{i:03d}"
            test_fqn = (*fqn[:-1], f"not_null_{name}_id")
            nodes[test] = ManifestNode(
                test, "test", "big", test_fqn[-1], test_fqn, False, (uid,), tags, f"{where}/_schema.yml", "test"
            )
        previous = current
    return Manifest(nodes, project_name="big")


def failed_set(manifest: Manifest, roots: list[str], kinds: frozenset[str]) -> list[str]:
    children: dict[str, list[str]] = {}
    for uid, node in manifest.nodes.items():
        for parent in node.depends_on:
            children.setdefault(parent, []).append(uid)
    seen, stack = list(roots), list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.append(child)
                stack.append(child)
    node = manifest.nodes
    return [uid for uid in seen if node[uid].resource_type in kinds and node[uid].materialized != "ephemeral"]


SCENARIOS = {
    "model_00_003": ["model.big.model_00_003"],
    "model_01_010": ["model.big.model_01_010"],
    "model_05_020": ["model.big.model_05_020"],
    "layer 09 (all)": [f"model.big.model_09_{i:03d}" for i in range(MODELS // LAYERS)],
    "layer 08 (all)": [f"model.big.model_08_{i:03d}" for i in range(MODELS // LAYERS)],
}


def main() -> None:
    manifest = project()
    print(f"{'command':<14} {'failed':<22} {'nodes':>6} {'before':>8} {'after':>7} {'selectors':>14}  after")
    for command_text in ("dbt build", "dbt run"):
        command = cmds.parse(command_text)
        kinds = EXECUTES[command.name]
        for label, roots in SCENARIOS.items():
            ids = failed_set(manifest, roots, kinds)
            selection = select_nodes(ids, manifest)
            indirect = command.name in ("build", "test") and pulls_in_tests(ids, manifest)
            before = command.narrowed(render(selection.selectors), indirect_empty=indirect)
            short = compact(ids, selection, manifest, kinds)
            after = command.narrowed(render(short), indirect_empty=indirect)
            counts = f"{len(selection.selectors)} -> {len(short)}"
            shown = after if len(after) <= 60 else after[:57] + "..."
            print(
                f"{command_text:<14} {label:<22} {len(ids):>6} {len(before):>8} {len(after):>7} {counts:>14}  {shown}"
            )


if __name__ == "__main__":
    main()
