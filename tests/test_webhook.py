"""The relay's decisions (restart/webhook.py): signature, parsing, verdicts, payload, memory, back-off."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from restart import webhook
from restart.webhook import (
    DISPATCH_EVENT_TYPE,
    Backoff,
    Event,
    Filters,
    Malformed,
    Memory,
    client_payload,
    decide,
    dispatch_body,
    parse,
    retryable,
    sign,
    verify,
)

SECRET = "whsec-local"
TIMED_OUT = "This run timed out after running for 2 minutes, which exceeded the configured timeout of 60 seconds."


def delivery(event_type: str = "job.run.completed", code: Any = 20, **data: Any) -> dict[str, Any]:
    """A body shaped like the documented one (field notes), with overrides in `data`."""
    fields: dict[str, Any] = {
        "jobId": "7",
        "jobName": "nightly",
        "runId": "1001",
        "environmentId": "3",
        "environmentName": "Production",
        "dbtVersion": "2025.9.30+21d3fd7",
        "projectName": "Shop",
        "projectId": "1",
        "runStatus": "Errored",
        "runStatusCode": code,
        "runStatusMessage": "Invoke dbt with `dbt build` failed.",
        "runReason": "Triggered by the scheduler",
        "runStartedAt": "2026-01-31T19:20:00.1Z",
        "runFinishedAt": "2026-01-31T19:28:15.742843678Z",
    }
    fields.update(data)
    return {
        "accountId": 42,
        "webhookId": "wsu_abc",
        "eventId": "wev_1",
        "timestamp": "2026-01-31T19:28:15.742843678Z",
        "eventType": event_type,
        "webhookName": "restart relay",
        "data": fields,
    }


def raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_the_signature_is_the_bare_lowercase_hex_hmac_of_the_raw_body() -> None:
    body = raw(delivery())
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == expected
    assert verify(SECRET, body, expected)
    assert verify(SECRET, body, expected.upper())  # hex is hex, whatever its case
    assert verify(SECRET, body, f"  {expected}\n")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "sha256=" + "0" * 64, "0" * 64, "not hex at all", "é" * 64, "Bearer x"],
)
def test_anything_but_the_signature_does_not_verify(authorization: str | None) -> None:
    body = raw(delivery())
    assert not verify(SECRET, body, authorization)
    if authorization:  # nothing before or after the signature either
        assert not verify(SECRET, body, authorization + sign(SECRET, body))
        assert not verify(SECRET, body, sign(SECRET, body) + authorization)


def test_a_signature_of_another_body_or_secret_does_not_verify() -> None:
    body = raw(delivery())
    reordered = json.dumps(delivery(), sort_keys=True).encode()  # the same JSON, other bytes
    assert not verify(SECRET, reordered, sign(SECRET, body))
    assert not verify("other", body, sign(SECRET, body))
    assert not verify("", body, sign("", body))  # an empty secret never verifies


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr("restart.webhook.hmac.compare_digest", spy)
    body = raw(delivery())
    assert verify(SECRET, body, sign(SECRET, body))
    assert not verify(SECRET, body, "0" * 64)
    assert len(calls) == 2
    tree = ast.parse(Path(webhook.__file__).read_text())
    compared = [n for n in ast.walk(tree) if isinstance(n, ast.Compare) and "sign(" in ast.unparse(n)]
    assert compared == [], "the signature is compared with hmac.compare_digest only"


def test_parse_reads_the_documented_fields() -> None:
    event = parse(raw(delivery(runStatusMessage=TIMED_OUT, code=30)))
    assert event == Event(
        event_id="wev_1",
        event_type="job.run.completed",
        account_id="42",
        job_id="7",
        job_name="nightly",
        run_id="1001",
        environment_id="3",
        project_id="1",
        run_status_code=30,
        run_status_message=TIMED_OUT,
    )
    assert event.timed_out


def with_data(**changes: Any) -> dict[str, Any]:
    document = delivery()
    for key, value in changes.items():
        if value is None:
            document["data"].pop(key)
        else:
            document["data"][key] = value
    return document


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (with_data(jobId=7, runId=1001, environmentId=3, projectId=1), "job 7 run 1001"),  # numbers read too
        (with_data(runStatusCode="20"), "status 20"),  # a digit string is read as the number
        (with_data(jobName=None, runStatusMessage=None, runStatus=None), "job 7 run 1001"),
        ({**delivery(), "accountId": "42", "extra": [1, 2]}, "account 42"),  # unknown keys are ignored
        ({**delivery(), "data": {**delivery()["data"], "runStatus": "Error"}}, "status 20"),  # pre-2026 string
    ],
)
def test_parse_tolerates_odd_but_readable_shapes(document: dict[str, Any], expected: str) -> None:
    event = parse(raw(document))
    said = f"account {event.account_id} job {event.job_id} run {event.run_id} status {event.run_status_code}"
    assert expected in said


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (raw({**delivery(), "eventType": "job.run.paused"}), "eventType"),
        (raw({**delivery(), "eventId": ""}), "eventId"),
        (raw({**delivery(), "data": "x"}), "data is missing"),
        (raw(with_data(runStatusCode=None)), "runStatusCode"),
        (raw(with_data(runStatusCode=True)), "runStatusCode"),
        (raw(with_data(runStatusCode="Errored")), "runStatusCode"),
        (raw(with_data(runId="1001; rm -rf /")), "data.runId"),
        (raw(with_data(jobId=None)), "data.jobId"),
        (raw(with_data(environmentId="٣")), "data.environmentId"),  # a digit, but not an ASCII one
        (raw({**delivery(), "accountId": None}), "accountId"),
    ],
)
def test_parse_refuses_what_it_cannot_decide_on(body: bytes, problem: str) -> None:
    with pytest.raises(Malformed, match=problem):
        parse(body)


NONE = Filters()


@pytest.mark.parametrize(
    ("event_type", "code", "message", "filters", "action", "reason"),
    [
        ("job.run.completed", 20, "failed.", NONE, "dispatch", "the run failed"),
        ("job.run.completed", 30, TIMED_OUT, NONE, "dispatch", "timed out"),
        ("job.run.completed", 30, "", NONE, "ignore", "cancelled"),
        ("job.run.completed", 30, "Cancelled by a user", NONE, "ignore", "cancelled"),
        ("job.run.completed", 10, "Succeeded", NONE, "ignore", "succeeded"),
        ("job.run.completed", 10, "timed out", NONE, "ignore", "succeeded"),  # the words alone decide nothing
        ("job.run.completed", 3, "", NONE, "ignore", "status 3"),
        ("job.run.errored", 20, "failed.", NONE, "ignore", "waiting for completed"),
        ("job.run.started", 3, "", NONE, "ignore", "started"),
        ("job.run.completed", 20, "", Filters(job_ids=frozenset({"7"})), "dispatch", "failed"),
        ("job.run.completed", 20, "", Filters(job_ids=frozenset({"8", "9"})), "ignore", "RELAY_JOB_IDS"),
        ("job.run.completed", 20, "", Filters(environment_ids=frozenset({"3"})), "dispatch", "failed"),
        ("job.run.completed", 20, "", Filters(environment_ids=frozenset({"4"})), "ignore", "RELAY_ENVIRONMENT"),
        ("job.run.completed", 20, "", Filters(account_id="42"), "dispatch", "failed"),
        ("job.run.completed", 20, "", Filters(account_id="43"), "ignore", "account 42"),
    ],
)
def test_decide(event_type: str, code: int, message: str, filters: Filters, action: str, reason: str) -> None:
    event = parse(raw(delivery(event_type, code, runStatusMessage=message)))
    verdict = decide(event, filters)
    assert (verdict.action, reason in verdict.reason) == (action, True), verdict


@pytest.mark.parametrize("status", ["Errored", "Error", "Success", "Canceled", "Cancelled", "anything"])
def test_the_status_string_never_changes_a_verdict(status: str) -> None:
    for code in (10, 20, 30):
        event = parse(raw(with_data(runStatusCode=code, runStatus=status)))
        plain = parse(raw(with_data(runStatusCode=code, runStatus=None)))
        assert decide(event, NONE) == decide(plain, NONE)


def test_the_dispatch_body_follows_the_contract() -> None:
    event = parse(raw(delivery(jobName="n" * 5000)))
    body = dispatch_body(event)
    assert body["event_type"] == DISPATCH_EVENT_TYPE == "dbt-cloud-run-failed"
    payload = body["client_payload"]
    assert set(payload) == {
        "account_id",
        "job_id",
        "run_id",
        "run_status_code",
        "environment_id",
        "project_id",
        "event_id",
        "event_type",
        "job_name",
    }
    assert all(isinstance(value, str) for value in payload.values())
    assert (payload["account_id"], payload["job_id"], payload["run_id"], payload["run_status_code"]) == (
        "42",
        "7",
        "1001",
        "20",
    )
    assert (payload["event_id"], payload["event_type"]) == ("wev_1", "job.run.completed")
    assert len(payload) <= 10 and len(json.dumps(payload)) < 64 * 1024
    assert client_payload(event) == payload


def test_memory_forgets_by_age_and_by_size() -> None:
    memory = Memory(capacity=3, ttl=100.0)
    assert memory.add("a", 0.0) and not memory.add("a", 50.0)
    assert memory.add("a", 100.0), "forgotten once older than the ttl"
    for key in ("b", "c", "d"):
        assert memory.add(key, 101.0)
    assert len(memory) == 3 and memory.add("a", 102.0), "the oldest went first"
    memory.forget("d")
    assert memory.add("d", 103.0)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "elapsed", "expected"),
    [
        (1, None, 0.0, 1.0),
        (2, None, 1.0, 2.0),
        (5, None, 15.0, 16.0),
        (10, None, 100.0, 60.0),  # capped
        (1, 30.0, 0.0, 30.0),  # Retry-After honoured
        (1, 0.0, 0.0, 0.0),
        (3, None, 899.0, None),  # past the budget: give up
        (1, 1000.0, 0.0, None),  # a Retry-After past the budget: give up now
    ],
)
def test_backoff(attempt: int, retry_after: float | None, elapsed: float, expected: float | None) -> None:
    assert Backoff(first=1.0, cap=60.0, budget=900.0).delay(attempt, retry_after, elapsed) == expected


@pytest.mark.parametrize(
    ("status", "rate_limited", "expected"),
    [
        (None, False, True),
        (429, False, True),
        (500, False, True),
        (502, False, True),
        (503, False, True),
        (504, False, True),
        (403, True, True),
        (403, False, False),
        (401, False, False),
        (404, False, False),
        (422, False, False),
        (400, False, False),
    ],
)
def test_what_is_retried(status: int | None, rate_limited: bool, expected: bool) -> None:
    assert retryable(status, rate_limited) is expected


def test_the_decisions_are_pure() -> None:
    tree = ast.parse(Path(webhook.__file__).read_text())
    imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    allowed = {"__future__", "hashlib", "hmac", "json", "re", "collections", "dataclasses", "typing"}
    assert imported <= allowed | {"restart.records"}, "the standard library and the pure run records only"
