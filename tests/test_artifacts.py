"""Artifact parsing: the hand-written checks agree with the JSON Schemas; the compact loader; manifest policy."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from restart.artifacts import (
    MANIFEST_SCHEMA,
    RUN_RESULTS_SCHEMA,
    ArtifactError,
    load_manifest,
    parse_manifest,
    parse_run_results,
)

V6 = "https://schemas.getdbt.com/dbt/run-results/v6.json"


def node(uid: str, **extra: Any) -> dict[str, Any]:
    kind, package, name = uid.split(".")[:3]
    return {
        "unique_id": uid,
        "resource_type": kind,
        "package_name": package,
        "name": name,
        "fqn": [package, "staging", name],
        "version": None,
        "depends_on": {"macros": ["macro.dbt.x"], "nodes": []},
        "columns": {"id": {"name": "id", "description": "x" * 50, "meta": {}}},
        "config": {"materialized": "view", "docs": {"show": True}},
        "tags": ["nightly"],
        "original_file_path": f"models/staging/{name}.sql",
        "raw_code": "select 1",
        **extra,
    }


def manifest() -> dict[str, Any]:
    unit = node("unit_test.shop.orders.t1", config={"tags": ["unit"]})
    del unit["tags"]  # a unit test's tags are in its config only
    return {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "project_name": "shop"},
        "nodes": {
            "model.shop.orders": node("model.shop.orders"),
            "model.shop.dim.v2": node("model.shop.dim.v2", version=2, fqn=["shop", "marts", "dim", "v2"]),
            "test.shop.not_null_orders_id.abc": node(
                "test.shop.not_null_orders_id.abc", depends_on={"nodes": ["model.shop.orders"]}
            ),
            "operation.shop.shop-on-run-end-0": node("operation.shop.shop-on-run-end-0"),
        },
        "sources": {"source.shop.raw.orders": node("source.shop.raw.orders")},
        "unit_tests": {"unit_test.shop.orders.t1": unit},
        "child_map": {"model.shop.orders": ["test.shop.not_null_orders_id.abc"]},
    }


def results() -> dict[str, Any]:
    return {
        "metadata": {"dbt_schema_version": V6},
        "results": [
            {"unique_id": "model.shop.orders", "status": "error", "message": "boom", "failures": None},
            {"unique_id": "test.shop.t.abc", "status": "fail", "message": None, "failures": 3},
        ],
        "args": {"which": "build"},
    }


def mutations(document: dict[str, Any], paths: list[list[Any]]) -> list[tuple[str, Any]]:
    """One broken copy per (path, replacement): delete a key or change its type."""
    broken: list[tuple[str, Any]] = [("not-an-object", [1, 2, 3])]
    for path in paths:
        replacement: Any
        for replacement in ("<delete>", 7, True, None, "text", [], {}, ""):
            copied = copy.deepcopy(document)
            target = copied
            for key in path[:-1]:
                target = target[key]
            if replacement == "<delete>":
                if isinstance(target, dict):
                    target.pop(path[-1], None)
                else:
                    continue
            else:
                target[path[-1]] = replacement
            broken.append(("/".join(map(str, path)) + f"={replacement!r}", copied))
    return broken


RESULT_PATHS: list[list[Any]] = [
    ["metadata"],
    ["metadata", "dbt_schema_version"],
    ["results"],
    ["results", 0],
    ["results", 0, "unique_id"],
    ["results", 1, "status"],
    ["results", 0, "message"],
    ["results", 1, "failures"],
    ["args"],
]
NODE = ["nodes", "model.shop.orders"]
MANIFEST_PATHS: list[list[Any]] = [
    ["nodes"],
    ["unit_tests"],
    NODE,
    [*NODE, "resource_type"],
    [*NODE, "package_name"],
    [*NODE, "name"],
    [*NODE, "fqn"],
    [*NODE, "fqn", 1],
    [*NODE, "version"],
    [*NODE, "depends_on"],
    [*NODE, "tags"],
    [*NODE, "tags", 0],
    [*NODE, "original_file_path"],
    [*NODE, "config"],
    [*NODE, "config", "materialized"],
    ["unit_tests", "unit_test.shop.orders.t1", "config", "tags"],
    ["unit_tests", "unit_test.shop.orders.t1", "config", "tags", 0],
    ["unit_tests", "unit_test.shop.orders.t1", "fqn"],
]


def schema_verdict(document: Any, schema: dict[str, Any]) -> str:
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        return "/".join(str(p) for p in exc.absolute_path) or "top level"
    return ""


def our_verdict(document: Any, parse: Any) -> str:
    try:
        parse(document)
    except ArtifactError as exc:
        text = str(exc)
        if "malformed at " not in text:
            return ""  # valid in shape, refused later (an unknown schema version)
        return text.split("malformed at ", 1)[1].split(":", 1)[0]
    return ""


@pytest.mark.parametrize(("label", "document"), mutations(results(), RESULT_PATHS))
def test_run_results_checks_match_the_schema(label: str, document: Any) -> None:
    expected = schema_verdict(document, RUN_RESULTS_SCHEMA)
    assert our_verdict(document, parse_run_results) == expected, label


@pytest.mark.parametrize(("label", "document"), mutations(manifest(), MANIFEST_PATHS))
def test_manifest_checks_match_the_schema(label: str, document: Any) -> None:
    expected = schema_verdict(document, MANIFEST_SCHEMA)
    assert our_verdict(document, parse_manifest) == expected, label


def test_error_messages_keep_their_shape() -> None:
    with pytest.raises(ArtifactError, match=r"run_results.json is malformed at results/0: 'status' is a required"):
        parse_run_results({"metadata": {"dbt_schema_version": V6}, "results": [{"unique_id": "model.a.b"}]})
    with pytest.raises(ArtifactError, match=r"manifest.json is malformed at nodes: 'oops' is not of type 'object'"):
        parse_manifest({"nodes": "oops"})


def test_load_manifest_equals_parse_manifest_and_keeps_errors() -> None:
    document = manifest()
    raw = json.dumps(document).encode()
    assert load_manifest(raw) == parse_manifest(json.loads(raw))
    assert load_manifest(raw.decode()) == parse_manifest(document)
    assert set(load_manifest(raw).nodes) == {
        "model.shop.orders",
        "model.shop.dim.v2",
        "test.shop.not_null_orders_id.abc",
        "unit_test.shop.orders.t1",
    }
    parsed = load_manifest(raw)
    orders = parsed.nodes["model.shop.orders"]
    assert (orders.tags, orders.path, orders.materialized) == (("nightly",), "models/staging/orders.sql", "view")
    assert set(parsed.others) == {"source.shop.raw.orders", "operation.shop.shop-on-run-end-0"}
    assert parsed.others["source.shop.raw.orders"].tags == ("nightly",)
    assert parsed.nodes["unit_test.shop.orders.t1"].tags == ("unit",)  # a unit test's tags are in its config
    assert (parsed.project_name, parsed.opaque) == ("shop", False)
    odd = copy.deepcopy(document)
    odd["sources"]["source.shop.raw.orders"]["tags"] = "ab"  # a bare string: dbt iterates its characters
    assert load_manifest(json.dumps(odd)) == parse_manifest(odd)
    assert parse_manifest(odd).others["source.shop.raw.orders"].tags == ("ab", "a", "b")
    odd["sources"]["source.shop.raw.orders"]["tags"] = {"a": 1}  # unreadable: no group selector is trusted
    assert load_manifest(json.dumps(odd)) == parse_manifest(odd)
    assert parse_manifest(odd).opaque
    broken = copy.deepcopy(document)
    del broken["nodes"]["model.shop.orders"]["fqn"]
    with pytest.raises(ArtifactError, match=r"malformed at nodes/model\.shop\.orders: 'fqn' is a required property"):
        load_manifest(json.dumps(broken))
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_manifest(raw[:-5])
