"""The new run's context: the failed run's trigger read into a `RunContext`, merged with `payload` (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from restart.overrides import FROM_PAYLOAD, FROM_RUN, JOB_DEFAULTS, KEEP, ContextMode, merge, sha_note, unread_refusal
from restart.records import RunContext, context_from_json, run_from_json

SHA = "9f1c2ab3e4d5f60718293a4b5c6d7e8f90a1b2c3"
# A CI run of a pull request, with a schema and threads of its own.
CI = {
    "cause": "Triggered by pull request",
    "cause_category": "ci",
    "git_branch": "feature/x",
    "git_sha": SHA,
    "github_pull_request_id": 42,
    "schema_override": "dbt_cloud_pr_7_42",
    "threads_override": 8,
    "steps_override": ["dbt build"],
    "generate_docs_override": None,
}
SCHEDULED = {**{k: None for k in CI}, "cause": "Scheduled", "cause_category": "scheduled"}


def test_a_trigger_is_read_into_its_context_in_a_fixed_order() -> None:
    context = context_from_json({**CI, "cause_category": "ci"})
    assert context.values == (
        ("git_branch", "feature/x"),
        ("git_sha", SHA),
        ("github_pull_request_id", 42),
        ("schema_override", "dbt_cloud_pr_7_42"),
        ("threads_override", 8),
    )
    assert (context.cause_category, context.pull_request, context.recorded) == (
        "ci",
        ("github_pull_request_id", 42),
        True,
    )
    assert context_from_json(SCHEDULED) == RunContext(cause_category="scheduled")


@pytest.mark.parametrize(
    ("field", "value", "read", "unread"),
    [
        ("threads_override", "8", 8, ()),  # ids and counts as digit strings
        ("github_pull_request_id", " 42 ", 42, ()),
        ("schema_override", "  ", None, ()),  # blank text: unset (the API refuses it in a request)
        ("threads_override", True, None, ("threads_override",)),
        ("threads_override", "eight", None, ("threads_override",)),
        ("schema_override", 3, None, ("schema_override",)),
        ("generate_docs_override", "false", None, ("generate_docs_override",)),
        ("git_sha", ["a"], None, ("git_sha",)),
        ("timeout_seconds_override", {"s": 1}, None, ("timeout_seconds_override",)),
    ],
)
def test_a_trigger_is_read_leniently_and_never_crashes(field: str, value: Any, read: Any, unread: tuple[str]) -> None:
    context = context_from_json({"cause": "x", field: value})
    assert (context.get(field), context.unread) == (read, unread)


@pytest.mark.parametrize("trigger", [None, [], "api", 3])
def test_a_run_without_a_trigger_object_has_no_recorded_context(trigger: Any) -> None:
    run = run_from_json({"id": 1, "job_definition_id": 2, "status": 20, "trigger": trigger})
    assert (run.context.recorded, run.context.values, run.cause) == (False, (), "")


def sent(context: RunContext, payload: dict[str, Any], mode: ContextMode = KEEP) -> dict[str, tuple[Any, str]]:
    return {s.key: (s.value, s.source) for s in merge(context, payload, mode).sent}


def left(context: RunContext, payload: dict[str, Any], mode: ContextMode = KEEP) -> dict[str, str]:
    return {item.key: item.why for item in merge(context, payload, mode).left}


RUN = context_from_json(CI)
MERGES: list[tuple[str, RunContext, dict[str, Any], ContextMode, dict[str, tuple[Any, str]], dict[str, str]]] = [
    ("scheduled: nothing", RunContext(), {}, KEEP, {}, {}),
    (
        "scheduled: payload only",
        RunContext(),
        {"threads_override": 2},
        KEEP,
        {"threads_override": (2, FROM_PAYLOAD)},
        {},
    ),
    (
        "kept",
        RUN,
        {},
        KEEP,
        {
            "git_branch": ("feature/x", FROM_RUN),
            "git_sha": (SHA, FROM_RUN),
            "github_pull_request_id": (42, FROM_RUN),
            "schema_override": ("dbt_cloud_pr_7_42", FROM_RUN),
            "threads_override": (8, FROM_RUN),
        },
        {},
    ),
    (
        "payload wins key by key",
        RUN,
        {"threads_override": 2, "target_name_override": "prod"},
        KEEP,
        {
            "git_branch": ("feature/x", FROM_RUN),
            "git_sha": (SHA, FROM_RUN),
            "github_pull_request_id": (42, FROM_RUN),
            "schema_override": ("dbt_cloud_pr_7_42", FROM_RUN),
            "target_name_override": ("prod", FROM_PAYLOAD),
            "threads_override": (2, FROM_PAYLOAD),
        },
        {},
    ),
    (
        "null drops a kept key",
        RUN,
        {"git_sha": None, "schema_override": None, "dbt_version_override": None},
        KEEP,
        {
            "git_branch": ("feature/x", FROM_RUN),
            "github_pull_request_id": (42, FROM_RUN),
            "threads_override": (8, FROM_RUN),
        },
        {"git_sha": "`payload` sets it to null", "schema_override": "`payload` sets it to null"},
    ),
    (
        "another branch drops the commit",
        RUN,
        {"git_branch": "main"},
        KEEP,
        {
            "git_branch": ("main", FROM_PAYLOAD),
            "github_pull_request_id": (42, FROM_RUN),
            "schema_override": ("dbt_cloud_pr_7_42", FROM_RUN),
            "threads_override": (8, FROM_RUN),
        },
        {"git_sha": "`payload` names another git_branch"},
    ),
    (
        "the same branch keeps the commit",
        RUN,
        {"git_branch": "feature/x"},
        KEEP,
        {
            "git_branch": ("feature/x", FROM_PAYLOAD),
            "git_sha": (SHA, FROM_RUN),
            "github_pull_request_id": (42, FROM_RUN),
            "schema_override": ("dbt_cloud_pr_7_42", FROM_RUN),
            "threads_override": (8, FROM_RUN),
        },
        {},
    ),
    (
        "job defaults: payload only",
        RUN,
        {"threads_override": 2},
        JOB_DEFAULTS,
        {"threads_override": (2, FROM_PAYLOAD)},
        {
            "git_branch": "`context: job-defaults`",
            "git_sha": "`context: job-defaults`",
            "github_pull_request_id": "`context: job-defaults`",
            "schema_override": "`context: job-defaults`",
        },
    ),
]


@pytest.mark.parametrize(
    ("context", "payload", "mode", "expected_sent", "expected_left"),
    [case[1:] for case in MERGES],
    ids=[case[0] for case in MERGES],
)
def test_merge(
    context: RunContext,
    payload: dict[str, Any],
    mode: ContextMode,
    expected_sent: dict[str, tuple[Any, str]],
    expected_left: dict[str, str],
) -> None:
    assert sent(context, payload, mode) == expected_sent
    assert left(context, payload, mode) == expected_left
    assert merge(context, payload, mode).body == {k: v for k, (v, _) in expected_sent.items()}
    assert None not in merge(context, payload, mode).body.values()


def test_a_field_that_cannot_be_read_stops_a_restart_that_keeps_the_context() -> None:
    context = context_from_json({"cause": "x", "schema_override": 3, "threads_override": 4})
    kept = merge(context, {})
    assert kept.unread == ("schema_override",)
    assert "records schema_override in a form this tool cannot read" in unread_refusal(kept, 100)
    assert merge(context, {"schema_override": "s"}).unread == ()  # payload speaks for it
    assert merge(context, {}, JOB_DEFAULTS).unread == ()
    assert unread_refusal(merge(context, {"schema_override": None}), 100) == ""


def test_a_pinned_commit_is_said_with_how_to_run_the_newest_code() -> None:
    note = sha_note(merge(RUN, {}))
    assert note.startswith("the new run checks out commit 9f1c2ab3e4d5 again") and '{"git_sha": null}' in note
    assert sha_note(merge(RUN, {"git_sha": SHA})) == ""  # the user's own choice: nothing to warn about
    assert sha_note(merge(RUN, {"git_sha": None})) == ""
