"""dbt artifacts: `run_results.json` and `manifest.json`, checked against the fields this tool uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

# dbt writes run-results v4 (dbt 1.5) to v6 (dbt 1.8 and later).
KNOWN_RUN_RESULTS_VERSIONS = frozenset({4, 5, 6})
# Node statuses `dbt retry` reruns (dbt-core's task/retry.py RETRYABLE_STATUSES).
RETRYABLE = frozenset({"error", "fail", "skipped", "runtime error", "partial success"})
FAILED = frozenset({"error", "fail", "runtime error", "partial success"})
# Resource types a dbt command executes (what a selection can make run).
EXECUTABLE = frozenset({"model", "seed", "snapshot", "test", "unit_test", "analysis", "function"})

RUN_RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["metadata", "results"],
    "properties": {
        "metadata": {
            "type": "object",
            "required": ["dbt_schema_version"],
            "properties": {"dbt_schema_version": {"type": "string"}},
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["unique_id", "status"],
                "properties": {
                    "unique_id": {"type": "string", "minLength": 1},
                    "status": {"type": "string"},
                    "message": {"type": ["string", "null"]},
                    "failures": {"type": ["integer", "null"]},
                },
            },
        },
        "args": {"type": "object"},
    },
}

MANIFEST_NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["resource_type", "package_name", "name", "fqn"],
    "properties": {
        "resource_type": {"type": "string"},
        "package_name": {"type": "string"},
        "name": {"type": "string"},
        "fqn": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "version": {"type": ["string", "integer", "number", "null"]},
        "depends_on": {"type": "object"},
    },
}
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["nodes"],
    "properties": {
        "nodes": {"type": "object", "additionalProperties": MANIFEST_NODE_SCHEMA},
        "unit_tests": {"type": "object", "additionalProperties": MANIFEST_NODE_SCHEMA},
    },
}


class ArtifactError(ValueError):
    """An artifact is missing fields this tool relies on, or has an unknown schema version."""


@dataclass(frozen=True)
class NodeResult:
    """One node's outcome in a step."""

    unique_id: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class RunResults:
    """The parts of one step's `run_results.json` the planner uses."""

    results: tuple[NodeResult, ...]
    args: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 6


@dataclass(frozen=True)
class ManifestNode:
    """What selecting a node needs to know about it."""

    unique_id: str
    resource_type: str
    package_name: str
    name: str
    fqn: tuple[str, ...]
    is_versioned: bool
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """The executable nodes of one step's `manifest.json`, by unique_id."""

    nodes: dict[str, ManifestNode]


def _schema_version(url: str, kind: str) -> int:
    match = re.search(rf"/{kind}/v(\d+)\.json$", url)
    if not match:
        raise ArtifactError(f"dbt_schema_version {url!r} is not a {kind} schema")
    return int(match.group(1))


def _validate(document: Any, schema: dict[str, Any], what: str) -> None:
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise ArtifactError(f"{what} is malformed at {where}: {exc.message[:200]}") from None


def parse_run_results(document: Any) -> RunResults:
    """Validate and read a `run_results.json` document."""
    _validate(document, RUN_RESULTS_SCHEMA, "run_results.json")
    version = _schema_version(document["metadata"]["dbt_schema_version"], "run-results")
    if version not in KNOWN_RUN_RESULTS_VERSIONS:
        raise ArtifactError(f"run_results.json schema v{version} is not one this tool knows (v4-v6)")
    results = tuple(NodeResult(r["unique_id"], r["status"], r.get("message") or "") for r in document["results"])
    return RunResults(results, dict(document.get("args") or {}), version)


def parse_manifest(document: Any) -> Manifest:
    """Validate and read the executable nodes of a `manifest.json` document."""
    _validate(document, MANIFEST_SCHEMA, "manifest.json")
    nodes: dict[str, ManifestNode] = {}
    for section in ("nodes", "unit_tests"):
        for unique_id, node in (document.get(section) or {}).items():
            if node["resource_type"] not in EXECUTABLE:
                continue
            depends = node.get("depends_on") or {}
            nodes[unique_id] = ManifestNode(
                unique_id=unique_id,
                resource_type=node["resource_type"],
                package_name=node["package_name"],
                name=node["name"],
                fqn=tuple(node["fqn"]),
                is_versioned=node.get("version") is not None,
                depends_on=tuple(depends.get("nodes") or ()),
            )
    return Manifest(nodes)


def retryable(results: RunResults, *, command_name: str, warn_error: bool) -> list[NodeResult]:
    """The nodes `dbt retry` would rerun, in the order dbt reported them."""
    statuses = RETRYABLE | {"warn"} if warn_error else RETRYABLE
    return [
        r
        for r in results.results
        if r.status in statuses and not (command_name != "run-operation" and r.unique_id.startswith("operation."))
    ]
