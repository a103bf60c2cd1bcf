"""dbt artifacts: `run_results.json` and `manifest.json`, checked against the fields this tool uses."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from restart.dbt_vocabulary import EXECUTABLE, HOOK, RETRYABLE, RUN_OPERATION, Status

# dbt writes run-results v4 (dbt 1.5) to v6 (dbt 1.8 and later).
KNOWN_RUN_RESULTS_VERSIONS = frozenset({4, 5, 6})

# The JSON Schemas below document what is checked; `_check_*` check it by hand, in one pass and without
# jsonschema (whose per-node validation dominated the planning of a large manifest), with the same
# `malformed at <path>: <message>` errors. tests/test_artifacts.py holds both to the same verdicts.
RUN_RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["metadata", "results"],
    "properties": {
        "metadata": {
            "type": "object",
            "required": ["dbt_schema_version"],
            "properties": {"dbt_schema_version": {"type": "string"}, "dbt_version": {"type": ["string", "null"]}},
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
        "depends_on": {"type": ["object", "null"]},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "original_file_path": {"type": ["string", "null"]},
        "config": {
            "type": ["object", "null"],
            "properties": {
                "materialized": {"type": ["string", "null"]},
                "tags": {"type": ["string", "array", "null"], "items": {"type": "string"}},
            },
        },
    },
}
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["nodes"],
    "properties": {
        "nodes": {"type": "object", "additionalProperties": MANIFEST_NODE_SCHEMA},
        "unit_tests": {"type": ["object", "null"], "additionalProperties": MANIFEST_NODE_SCHEMA},
    },
}


class ArtifactError(ValueError):
    """An artifact is missing fields this tool relies on, or has an unknown schema version."""


@dataclass(frozen=True)
class BatchResults:
    """A microbatch model's `batch_results`: each batch as (start, end), ISO timestamps as dbt wrote them."""

    successful: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NodeResult:
    """One node's outcome in a step."""

    unique_id: str
    status: str
    message: str = ""
    batch_results: BatchResults | None = None  # microbatch models only
    execution_time: float = field(default=0.0, compare=False)  # seconds, as dbt recorded them (0 if not)


def _batch_results(value: Any) -> BatchResults | None:
    """`batch_results` as dbt 1.9+ writes it; None when absent or not of that shape (read leniently)."""
    if not isinstance(value, dict):
        return None
    lists: list[tuple[tuple[str, str], ...]] = []
    for key in ("successful", "failed"):
        batches = value.get(key) or []
        if not isinstance(batches, list):
            return None
        pairs = [tuple(b) for b in batches if isinstance(b, list | tuple) and len(b) == 2]
        if len(pairs) != len(batches) or not all(isinstance(x, str) for p in pairs for x in p):
            return None
        lists.append(tuple((str(p[0]), str(p[1])) for p in pairs))
    return BatchResults(lists[0], lists[1])


@dataclass(frozen=True)
class RunResults:
    """The parts of one step's `run_results.json` the planner uses."""

    results: tuple[NodeResult, ...]
    args: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 6
    dbt_version: str = ""  # metadata.dbt_version: the engine that wrote it ('' when not recorded)


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
    tags: tuple[str, ...] = ()
    path: str = ""  # original_file_path: relative to its package's root
    materialized: str = ""  # config.materialized (`ephemeral` models never execute)


# Manifest sections (besides `nodes` and `unit_tests`) whose entries `tag:`/`path:` selectors also match.
OTHER_SECTIONS = ("sources", "exposures", "metrics", "semantic_models", "saved_queries", "functions")


@dataclass(frozen=True)
class Manifest:
    """The executable nodes of one step's `manifest.json`, by unique_id.

    `others` holds what a `tag:` or `path:` selector may also match: sources, exposures, metrics,
    semantic models, saved queries, functions and non-executable nodes (hooks), with their tags and
    paths only. `opaque` says some of those could not be read (then no group selector is proven exact).
    """

    nodes: dict[str, ManifestNode]
    others: dict[str, ManifestNode] = field(default_factory=dict)
    project_name: str = ""
    opaque: bool = False


def _schema_version(url: str, kind: str) -> int:
    match = re.search(rf"/{kind}/v(\d+)\.json$", url)
    if not match:
        raise ArtifactError(f"dbt_schema_version {url!r} is not a {kind} schema")
    return int(match.group(1))


class _Malformed(Exception):
    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _is(value: Any, kinds: tuple[str, ...]) -> bool:
    if isinstance(value, bool):  # JSON Schema: true is neither an integer nor a number
        return False
    return any(isinstance(value, _TYPES[kind]) for kind in kinds)


def _expect(value: Any, kinds: tuple[str, ...], path: tuple[str | int, ...]) -> None:
    if not _is(value, kinds):
        shown = f"'{kinds[0]}'" if len(kinds) == 1 else "[" + ", ".join(f"'{k}'" for k in kinds) + "]"
        raise _Malformed(path, f"{value!r:.80} is not of type {shown}")


