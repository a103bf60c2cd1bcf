"""Fusion mode: a step's artifacts rewritten the way dbt v2 (the Fusion engine) writes them.

dbt v2 cannot be installed here, so an environment in Fusion mode runs dbt-core as any other and then
rewrites what dbt wrote to target/ (field notes "dbt v2 (Fusion engine)"):

- run_results.json: `metadata.dbt_version` a Fusion preview; `args` only `command` and `which` (no
  selection); results without `compiled`, `compiled_code`, `failures`, `batch_results` (and without
  `message` unless they failed); every ephemeral model next to a recorded child listed `skipped`;
  nodes named in `reused` that succeeded recorded `reused`, and the passing tests of those nodes
  `skipped` (dbt State reused them); with `drop_errors`, no `error`/`fail`/`runtime error` result
  at all (dbt-fusion #1130).
- manifest.json: labelled `manifest/v20.json`, `null` for `config.materialized` (ephemeral models
  aside), for empty `tags` and `config.tags`, extra fields (`depends_on.nodes_with_ref_location`,
  `__fusion__`).

What dbt itself wrote is kept beside them as `<name>.core.json` (never served): tests compare with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FUSION_VERSION = "2.0.0-preview.45"
FUSION_TRACK = "latest-fusion"  # what dbt Cloud shows as a Fusion environment's dbt version
MANIFEST_LABEL = "https://schemas.getdbt.com/dbt/manifest/v20.json"
FAILED = frozenset({"error", "fail", "runtime error"})
DROPPED_RESULT_FIELDS = ("compiled", "compiled_code", "failures", "batch_results", "relation_name")
CORE_SUFFIX = ".core.json"


@dataclass(frozen=True)
class FusionMode:
    """How an environment's steps write their artifacts in Fusion mode."""

    reused: frozenset[str] = field(default_factory=frozenset)  # node names recorded `reused` when they succeed
    drop_errors: bool = False  # leave failed nodes out of run_results.json


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    document: dict[str, Any] = json.loads(path.read_bytes())
    path.with_name(path.stem + CORE_SUFFIX).write_bytes(path.read_bytes())
    return document


def _write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")


def rewrite_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A dbt-core manifest as a Fusion preview writes it (a new document)."""
    document: dict[str, Any] = json.loads(json.dumps(manifest))
    document["metadata"]["dbt_schema_version"] = MANIFEST_LABEL
    document["metadata"]["dbt_version"] = FUSION_VERSION
    for section in ("nodes", "unit_tests", "sources", "exposures"):
        for node in (document.get(section) or {}).values():
            config = node.get("config")
            if isinstance(config, dict):
                if config.get("materialized") != "ephemeral":
                    config["materialized"] = None
                if not config.get("tags"):
                    config["tags"] = None
            if node.get("tags") == []:
                node["tags"] = None
            depends = node.get("depends_on")
            if isinstance(depends, dict):
                depends["nodes_with_ref_location"] = [[uid, {"line": 1, "col": 1}] for uid in depends.get("nodes", [])]
            node["__fusion__"] = {"static_analysis": "on"}
    return document


def rewrite_run_results(results: dict[str, Any], manifest: dict[str, Any] | None, mode: FusionMode) -> dict[str, Any]:
    """dbt-core's run_results.json as Fusion writes it (a new document); `manifest` is dbt-core's."""
    document: dict[str, Any] = json.loads(json.dumps(results))
    document["metadata"]["dbt_version"] = FUSION_VERSION
    which = document.get("args", {}).get("which", "")
    document["args"] = {"command": which, "which": which}
    nodes = (manifest or {}).get("nodes", {})
    recorded = {r["unique_id"]: r for r in document["results"]}
    reused = {
        uid for uid, r in recorded.items() if r["status"] == "success" and nodes.get(uid, {}).get("name") in mode.reused
    }
    kept: list[dict[str, Any]] = []
    for result in document["results"]:
        uid, status = result["unique_id"], result["status"]
        if mode.drop_errors and status in FAILED:
            continue
        if uid in reused:
            result["status"] = "reused"
        elif status == "pass" and set(nodes.get(uid, {}).get("depends_on", {}).get("nodes", [])) & reused:
            result["status"] = "skipped"
        for name in DROPPED_RESULT_FIELDS:
            result.pop(name, None)
        if result["status"] not in FAILED:
            result.pop("message", None)
        kept.append(result)
    for uid, node in sorted(nodes.items()):
        ephemeral = node.get("config", {}).get("materialized") == "ephemeral"
        children = [c for c, n in nodes.items() if uid in n.get("depends_on", {}).get("nodes", [])]
        if ephemeral and uid not in recorded and any(c in recorded for c in children):
            kept.append({"unique_id": uid, "status": "skipped", "timing": [], "thread_id": "main"})
    document["results"] = kept
    return document


def rewrite(target: Path, mode: FusionMode) -> None:
    """Rewrite the run_results.json and manifest.json dbt wrote to `target`, in place, keeping dbt's copies."""
    manifest = _read(target / "manifest.json")
    results = _read(target / "run_results.json")
    if results is not None:
        _write(target / "run_results.json", rewrite_run_results(results, manifest, mode))
    if manifest is not None:
        _write(target / "manifest.json", rewrite_manifest(manifest))
