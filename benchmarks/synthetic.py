"""Synthetic dbt artifacts of realistic shape and size: a layered project plus a package.

`make_project(n)` builds `n` executable nodes (seeds, staging / intermediate / mart models, data
tests) with realistic node dicts (fqn, config, columns, raw and compiled code, refs, depends_on...),
the macros and maps a real manifest carries, and a `dbt build` run_results.json for a failure at
the root, in the middle or at a leaf of the graph. Deterministic for a given `n`.
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

ROOT_PACKAGE = "shop"
PACKAGE = "shop_utils"
SCHEMA_VERSION = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RESULTS_VERSION = "https://schemas.getdbt.com/dbt/run-results/v6.json"
WHERE = ("root", "middle", "leaf")


@dataclass
class Project:
    """One synthetic project: the manifest and the executable graph it describes."""

    manifest: dict[str, Any]
    children: dict[str, list[str]]  # unique_id -> executable children (models and tests)
    order: list[str]  # executable unique_ids in a topological order


def _sql(rng: random.Random, refs: list[str], lines: int) -> str:
    columns = ",\n    ".join(f"col_{rng.randrange(10_000)} as column_{i}" for i in range(lines))
    joins = "\n".join(f"left join {{{{ ref('{r}') }}}} as r{i} using (id)" for i, r in enumerate(refs))
    return f"with source as (\n  select * from base\n)\nselect\n    {columns}\nfrom source\n{joins}\n"


def _config(materialized: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "alias": None,
        "schema": None,
        "database": None,
        "tags": [],
        "meta": {},
        "group": None,
        "materialized": materialized,
        "incremental_strategy": None,
        "batch_size": None,
        "lookback": 1,
        "begin": None,
        "persist_docs": {},
        "post-hook": [],
        "pre-hook": [],
        "quoting": {},
        "column_types": {},
        "full_refresh": None,
        "unique_key": None,
        "on_schema_change": "ignore",
        "on_configuration_change": "apply",
        "grants": {},
        "packages": [],
        "docs": {"show": True, "node_color": None},
        "contract": {"enforced": False, "alias_types": True},
        "event_time": None,
        "concurrent_batches": None,
        "access": "protected",
    }


def _columns(rng: random.Random, count: int) -> dict[str, Any]:
    return {
        f"column_{i}": {
            "name": f"column_{i}",
            "description": f"Column {i}: " + "a described business attribute " * rng.randrange(1, 3),
            "meta": {},
            "data_type": rng.choice(["varchar", "integer", "timestamp", None]),
            "constraints": [],
            "quote": None,
            "tags": [],
            "granularity": None,
        }
        for i in range(count)
    }


def _node(
    rng: random.Random,
    *,
    resource_type: str,
    package: str,
    folder: list[str],
    name: str,
    parents: list[str],
    version: int | None = None,
) -> dict[str, Any]:
    file_name = f"{name}_v{version}" if version is not None else name
    unique_id = f"{resource_type}.{package}.{name}" + (f".v{version}" if version is not None else "")
    fqn = [package, *folder, name] + ([f"v{version}"] if version is not None else [])
    refs = [p.split(".")[2] for p in parents]
    raw = _sql(rng, refs, rng.randrange(10, 48)) if resource_type != "seed" else ""
    path = "/".join([*folder, file_name]) + (".csv" if resource_type == "seed" else ".sql")
    materialized = {"seed": "seed", "test": "test", "model": rng.choice(["view", "table", "incremental"])}
    node: dict[str, Any] = {
        "database": "analytics",
        "schema": f"dbt_{folder[0] if folder else 'tests'}",
        "name": name,
        "resource_type": resource_type,
        "package_name": package,
        "path": path,
        "original_file_path": ("seeds/" if resource_type == "seed" else "models/") + path,
        "unique_id": unique_id,
        "fqn": fqn,
        "alias": file_name,
        "checksum": {"name": "sha256", "checksum": f"{rng.getrandbits(256):064x}"},
        "config": _config(materialized[resource_type]),
        "tags": [],
        "description": "A model of the synthetic benchmark project. " * rng.randrange(1, 4),
        "columns": _columns(rng, rng.randrange(3, 12)) if resource_type != "test" else {},
        "meta": {},
        "group": None,
        "docs": {"show": True, "node_color": None},
        "patch_path": f"{package}://models/{folder[0] if folder else 'tests'}/schema.yml",
        "build_path": None,
        "unrendered_config": {"materialized": materialized[resource_type]},
        "created_at": 1_700_000_000.0 + rng.random(),
        "relation_name": f'"analytics"."dbt_{folder[0] if folder else "tests"}"."{file_name}"',
        "raw_code": raw,
        "language": "sql",
        "refs": [{"name": r, "package": None, "version": None} for r in refs],
        "sources": [],
        "metrics": [],
        "functions": [],
        "depends_on": {"macros": ["macro.dbt.run_query", "macro.dbt.is_incremental"], "nodes": parents},
        "compiled_path": f"target/compiled/{package}/models/{path}",
        "compiled": True,
        "compiled_code": raw.replace("{{ ref('", '"analytics"."').replace("') }}", '"'),
        "extra_ctes_injected": True,
        "extra_ctes": [],
        "contract": {"enforced": False, "alias_types": True, "checksum": None},
        "access": "protected",
        "constraints": [],
        "version": version,
        "latest_version": version,
        "deprecation_date": None,
        "primary_key": ["id"],
        "time_spine": None,
    }
    if resource_type == "test":
        node["test_metadata"] = {"name": "not_null", "kwargs": {"column_name": "id"}, "namespace": None}
        node["column_name"] = "id"
        node["file_key_name"] = f"models.{refs[0]}"
        node["attached_node"] = parents[0]
        node["depends_on"]["macros"] = ["macro.dbt.test_not_null"]
    return node


def make_project(size: int, seed: int = 7) -> Project:
    """A project of `size` executable nodes: about 5% seeds, 45% models, 50% tests."""
    rng = random.Random(seed * 1_000_003 + size)
    nodes: dict[str, Any] = {}
    children: dict[str, list[str]] = {}
    order: list[str] = []

    def add(node: dict[str, Any]) -> str:
        uid: str = node["unique_id"]
        nodes[uid] = node
        children[uid] = []
        for parent in node["depends_on"]["nodes"]:
            children[parent].append(uid)
        order.append(uid)
        return uid

    seeds_n = max(2, size // 20)
    models_n = max(4, size * 45 // 100)
    seeds = [
        add(_node(rng, resource_type="seed", package=ROOT_PACKAGE, folder=["raw"], name=f"raw_{i}", parents=[]))
        for i in range(seeds_n)
    ]
    layers: dict[str, list[str]] = {"staging": [], "intermediate": [], "marts": []}
    plan = [("staging", models_n * 3 // 10), ("intermediate", models_n * 4 // 10)]
    plan.append(("marts", models_n - sum(count for _, count in plan)))
    models: list[str] = []
    for layer, count in plan:
        for i in range(count):
            if layer == "staging":
                parents = [rng.choice(seeds)]
            elif layer == "intermediate":
                pool = layers["staging"] + layers["intermediate"][-50:]
                parents = sorted(set(rng.sample(pool, min(len(pool), rng.randrange(1, 4)))))
                if rng.random() < 0.15:  # a hub (think stg_customers) that much of the project uses
                    parents = sorted({*parents, layers["staging"][0]})
            else:
                pool = layers["intermediate"] + layers["marts"][-50:]
                parents = sorted(set(rng.sample(pool, min(len(pool), rng.randrange(2, 5)))))
            name = f"{layer[:3]}_{i}"
            package = ROOT_PACKAGE
            version = None
            if layer == "marts" and i % 97 == 5:
                version = 1 + i % 2  # a versioned model
            if layer == "staging" and i % 53 == 3:
                package = PACKAGE  # lives in the package ...
                name = f"int_{i}"  # ... under a name the root project also uses
            uid = add(
                _node(
                    rng,
                    resource_type="model",
                    package=package,
                    folder=[layer, f"domain_{i % 7}"],
                    name=name,
                    parents=parents,
                    version=version,
                )
            )
            layers[layer].append(uid)
            models.append(uid)
    tests_n = size - seeds_n - len(models)
    for i in range(max(tests_n, 0)):
        model = models[i % len(models)]
        model_name = model.split(".")[2]
        name = f"not_null_{model_name}_id_{i // len(models)}"
        add(_node(rng, resource_type="test", package=ROOT_PACKAGE, folder=[], name=name, parents=[model]))
    macros = {
        f"macro.dbt.macro_{i}": {
            "name": f"macro_{i}",
            "resource_type": "macro",
            "package_name": "dbt",
            "path": f"macros/m_{i}.sql",
            "original_file_path": f"macros/m_{i}.sql",
            "unique_id": f"macro.dbt.macro_{i}",
            "macro_sql": "{% macro m() %}" + "select 1 " * 60 + "{% endmacro %}",
            "depends_on": {"macros": []},
            "description": "",
            "meta": {},
            "docs": {"show": True, "node_color": None},
            "patch_path": None,
            "arguments": [],
            "created_at": 1_700_000_000.0,
            "supported_languages": None,
        }
        for i in range(min(3000, 400 + size // 10))
    }
    parent_map = {uid: list(node["depends_on"]["nodes"]) for uid, node in nodes.items()}
    manifest = {
        "metadata": {
            "dbt_schema_version": SCHEMA_VERSION,
            "dbt_version": "1.10.0",
            "generated_at": "2026-11-24T00:00:00Z",
            "invocation_id": "0" * 32,
            "env": {},
            "project_name": ROOT_PACKAGE,
            "adapter_type": "duckdb",
        },
        "nodes": nodes,
        "sources": {},
        "macros": macros,
        "docs": {},
        "exposures": {},
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": {},
        "parent_map": parent_map,
        "child_map": {uid: list(kids) for uid, kids in children.items()},
        "group_map": {},
        "saved_queries": {},
        "semantic_models": {},
        "unit_tests": {},
    }
    return Project(manifest, children, order)


def failure_point(project: Project, where: str) -> str:
    """The node that fails: a seed feeding the most nodes, a mid-graph model, or a leaf model."""
    nodes = project.manifest["nodes"]
    models = [u for u in project.order if nodes[u]["resource_type"] in ("model", "seed")]
    if where == "root":
        return max(
            (u for u in models if nodes[u]["resource_type"] == "seed"), key=lambda u: len(descendants(project, u))
        )
    if where == "middle":
        middle = [u for u in models if "intermediate" in nodes[u]["fqn"]]
        target = len(project.order) // 20  # a model whose failure skips about 5% of the project
        return min(middle, key=lambda u: abs(len(descendants(project, u)) - target))
    leaves = [u for u in models if all(nodes[c]["resource_type"] == "test" for c in project.children[u])]
    return leaves[len(leaves) // 2]


def descendants(project: Project, uid: str) -> set[str]:
    seen: set[str] = set()
    queue = deque(project.children[uid])
    while queue:
        item = queue.popleft()
        if item not in seen:
            seen.add(item)
            queue.extend(project.children[item])
    return seen


def run_results(project: Project, failed: str) -> dict[str, Any]:
    """`dbt build`'s run_results.json when `failed` errors: its descendants skipped, the rest passed."""
    skipped = descendants(project, failed)
    results = []
    for uid in project.order:
        node = project.manifest["nodes"][uid]
        if uid == failed:
            status, message = "error", "Runtime Error: injected failure"
        elif uid in skipped:
            status, message = "skipped", f"SKIP relation because {failed} failed"
        else:
            status = "pass" if node["resource_type"] == "test" else "success"
            message = "OK" if status == "success" else None
        results.append(
            {
                "status": status,
                "timing": [
                    {"name": "compile", "started_at": "2026-11-24T00:00:00Z", "completed_at": "2026-11-24T00:00:01Z"},
                    {"name": "execute", "started_at": "2026-11-24T00:00:01Z", "completed_at": "2026-11-24T00:00:02Z"},
                ],
                "thread_id": "Thread-1",
                "execution_time": 1.0,
                "adapter_response": {"_message": "OK", "code": "OK", "rows_affected": 1},
                "message": message,
                "failures": 0 if node["resource_type"] == "test" else None,
                "unique_id": uid,
                "compiled": True,
                "compiled_code": node["compiled_code"],
                "relation_name": node["relation_name"],
                "batch_results": None,
            }
        )
    return {
        "metadata": {"dbt_schema_version": RESULTS_VERSION, "dbt_version": "1.10.0", "generated_at": "", "env": {}},
        "results": results,
        "elapsed_time": 100.0,
        "args": {"which": "build", "select": [], "exclude": [], "indirect_selection": "eager"},
    }


def failed_run_json(run_id: int = 100, job_id: int = 1) -> dict[str, Any]:
    """The API's run object of a one-step `dbt build` job that failed."""
    names = ["Clone git repository", "Create profile from connection", "Invoke dbt with `dbt deps`"]
    steps = [{"index": i + 1, "name": n, "status": 10} for i, n in enumerate(names)]
    steps.append({"index": 4, "name": "Invoke dbt with `dbt build`", "status": 20})
    job = {"id": job_id, "name": "nightly", "execute_steps": ["dbt build"], "generate_docs": False}
    return {"id": run_id, "job_definition_id": job_id, "status": 20, "job": job, "run_steps": steps, "trigger": {}}


def dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=None, separators=(",", ":")).encode()