def _require(document: dict[str, Any], names: tuple[str, ...], path: tuple[str | int, ...]) -> None:
    for name in names:
        if name not in document:
            raise _Malformed(path, f"'{name}' is a required property")


def _check_run_results(document: Any) -> None:
    _expect(document, ("object",), ())
    _require(document, ("metadata", "results"), ())
    metadata = document["metadata"]
    _expect(metadata, ("object",), ("metadata",))
    _require(metadata, ("dbt_schema_version",), ("metadata",))
    _expect(metadata["dbt_schema_version"], ("string",), ("metadata", "dbt_schema_version"))
    if "dbt_version" in metadata:
        _expect(metadata["dbt_version"], ("string", "null"), ("metadata", "dbt_version"))
    results = document["results"]
    _expect(results, ("array",), ("results",))
    for i, result in enumerate(results):
        where: tuple[str | int, ...] = ("results", i)
        _expect(result, ("object",), where)
        _require(result, ("unique_id", "status"), where)
        unique_id = result["unique_id"]
        _expect(unique_id, ("string",), (*where, "unique_id"))
        if not unique_id:
            raise _Malformed((*where, "unique_id"), "'' should be non-empty")
        _expect(result["status"], ("string",), (*where, "status"))
        if "message" in result:
            _expect(result["message"], ("string", "null"), (*where, "message"))
        if "failures" in result:
            _expect(result["failures"], ("integer", "null"), (*where, "failures"))
    if "args" in document:
        _expect(document["args"], ("object",), ("args",))


_VERSION_TYPES = ("string", "integer", "number", "null")


def _check_node(node: Any, path: tuple[str | int, ...]) -> None:
    _expect(node, ("object",), path)
    _require(node, ("resource_type", "package_name", "name", "fqn"), path)
    _expect(node["resource_type"], ("string",), (*path, "resource_type"))
    _expect(node["package_name"], ("string",), (*path, "package_name"))
    _expect(node["name"], ("string",), (*path, "name"))
    fqn = node["fqn"]
    _expect(fqn, ("array",), (*path, "fqn"))
    if not fqn:
        raise _Malformed((*path, "fqn"), "[] should be non-empty")
    for i, part in enumerate(fqn):
        _expect(part, ("string",), (*path, "fqn", i))
    if "version" in node:
        _expect(node["version"], _VERSION_TYPES, (*path, "version"))
    # dbt v2 (Fusion) writes `null` where dbt Core writes a value: every optional field may be null.
    if "depends_on" in node:
        _expect(node["depends_on"], ("object", "null"), (*path, "depends_on"))
    if "tags" in node:
        tags = node["tags"]
        _expect(tags, ("array", "null"), (*path, "tags"))
        for i, tag in enumerate(tags or ()):
            _expect(tag, ("string",), (*path, "tags", i))
    if "original_file_path" in node:
        _expect(node["original_file_path"], ("string", "null"), (*path, "original_file_path"))
    if "config" in node and node["config"] is not None:
        config = node["config"]
        _expect(config, ("object",), (*path, "config"))
        if "materialized" in config:
            _expect(config["materialized"], ("string", "null"), (*path, "config", "materialized"))
        if "tags" in config:
            tags = config["tags"]
            _expect(tags, ("string", "array", "null"), (*path, "config", "tags"))
            for i, tag in enumerate(tags if isinstance(tags, list) else ()):
                _expect(tag, ("string",), (*path, "config", "tags", i))


def _check_manifest(document: Any) -> None:
    _expect(document, ("object",), ())
    _require(document, ("nodes",), ())
    for section in ("nodes", "unit_tests"):
        if section not in document or (section == "unit_tests" and document[section] is None):
            continue  # dbt v2 (Fusion) may write `"unit_tests": null`
        nodes = document[section]
        _expect(nodes, ("object",), (section,))
        for unique_id, node in nodes.items():
            _check_node(node, (section, unique_id))


def _validate(document: Any, check: Any, what: str) -> None:
    try:
        check(document)
    except _Malformed as exc:
        where = "/".join(str(p) for p in exc.path) or "top level"
        raise ArtifactError(f"{what} is malformed at {where}: {exc.message[:200]}") from None


def _seconds(value: Any) -> float:
    """A node's `execution_time`, read leniently: it only feeds the summary's estimate of time saved."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 0.0
    return float(value)


def parse_run_results(document: Any) -> RunResults:
    """Validate (against the fields used) and read a `run_results.json` document."""
    _validate(document, _check_run_results, "run_results.json")
    version = _schema_version(document["metadata"]["dbt_schema_version"], "run-results")
    if version not in KNOWN_RUN_RESULTS_VERSIONS:
        raise ArtifactError(f"run_results.json schema v{version} is not one this tool knows (v4-v6)")
    results = tuple(
        NodeResult(
            r["unique_id"],
            r["status"],
            r.get("message") or "",
            _batch_results(r.get("batch_results")),
            _seconds(r.get("execution_time")),
        )
        for r in document["results"]
    )
    dbt_version = document["metadata"].get("dbt_version")
    return RunResults(
        results, dict(document.get("args") or {}), version, dbt_version if isinstance(dbt_version, str) else ""
    )


def _unit_test_tags(node: dict[str, Any]) -> tuple[str, ...]:
    """A unit test's tags: dbt reads them from its config, where one tag may be a bare string."""
    tags = (node.get("config") or {}).get("tags") or ()
    return (tags,) if isinstance(tags, str) else tuple(tags)


