"""The client's HTTP layer with an injected session and clock: retries, rate limits, error wording."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import requests

from restart import trigger
from restart.api import DbtCloud
from restart.transport import RATE_LIMIT_WAIT, ApiError, Unreachable, classify
from tests.factories import Clock

TOKEN = "s3cret-token-value"


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps({"status": {"code": status}, "data": body}).encode()
    answer.headers.update({"Content-Type": "application/json", **(headers or {})})
    return answer


class Session:
    """A `requests.Session` stand-in answering from a script (a response or an exception per call), then
    with `then` to every later request (a rate limit that never lifts); without `then`, a request past
    the script fails the test."""

    def __init__(self, *answers: requests.Response | Exception, then: requests.Response | None = None) -> None:
        self.answers = list(answers)
        self.then = then
        self.headers: dict[str, str] = {}
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append((method, url))
        if self.answers:
            answer = self.answers.pop(0)
        elif self.then is not None:
            answer = self.then
        else:
            raise AssertionError(f"unexpected request past the script: {method} {url}")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass


def client(session: Session, clock: Clock) -> DbtCloud:
    return DbtCloud(
        "https://cloud.example",
        TOKEN,
        1,
        session=session,
        sleep=clock.sleep,
        clock=clock,
    )


RUN = {"id": 70403103922468, "job_definition_id": 5, "status": 10}


def test_a_read_waits_out_a_five_minute_rate_limit_cooldown() -> None:
    clock = Clock()
    session = Session(response(429, headers={"Retry-After": "300"}), response(200, RUN))
    assert client(session, clock).get_run(1).id == RUN["id"]
    assert clock.pauses == [300.0]


def test_a_rate_limit_that_never_lifts_is_waited_for_at_least_six_minutes() -> None:
    clock = Clock()
    session = Session(then=response(429, headers={"Retry-After": "60"}))
    with pytest.raises(ApiError, match=r"rate-limited run 1 \(HTTP 429\) \(still after waiting") as caught:
        client(session, clock).get_run(1)
    assert sum(clock.pauses) >= 360 and sum(clock.pauses) <= RATE_LIMIT_WAIT
    assert caught.value.transient


def test_a_rate_limit_without_retry_after_backs_off_instead_of_hammering() -> None:
    clock = Clock()
    session = Session(then=response(429, headers={"Retry-After": "0"}))
    with pytest.raises(ApiError):
        client(session, clock).get_run(1)
    assert all(pause > 0 for pause in clock.pauses) and sum(clock.pauses) >= 360


def test_the_trigger_is_sent_again_after_429_but_never_after_a_lost_answer() -> None:
    clock = Clock()
    session = Session(response(429, headers={"Retry-After": "300"}), response(200, RUN))
    run, warning = trigger.trigger_run(client(session, clock), 5, {"cause": "x"}, "[marker]")
    assert (run["id"], warning, clock.pauses) == (RUN["id"], "", [300.0])
    assert [method for method, _ in session.sent] == ["POST", "POST"] and not session.answers

    lost = Session(response(502), response(200, [{**RUN, "trigger": {"cause": "x [marker]"}}]))
    run, warning = trigger.trigger_run(client(lost, Clock()), 5, {"cause": "x"}, "[marker]")
    assert [method for method, _ in lost.sent] == ["POST", "GET"] and "adopted run" in warning


def test_401_names_the_token_and_the_host_and_403_allowlist_names_the_runner() -> None:
    invalid = response(401)
    invalid._content = b'{"status": {"user_message": "Invalid token.", "developer_message": null}, "data": null}'
    with pytest.raises(ApiError) as caught:
        client(Session(invalid), Clock()).get_job(5)
    message = str(caught.value)
    assert "dbt-cloud-token" in message and "dbt-cloud-host" in message and "Access URL" in message
    assert TOKEN not in message

    denied = response(403)
    denied._content = (
        b'{"status": {"user_message": "Forbidden: Access denied"}, "data": {"account_access_denied": true}}'
    )
    with pytest.raises(ApiError) as caught:
        client(Session(denied), Clock()).get_job(5)
    assert "IP" in str(caught.value) and "self-hosted runner" in str(caught.value)
    assert "permissions" not in str(caught.value)


def wrapped(inner: BaseException, outer: type[requests.RequestException] = requests.ConnectionError) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer("wrapped") from exc
    except requests.RequestException as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kind", "sent", "permanent"),
    [
        (wrapped(socket.gaierror(socket.EAI_NONAME, "Name or service not known")), "dns", False, True),
        (wrapped(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")), "dns", False, False),
        (wrapped(ConnectionRefusedError(111, "refused")), "refused", False, False),
        (wrapped(ConnectionResetError(104, "reset")), "connection", True, False),
        (requests.exceptions.SSLError("bad certificate"), "tls", False, True),
        (requests.exceptions.ConnectTimeout("slow"), "timeout", False, False),
        (requests.exceptions.ReadTimeout("slow"), "timeout", True, False),
    ],
    ids=["dns-unknown", "dns-temporary", "refused", "reset", "tls", "connect-timeout", "read-timeout"],
)
def test_network_failures_are_classified_by_type(exc: Exception, kind: str, sent: bool, permanent: bool) -> None:
    assert isinstance(exc, requests.RequestException)
    failure = classify(exc)
    assert (failure.kind, failure.sent, failure.permanent) == (kind, sent, permanent)


def test_a_dropped_connection_on_a_read_is_retried_and_a_bad_certificate_is_not() -> None:
    clock = Clock()
    session = Session(wrapped(ConnectionResetError(104, "reset")), response(200, RUN))
    assert client(session, clock).get_run(1).status == 10
    with pytest.raises(Unreachable, match="TLS handshake"):
        client(Session(requests.exceptions.SSLError("x")), clock).get_run(1)


def test_endpoints_answer_with_records_and_leave_out_runs_they_cannot_read() -> None:
    listed = [{**RUN, "trigger": {"cause": "nightly"}, "retrying_run_id": 9}, {"id": "x"}, "not a run", {"status": 3}]
    recent = client(Session(response(200, listed)), Clock()).recent_runs(5)
    assert [(r.id, r.cause, r.retrying_run_id) for r in recent] == [(RUN["id"], "nightly", 9)]


def test_the_runs_retrying_a_run_are_found_by_retrying_run_id_oldest_first() -> None:
    listed = [{"id": 12, "retrying_run_id": "9"}, {"id": 11, "retrying_run_id": 9}, {"id": 10}, {**RUN}]
    found = client(Session(response(200, listed)), Clock()).runs_retrying(5, 9)
    assert [run["id"] for run in found] == [11, 12]
