"""The relay as its own process, between the local dbt Cloud's webhooks and a local GitHub that can fail.

Deliveries are either crafted and signed here (what the relay does with each kind of body) or sent by the
local dbt Cloud (tests/emulator/webhooks.py) for runs recorded as finished without dbt, which is all a
webhook needs; tests/test_relay_end_to_end.py has the one case with a real dbt run.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from restart.relay import HELP, Config, ConfigError, Dispatcher, Queued, Relay, read_config
from restart.webhook import Filters, parse, sign
from tests.emulator import CANCELLED, ERROR, SUCCESS, LocalDbtCloud
from tests.emulator.webhooks import Duplicates, record_finished_run
from tests.fake_dispatches import Failure, FakeDispatches
from tests.relay_process import ROOT, SECRET, relay_env, running_relay
from tests.test_webhook import TIMED_OUT, delivery

FAST = 2.0  # seconds: "answered at once" on a loaded 2-core machine (dbt allows 10; a relay that waited for
# GitHub would take 1 s or more per failed attempt)


@pytest.fixture
def github() -> Iterator[FakeDispatches]:
    with FakeDispatches() as fake:
        yield fake


def body(event_type: str = "job.run.completed", code: int = 20, event_id: str = "wev_1", **data: Any) -> bytes:
    document = delivery(event_type, code, **data)
    document["eventId"] = event_id
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("unset", "said"),
    [
        ("DBT_CLOUD_WEBHOOK_SECRET", "DBT_CLOUD_WEBHOOK_SECRET is not set"),
        ("GITHUB_TOKEN", "GITHUB_TOKEN is not set"),
        ("GITHUB_REPOSITORY", "GITHUB_REPOSITORY must be owner/name"),
    ],
)
def test_the_relay_refuses_to_start_without_its_settings(github: FakeDispatches, unset: str, said: str) -> None:
    env = relay_env(github, **{unset: ""})
    done = subprocess.run(
        [sys.executable, "-m", "restart", "relay"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and said in done.stderr
    assert SECRET not in done.stderr and github.token not in done.stderr


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("RELAY_JOB_IDS", "7,eight", "RELAY_JOB_IDS must be comma-separated ids"),
        ("PORT", "http", "PORT must be a port number"),
        ("GITHUB_API_URL", "api.github.com", "GITHUB_API_URL must be an http(s) URL"),
        ("DBT_CLOUD_ACCOUNT_ID", "acme", "DBT_CLOUD_ACCOUNT_ID must be digits"),
        ("RELAY_RETRY_SECONDS", "-1", "RELAY_RETRY_SECONDS must be a number"),
    ],
)
def test_a_malformed_setting_is_named(github: FakeDispatches, name: str, value: str, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "restart", "relay"],
        cwd=ROOT,
        env=relay_env(github, **{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr.count("\n")) == (2, 1) and said in done.stderr


def test_only_signed_deliveries_to_the_root_are_taken(github: FakeDispatches) -> None:
    with running_relay(github) as relay:
        signed = body()
        forged = [
            relay.deliver(signed, secret="not-the-secret"),
            relay.deliver(signed, authorization="sha256=" + "0" * 64),
            requests.post(relay.url + "/", data=signed, timeout=10),  # no Authorization at all
        ]
        assert [r.status_code for r in forged] == [401, 401, 401]
        assert relay.deliver(b"not json").status_code == 400  # signed, but not an event
        assert relay.deliver(json.dumps({"eventType": "job.run.completed"}).encode()).status_code == 400
        too_large = b" " * (1024 * 1024 + 1)
        assert relay.deliver(too_large).status_code == 413
        assert requests.get(relay.url + "/", timeout=10).status_code == 405
        assert requests.post(relay.url + "/hooks", data=signed, timeout=10).status_code == 404
        assert requests.put(relay.url + "/", data=signed, timeout=10).status_code == 405
        assert requests.head(relay.url + "/", timeout=10).status_code == 405
        health = requests.get(relay.url + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert SECRET not in health.text and github.token not in health.text
        time.sleep(0.5)
        output = relay.output()
    assert github.attempts == [], "nothing was dispatched"
    assert output.count("refused a delivery") == 4 and output.count("refused a signed delivery") == 2
    assert "a signature that does not match the body" in output and "no Authorization header" in output
    assert "too large" in output


def test_successes_cancellations_and_errored_events_start_nothing(github: FakeDispatches) -> None:
    with running_relay(github) as relay:
        answers = [
            relay.deliver(body("job.run.completed", SUCCESS, "wev_s", runStatusMessage="Succeeded")),
            relay.deliver(body("job.run.completed", CANCELLED, "wev_c", runStatusMessage="Cancelled by user")),
            relay.deliver(body("job.run.completed", CANCELLED, "wev_c2", runStatusMessage="")),
            relay.deliver(body("job.run.errored", ERROR, "wev_e")),
            relay.deliver(body("job.run.started", 3, "wev_r")),
        ]
        assert [(a.status_code, a.json()["result"]) for a in answers] == [(200, "ignored")] * 5
        time.sleep(0.5)
        output = relay.output()
    assert github.attempts == []
    for said in ("the run succeeded", "cancelled, not by its timeout", "waiting for completed", "a run started"):
        assert said in output
    assert output.count("job 7 run 1001") == 5, "one line per event, naming it"


def test_a_failed_run_is_dispatched_once_whatever_is_delivered_again(github: FakeDispatches) -> None:
    with running_relay(github) as relay:
        started = time.monotonic()
        first = relay.deliver(body(event_id="wev_a"))
        assert first.status_code == 202 and time.monotonic() - started < FAST
        again = [
            relay.deliver(body(event_id="wev_a")),  # a redelivery: the same event
            relay.deliver(body(event_id="wev_b")),  # the same run under another event
        ]
        assert [a.status_code for a in again] == [200, 200]
        timed_out = relay.deliver(body(code=CANCELLED, event_id="wev_t", runId="1002", runStatusMessage=TIMED_OUT))
        assert timed_out.status_code == 202
        dispatches = github.wait_for(2, timeout=10)
        time.sleep(0.5)
        output = relay.output()
    assert len(dispatches) == len(github.attempts) == 2
    assert dispatches[0].event_type == "dbt-cloud-run-failed"
    assert dispatches[0].client_payload == {
        "account_id": "42",
        "job_id": "7",
        "run_id": "1001",
        "run_status_code": "20",
        "environment_id": "3",
        "project_id": "1",
        "event_id": "wev_a",
        "event_type": "job.run.completed",
        "job_name": "nightly",
    }
    assert (dispatches[1].client_payload["run_id"], dispatches[1].client_payload["run_status_code"]) == ("1002", "30")
    assert "a redelivery of an event already received" in output and "run 1001 was already dispatched" in output


def test_filters_by_job_environment_and_account(github: FakeDispatches) -> None:
    env = {"RELAY_JOB_IDS": "7, 9", "RELAY_ENVIRONMENT_IDS": "3", "DBT_CLOUD_ACCOUNT_ID": "42"}
    with running_relay(github, **env) as relay:
        assert relay.deliver(body(event_id="wev_1", jobId="8", runId="1")).json()["result"] == "ignored"
        assert relay.deliver(body(event_id="wev_2", environmentId="4", runId="2")).json()["result"] == "ignored"
        other_account = json.loads(body(event_id="wev_3", runId="3"))
        other_account["accountId"] = 43
        assert relay.deliver(json.dumps(other_account).encode()).json()["result"] == "ignored"
        assert relay.deliver(body(event_id="wev_4", jobId="9", runId="4")).status_code == 202
        dispatches = github.wait_for(1, timeout=10)
        time.sleep(0.3)
    assert [d.client_payload["run_id"] for d in dispatches] == ["4"]


def test_github_failing_then_recovering_is_retried_behind_a_fast_answer(github: FakeDispatches) -> None:
    github.fail_next(Failure(503), Failure(500), Failure(429, retry_after="1"))
    with running_relay(github) as relay:
        started = time.monotonic()
        assert relay.deliver(body()).status_code == 202
        answered = time.monotonic() - started
        dispatches = github.wait_for(1, timeout=20)
        relay.wait_for_line("dispatched dbt-cloud-run-failed")
        output = relay.output()
    assert answered < FAST and len(dispatches) == 1
    attempts = github.attempts
    assert len(attempts) == 4
    assert attempts[3] - attempts[2] >= 1.0, "Retry-After was honoured"
    assert output.count("retrying in") == 3 and "dispatched dbt-cloud-run-failed" in output


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (Failure(404), "GITHUB_REPOSITORY is wrong or GITHUB_TOKEN cannot see it"),
        (Failure(422), "client_payload at most 10 keys"),
        (Failure(401), "GITHUB_TOKEN is not a valid token"),
        (Failure(403), "Contents: write"),
    ],
)
def test_a_refusal_from_github_is_said_once_and_not_retried(
    github: FakeDispatches, failure: Failure, cause: str
) -> None:
    github.fail_next(failure)
    with running_relay(github) as relay:
        assert relay.deliver(body()).status_code == 202
        line = relay.wait_for_line("error: not dispatched")
        time.sleep(1.5)  # a retry would have come by now
    assert len(github.attempts) == 1 and github.dispatches == []
    assert cause in line and f"GitHub answered {failure.status}" in line


def test_a_wrong_repository_is_githubs_404(github: FakeDispatches) -> None:
    with running_relay(github, GITHUB_REPOSITORY="acme/other") as relay:
        relay.deliver(body())
        line = relay.wait_for_line("error: not dispatched")
    assert "404" in line and "cannot see it" in line


def test_sigterm_finishes_the_queued_dispatches(github: FakeDispatches) -> None:
    github.fail_next(Failure(None, delay=1.5), Failure(None, delay=1.5))
    with running_relay(github) as relay:
        relay.deliver(body(event_id="wev_1", runId="1"))
        relay.deliver(body(event_id="wev_2", runId="2"))
        relay.process.send_signal(signal.SIGTERM)
        assert relay.process.wait(timeout=20) == 0
    assert [d.client_payload["run_id"] for d in github.dispatches] == ["1", "2"]
    assert "stopped" in relay.output()


@pytest.fixture(scope="module")
def webhook_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as cloud:
        cloud.webhooks.ingestion_gap = 0.2
        cloud.webhooks.time_factor = 0.1  # dbt's 10 s become 1 s, its retry interval 0.2 s
        yield cloud


def test_the_local_dbt_cloud_duplicates_start_one_restart(github: FakeDispatches, webhook_cloud: LocalDbtCloud) -> None:
    hooks = webhook_cloud.webhooks
    job = webhook_cloud.add_job(["dbt build"], name="hourly")
    with running_relay(github) as relay:
        subscription = hooks.subscribe(relay.url + "/", SECRET, ("job.run.completed", "job.run.errored"), (job,))
        try:
            before = len(hooks.attempts)
            modes: tuple[Duplicates, ...] = ("same-id", "new-id")
            for mode in modes:
                hooks.duplicates = mode
                run_id = record_finished_run(webhook_cloud.engine, job, ERROR, "Invoke dbt with `dbt build` failed.")
                hooks.wait_for(before + 4, timeout=10)  # errored and completed, twice each
                before += 4
                dispatches = github.wait_for(2 if mode == "new-id" else 1, timeout=10)
                time.sleep(0.3)
                assert [d.client_payload["run_id"] for d in github.dispatches][-1] == str(run_id)
            for status, message in ((SUCCESS, None), (CANCELLED, None)):
                record_finished_run(webhook_cloud.engine, job, status, message)
            hooks.wait_for(before + 2, timeout=10)  # completed only, once each
            time.sleep(0.5)
        finally:
            hooks.duplicates = "off"
            subscription.active = False
    assert len(github.dispatches) == 2, "one per failed run: duplicates, errored, successes and cancels start nothing"
    assert {a.status for a in hooks.attempts if a.subscription == subscription.id} == {200, 202}
    assert dispatches[0].client_payload["job_name"] == "hourly"


def test_github_down_for_long_never_switches_the_webhook_off(
    github: FakeDispatches, webhook_cloud: LocalDbtCloud
) -> None:
    hooks = webhook_cloud.webhooks
    job = webhook_cloud.add_job(["dbt build"], name="down")
    github.set_down(True)
    with running_relay(github, RELAY_RETRY_SECONDS="30") as relay:
        subscription = hooks.subscribe(relay.url + "/", SECRET, ("job.run.completed",), (job,))
        try:
            runs = [record_finished_run(webhook_cloud.engine, job, ERROR, "failed") for _ in range(6)]
            attempts = [
                a for a in hooks.wait_for(len(hooks.attempts) + 6, timeout=20) if a.subscription == subscription.id
            ]
            relay.wait_for_line("GitHub answered 503", timeout=10)
            assert subscription.active and subscription.consecutive_failures == 0
            assert [a.status for a in attempts] == [202] * 6 and max(a.seconds for a in attempts) < FAST
            github.set_down(False)
            dispatches = github.wait_for(6, timeout=30)
        finally:
            subscription.active = False
    assert sorted(d.client_payload["run_id"] for d in dispatches) == sorted(str(r) for r in runs)


def test_a_full_queue_answers_503_and_lets_the_redelivery_through() -> None:
    config = Config(SECRET, "token", "acme/analytics")
    lines: list[str] = []
    dispatcher = Dispatcher(config, lines.append, lambda event: None)
    dispatcher.queue = queue.Queue(1)  # not started: nothing leaves the queue
    relay = Relay(config, dispatcher, lines.append)

    def receive(event_id: str, run_id: str) -> int:
        signed = body(event_id=event_id, runId=run_id)
        return relay.receive(signed, sign(SECRET, signed), "127.0.0.1").status

    assert receive("wev_1", "1") == 202
    assert receive("wev_2", "2") == 503 and "the dispatch queue is full" in lines[-1]
    dispatcher.queue.get_nowait()
    assert receive("wev_2", "2") == 202, "the refused event was forgotten: dbt's redelivery is taken"
    assert receive("wev_2", "2") == 200


def test_an_event_is_forgotten_before_the_line_saying_it_was_not_dispatched(github: FakeDispatches) -> None:
    """Whoever reads "not dispatched" and redelivers at once must find the event taken again, not a duplicate."""
    config = Config(SECRET, github.token, github.repository, api_url=github.base_url)
    forgotten: list[str] = []
    said: list[tuple[str, list[str]]] = []
    dispatcher = Dispatcher(
        config, lambda line: said.append((line, list(forgotten))), lambda e: forgotten.append(e.event_id)
    )
    github.fail_next(Failure(422))
    assert dispatcher.send(Queued(parse(body()), 0.0)) is False
    [(line, forgotten_by_then)] = said
    assert "error: not dispatched" in line and forgotten_by_then == ["wev_1"]


def test_a_dispatch_given_up_after_the_retry_budget_is_taken_again_on_redelivery(github: FakeDispatches) -> None:
    github.set_down(True)
    with running_relay(github, RELAY_RETRY_SECONDS="2") as relay:
        assert relay.deliver(body()).status_code == 202
        line = relay.wait_for_line("error: not dispatched", timeout=15)
        github.set_down(False)
        assert relay.deliver(body()).status_code == 202, "forgotten: the same event is taken again"
        dispatches = github.wait_for(1, timeout=10)
    assert "RELAY_RETRY_SECONDS (2 s) is spent" in line and "GitHub answered 503" in line
    assert len(dispatches) == 1 and len(github.attempts) >= 3


def test_every_setting_the_relay_reads_is_in_its_help_and_the_readme() -> None:
    source = (ROOT / "restart" / "relay.py").read_text()
    read = set(re.findall(r'env(?:\.get)?\(\s*(?:env,\s*)?"([A-Z_]+)"', source)) | set(
        re.findall(r'_(?:ids|seconds)\(env, "([A-Z_]+)"', source)
    )
    readme = (ROOT / "README.md").read_text().split("## A job scheduled in dbt Cloud itself", 1)[1]
    table = readme.split("| variable | meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    documented = {row.split("`")[1] for row in table.splitlines()}
    helped = set(re.findall(r"^  ([A-Z_]+) ", HELP, re.M))
    assert "GITHUB_TOKEN" in read and "RELAY_JOB_IDS" in read and "RELAY_DRAIN_SECONDS" in read
    assert read == documented == helped


def test_read_config_defaults_and_filters() -> None:
    base = {"DBT_CLOUD_WEBHOOK_SECRET": " s ", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "acme/analytics"}
    config = read_config(base)
    assert (config.secret, config.port, config.api_url) == ("s", 8080, "https://api.github.com")
    assert config.dispatches_url == "https://api.github.com/repos/acme/analytics/dispatches"
    assert config.filters == Filters() and config.backoff.budget == 900 and config.drain_seconds == 8
    assert "secret=" not in repr(config) and "token=" not in repr(config), "a logged config holds no secret"
    config = read_config(
        {
            **base,
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "PORT": "9000",
            "RELAY_JOB_IDS": "7, 9,",
            "RELAY_ENVIRONMENT_IDS": "3",
            "DBT_CLOUD_ACCOUNT_ID": "42",
            "RELAY_RETRY_SECONDS": "60",
        }
    )
    assert config.dispatches_url == "https://ghe.example.com/api/v3/repos/acme/analytics/dispatches"
    assert config.filters == Filters(frozenset({"7", "9"}), frozenset({"3"}), "42")
    assert (config.port, config.backoff.budget) == (9000, 60)
    for bad in ({"GITHUB_REPOSITORY": "acme"}, {"GITHUB_REPOSITORY": "a/b/c"}, {"PORT": "70000"}):
        with pytest.raises(ConfigError):
            read_config({**base, **bad})