def _other(unique_id: str, node: Any) -> ManifestNode | None:
    """A source, exposure, hook, ...: what `tag:`/`path:` match on; None when it cannot be read.

    Its tags are read generously (top level and config; a string also as its characters, which is
    what dbt's `any(... for tag in node.tags)` iterates then): more tags only rule out more groups.
    """
    if not isinstance(node, dict):
        return None
    config = node.get("config") or {}
    path, kind, package = node.get("original_file_path") or "", node.get("resource_type"), node.get("package_name")
    if not (isinstance(config, dict) and isinstance(path, str) and isinstance(kind, str) and isinstance(package, str)):
        return None
    tags: list[str] = []
    for found in (node.get("tags") or [], config.get("tags") or []):
        if isinstance(found, str):
            tags += [found, *found]
        elif isinstance(found, list) and all(isinstance(t, str) for t in found):
            tags += found
        else:
            return None
    name = str(node.get("name") or "")
    return ManifestNode(unique_id, kind, package, name, (), False, (), tuple(dict.fromkeys(tags)), path)


def parse_manifest(document: Any) -> Manifest:
    """Validate and read the executable nodes of a `manifest.json` document."""
    _validate(document, _check_manifest, "manifest.json")
    nodes: dict[str, ManifestNode] = {}
    others: dict[str, ManifestNode] = {}
    opaque = False
    for section in ("nodes", "unit_tests"):
        for unique_id, node in (document.get(section) or {}).items():
            if node["resource_type"] not in EXECUTABLE:
                other = _other(unique_id, node)
                opaque = opaque or other is None
                if other is not None:
                    others[unique_id] = other
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
                tags=_unit_test_tags(node) if section == "unit_tests" else tuple(node.get("tags") or ()),
                path=node.get("original_file_path") or "",
                materialized=(node.get("config") or {}).get("materialized") or "",
            )
    for section in OTHER_SECTIONS:
        entries = document.get(section) or {}
        if not isinstance(entries, dict):
            opaque = True
            continue
        for unique_id, node in entries.items():
            other = _other(unique_id, node)
            opaque = opaque or other is None
            if other is not None:
                others[unique_id] = other
    metadata = document.get("metadata")
    project = metadata.get("project_name") if isinstance(metadata, dict) else None
    return Manifest(nodes, others, project if isinstance(project, str) else "", opaque)


# The keys of a manifest node that `parse_manifest` reads; `_compact` drops the rest while parsing.
_NODE_KEYS = (
    "resource_type",
    "package_name",
    "name",
    "fqn",
    "version",
    "depends_on",
    "unique_id",
    "tags",
    "original_file_path",
    "config",
)


def _compact(obj: dict[str, Any]) -> dict[str, Any]:
    """json object_hook: a node-like object shrunk to the keys the planner reads (others kept as they are)."""
    if "resource_type" in obj and "unique_id" in obj and "fqn" in obj:
        small = {key: obj[key] for key in _NODE_KEYS if key in obj}
        depends = small.get("depends_on")
        if isinstance(depends, dict) and "nodes" in depends:
            small["depends_on"] = {"nodes": depends["nodes"]}
        config = small.get("config")
        if isinstance(config, dict):
            small["config"] = {key: config[key] for key in ("materialized", "tags") if key in config}
        return small
    return obj


def load_manifest(raw: bytes | str) -> Manifest:
    """Parse and read `manifest.json` from its text, never holding every node's full JSON at once.

    Each node's code, columns and config are dropped as soon as the node is decoded, so the peak is the
    text plus the small nodes rather than the whole document; the result equals
    `parse_manifest(json.loads(raw))`, errors included.
    """
    try:
        document = json.loads(raw, object_hook=_compact)
    except ValueError as exc:
        raise ArtifactError(f"manifest.json is not valid JSON: {exc}") from None
    return parse_manifest(document)


def retryable(results: RunResults, *, command_name: str, warn_error: bool) -> list[NodeResult]:
    """The nodes `dbt retry` would rerun, in the order dbt reported them."""
    statuses = RETRYABLE | {Status.WARN} if warn_error else RETRYABLE
    return [
        r
        for r in results.results
        if r.status in statuses and not (command_name != RUN_OPERATION and r.unique_id.startswith(HOOK))
    ]
