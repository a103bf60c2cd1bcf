"""The local dbt Cloud emulator behaves like dbt Cloud's v2 API, running real dbt on DuckDB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.emulator import CANCELLED, ERROR, QUEUED, RUNNING, SUCCESS, LocalDbtCloud, step_name
from tests.engines import DBT_1_11, ENGINES

SETUP_STEPS = ["Clone git repository", "Create profile from connection DuckDB", "Invoke dbt with `dbt deps`"]
DOWNSTREAM_OF_STG_ORDERS = {
    "model.shop.orders",
    "model.shop.customers",
    "model.shop.calendar",
    "model.shop.dim_customers.v1",
    "model.shop.dim_customers.v2",
    "model.shop.revenue_by_day",
    "model.shop_utils.calendar",
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalDbtCloud]:
    """One emulator for the whole module."""
    with LocalDbtCloud() as emulator:
        yield emulator


class Client:
    """A tiny v2 client for the tests."""

    def __init__(self, cloud: LocalDbtCloud, token: str | None = None) -> None:
        self.prefix = f"{cloud.base_url}/api/v2/accounts/{cloud.account_id}"
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.prefix + path, params=params, timeout=30)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.session.post(self.prefix + path, json=body, timeout=30)


@pytest.fixture(scope="module")
def api(cloud: LocalDbtCloud) -> Client:
    """An authenticated client."""
    return Client(cloud, cloud.token)


def wait_for_status(cloud: LocalDbtCloud, run_id: int, status: int, timeout: float = 60) -> dict[str, Any]:
    """Poll until the run reaches `status`."""
    deadline = time.monotonic() + timeout
    while (run := cloud.run(run_id))["status"] != status:
        assert time.monotonic() < deadline, f"run {run_id} stuck at {run['status_humanized']}"
        time.sleep(0.05)
    return run


def test_fault_in_a_model_errors_it_and_skips_its_descendants_then_a_narrowed_run_recovers(
    cloud: LocalDbtCloud, api: Client
) -> None:
    job = cloud.add_job(["dbt build"], name="fault")
    cloud.set_faults(["stg_orders"])
    triggered = api.post(f"/jobs/{job}/run/", {"cause": "test"})
    assert triggered.status_code == 200
    assert triggered.json()["data"]["status"] == QUEUED
    assert triggered.json()["data"]["trigger"]["cause"] == "test"

    run = cloud.wait(triggered.json()["data"]["id"])
    assert run["status"] == ERROR and run["is_error"] and run["is_complete"]
    assert [step["name"] for step in run["run_steps"]] == [*SETUP_STEPS, "Invoke dbt with `dbt build`"]
    assert [step["status"] for step in run["run_steps"]] == [SUCCESS, SUCCESS, SUCCESS, ERROR]
    assert run["can_retry"] and run["retry_not_supported_reason"] is None
    assert run["dbt_version"] == ENGINES[DBT_1_11].version  # an environment runs dbt 1.11 unless switched

    artifact = api.get(f"/runs/{run['id']}/artifacts/run_results.json", step=4)
    assert artifact.headers["Content-Type"] == "application/json"
    statuses = {result["unique_id"]: result["status"] for result in artifact.json()["results"]}
    assert statuses["model.shop.stg_orders"] == "error"
    assert {statuses[node] for node in DOWNSTREAM_OF_STG_ORDERS} == {"skipped"}
    others = {node: status for node, status in statuses.items() if node.split(".")[1:3] != ["shop", "stg_orders"]}
    assert set(others.values()) == {"success", "pass", "skipped"}
    assert statuses["model.shop.stg_customers"] == "success"
    missing = api.get(f"/runs/{run['id']}/artifacts/run_results.json", step=3)
    assert missing.status_code == 404  # as recorded: a bare 404, no JSON envelope
    assert missing.headers["Content-Type"].startswith("text/html") and b'"status"' not in missing.content
    assert api.get(f"/runs/{run['id']}/retry/").json()["data"] == {"failed_step": "dbt build", "skipped_steps": []}

    cloud.set_faults([])
    narrowed = cloud.trigger(job, "restart", steps_override=["dbt build --select stg_orders+"])
    recovered = cloud.wait(narrowed)
    assert recovered["status"] == SUCCESS, recovered["status_message"]
    assert recovered["run_steps"][-1]["name"] == "Invoke dbt with `dbt build --select stg_orders+`"
    built = cloud.executed_nodes(narrowed)[4]
    assert built.keys() >= DOWNSTREAM_OF_STG_ORDERS and "model.shop.stg_customers" not in built
    assert cloud.run(run["id"])["retry_not_supported_reason"] == "RETRY_NOT_LATEST_RUN"


def test_rerun_from_failure_runs_dbt_retry_then_the_steps_that_never_ran(cloud: LocalDbtCloud, api: Client) -> None:
    job = cloud.add_job(["dbt build --select +customers", "dbt test --select customers"], name="rerun")
    cloud.set_faults(["customers"])
    failed = cloud.wait(cloud.trigger(job))
    assert failed["status"] == ERROR
    assert failed["run_steps"][-1]["name"] == step_name("dbt build --select +customers")

    cloud.set_faults([])
    rerun = api.post(f"/jobs/{job}/rerun/").json()["data"]
    assert rerun["trigger"]["cause_category"] == "rerun"
    assert rerun["retrying_run_id"] == failed["id"]
    done = cloud.wait(rerun["id"])
    assert done["status"] == SUCCESS, done["status_message"]
    assert [step["name"] for step in done["run_steps"][3:]] == [
        "Invoke dbt with `dbt retry`",
        "Invoke dbt with `dbt test --select customers`",
    ]
    retried = cloud.executed_nodes(done["id"])[4]
    assert retried["model.shop.customers"] == "success"
    assert "model.shop.orders" not in retried and "seed.shop.raw_orders" not in retried


def test_a_faulted_data_test_fails_rather_than_errors(cloud: LocalDbtCloud) -> None:
    job = cloud.add_job(["dbt build --select +customers"], name="tests", environment_id=2)
    cloud.set_faults(["not_null_customers_customer_id"])
    run = cloud.wait(cloud.trigger(job))
    cloud.set_faults([])
    assert run["status"] == ERROR
    statuses = cloud.executed_nodes(run["id"])[4]
    failed = {node.split(".")[2]: status for node, status in statuses.items() if status not in ("success", "pass")}
    assert failed == {"not_null_customers_customer_id": "fail"}


def test_hidden_project_files_are_left_out_of_later_runs_only(cloud: LocalDbtCloud) -> None:
    job = cloud.add_job(["dbt run --select greeting revenue_by_day"], name="hidden", environment_id=5)
    workspace = cloud.root / "environments" / "5" / "workspace" / "project"
    cloud.hide_files(["models/marts/finance"])
    try:
        run = cloud.wait(cloud.trigger(job))
    finally:
        cloud.hide_files([])
    assert run["status"] == SUCCESS, "dbt only warns when a selector matches nothing"
    assert set(cloud.executed_nodes(run["id"])[4]) == {"model.shop.greeting"}
    assert "does not match any enabled nodes" in run["run_steps"][3]["logs"]
    assert not (workspace / "models" / "marts" / "finance").exists()
    later = cloud.wait(cloud.trigger(cloud.add_job(["dbt run --select greeting"], environment_id=5)))
    assert later["status"] == SUCCESS and (workspace / "models" / "marts" / "finance" / "revenue_by_day.sql").is_file()
    with pytest.raises(ValueError, match="not a path"):
        cloud.hide_files(["models/nope.sql"])


def test_requests_without_a_valid_token_are_refused(cloud: LocalDbtCloud, api: Client) -> None:
    anonymous = Client(cloud)
    refused = anonymous.get("/runs/")
    assert refused.status_code == 401
    assert refused.json()["status"] == {
        "code": 401,
        "is_success": False,
        "user_message": "Invalid token.",
        "developer_message": None,  # as recorded: null on 401/403
    }
    assert Client(cloud, "wrong").get("/runs/").status_code == 401
    bearer = requests.get(f"{api.prefix}/runs/", headers={"Authorization": f"Bearer {cloud.token}"}, timeout=30)
    assert bearer.status_code == 200
    assert all("Authorization" not in str(request) for request in cloud.requests)


def test_unknown_resources_answer_404_envelopes(cloud: LocalDbtCloud, api: Client) -> None:
    for response in (
        api.get("/runs/424242/"),
        api.get("/jobs/424242/"),
        api.get("/nothing-here/"),
        requests.get(f"{cloud.base_url}/api/v2/accounts/999/runs/", headers=api.session.headers, timeout=30),
    ):
        assert response.status_code == 404
        assert response.json()["status"]["user_message"] == "The requested resource was not found."


def test_invalid_trigger_bodies_answer_400_and_start_nothing(cloud: LocalDbtCloud, api: Client) -> None:
    job = cloud.add_job(["dbt build"], name="invalid")
    before = len(cloud.engine.runs)
    missing = api.post(f"/jobs/{job}/run/", {})
    assert missing.status_code == 400
    assert missing.json()["data"] == {"cause": ["This field is required."]}
    assert api.post(f"/jobs/{job}/run/", {"cause": "x", "steps_override": ["build"]}).status_code == 400
    assert api.post(f"/jobs/{job}/run/", {"cause": "x", "steps_override": [""]}).status_code == 400
    assert api.post(f"/jobs/{job}/run/", {"cause": "x", "threads_override": "4"}).status_code == 400
    malformed = api.session.post(
        f"{api.prefix}/jobs/{job}/run/",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert malformed.status_code == 400
    assert len(cloud.engine.runs) == before


def test_cancelling_a_running_run_stops_it(cloud: LocalDbtCloud, api: Client) -> None:
    job = cloud.add_job(["dbt build"], name="slow", environment_id=4)
    cloud.set_step_delay(60)
    try:
        run_id = cloud.trigger(job)
        running = wait_for_status(cloud, run_id, RUNNING)
        assert running["in_progress"] and running["is_running"]
        cancelled = api.post(f"/runs/{run_id}/cancel/").json()["data"]
    finally:
        cloud.set_step_delay(0)
    assert cancelled["status"] == CANCELLED and cancelled["is_cancelled"]
    run = cloud.wait(run_id, timeout=30)
    assert run["status"] == CANCELLED
    assert run["run_steps"][-1]["status"] == CANCELLED
    assert api.post(f"/runs/{run_id}/cancel/").json()["data"]["finished_at"] == run["finished_at"]


@pytest.mark.parametrize("step_status", [ERROR, CANCELLED], ids=["step-error", "step-cancelled"])
def test_a_job_timeout_cancels_the_run_saying_it_timed_out(cloud: LocalDbtCloud, step_status: int) -> None:
    job = cloud.add_job(["dbt seed", "dbt run"], name="timeout", environment_id=4, timeout_seconds=2)
    cloud.set_step_delay(30)
    cloud.engine.timed_out_step_status = step_status
    try:
        run = cloud.wait(cloud.trigger(job), timeout=30)
    finally:
        cloud.set_step_delay(0)
        cloud.engine.timed_out_step_status = ERROR
    assert run["status"] == CANCELLED and run["is_cancelled"]
    assert run["status_message"].startswith("This run timed out after running for ")
    assert "exceeded the configured timeout of 2 seconds" in run["status_message"]
    assert run["run_steps"][-1]["name"] == step_name("dbt seed")
    assert run["run_steps"][-1]["status"] == step_status
    assert run["retry_not_supported_reason"] == "RETRY_NOT_FAILED_RUN"


def test_lint_and_compare_steps_and_unreached_steps_listed_as_skipped(cloud: LocalDbtCloud, api: Client) -> None:
    job = cloud.add_job(
        ["dbt seed --select raw_orders", "dbt run --select greeting"],
        name="lint",
        environment_id=6,
        run_lint=True,
        run_compare_changes=True,
    )
    assert api.get(f"/jobs/{job}/").json()["data"]["run_lint"] is True
    cloud.engine.skipped_step_status = QUEUED
    cloud.set_faults(["raw_orders"])
    try:
        failed = cloud.wait(cloud.trigger(job))
    finally:
        cloud.set_faults([])
        cloud.engine.skipped_step_status = None
    steps = [(step["name"], step["status_humanized"]) for step in failed["run_steps"][3:]]
    assert steps == [
        ("Invoke dbt with `dbt sqlfluff lint`", "Success"),
        ("Invoke dbt with `dbt seed --select raw_orders`", "Error"),
        ("Invoke dbt with `dbt run --select greeting`", "Skipped"),
    ]
    assert api.get(f"/runs/{failed['id']}/artifacts/run_results.json", step=6).status_code == 404
    assert api.get(f"/runs/{failed['id']}/retry/").json()["data"] == {
        "failed_step": "dbt seed --select raw_orders",
        "skipped_steps": ["dbt run --select greeting"],
    }
    passed = cloud.wait(cloud.trigger(job))
    assert [step["name"] for step in passed["run_steps"][3:]] == [
        "Invoke dbt with `dbt sqlfluff lint`",
        "Invoke dbt with `dbt seed --select raw_orders`",
        "Invoke dbt with `dbt run --select greeting`",
        "Invoke dbt with `dbt compare --select state:modified`",
    ]


def test_a_cell_host_rejects_its_token_elsewhere_and_an_allowlist_refuses_other_addresses(
    cloud: LocalDbtCloud, api: Client
) -> None:
    cloud.api.cell_host = "localhost"
    try:
        wrong = api.get("/runs/")
        right = requests.get(
            api.prefix.replace("127.0.0.1", "localhost") + "/runs/", headers=api.session.headers, timeout=30
        )
    finally:
        cloud.api.cell_host = None
    assert wrong.status_code == 401 and wrong.json()["status"]["user_message"] == "Invalid token."
    assert wrong.json()["status"]["developer_message"] is None
    assert right.status_code == 200
    cloud.api.allowed_ips = ["203.0.113.7"]
    try:
        denied = api.get("/runs/")
    finally:
        cloud.api.allowed_ips = None
    assert denied.status_code == 403
    assert denied.json()["status"]["user_message"] == "Forbidden: Access denied"
    assert denied.json()["data"] == {"account_access_denied": True}


def test_rate_limits_answer_429_with_a_long_retry_after(cloud: LocalDbtCloud, api: Client) -> None:
    cloud.rate_limit("GET", r"/runs/$", times=2, retry_after=300)
    try:
        answers = [api.get("/runs/") for _ in range(3)]
    finally:
        cloud.clear_http_faults()
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "300"
    assert answers[0].json()["status"]["user_message"] == "Too many requests."


def test_run_ids_can_have_fourteen_digits() -> None:
    with LocalDbtCloud(first_run_id=70403103922468) as long_ids:
        job = long_ids.add_job(["dbt seed"], name="ids")
        long_ids.set_step_delay(60)
        run_id = long_ids.trigger(job)
        client = Client(long_ids, long_ids.token)
        found = client.get(f"/runs/{run_id}/").json()["data"]
        client.post(f"/runs/{run_id}/cancel/")
    assert run_id == 70403103922468 and len(str(found["id"])) == 14


def test_runs_list_filters_orders_and_paginates(cloud: LocalDbtCloud, api: Client) -> None:
    job = cloud.add_job(['dbt run --select greeting --vars \'{"who": "a b"}\''], name="list", environment_id=3)
    ok = cloud.trigger(job)
    bad = cloud.trigger(job, steps_override=["dbt run-operation no_such_macro"])
    queued = cloud.trigger(job)
    assert cloud.run(queued)["status"] == QUEUED
    api.post(f"/runs/{queued}/cancel/")
    cloud.wait(bad)
    assert cloud.run(ok)["status"] == SUCCESS
    assert cloud.query("select greeting from greeting", environment_id=3) == [("hello, a b",)]

    def ids(**params: Any) -> list[int]:
        body = api.get("/runs/", job_definition_id=job, **params).json()
        assert body["extra"]["pagination"]["count"] == len(body["data"])
        return [run["id"] for run in body["data"]]

    assert ids() == [ok, bad, queued]
    assert ids(order_by="-id") == [queued, bad, ok]
    assert ids(status=SUCCESS) == [ok]
    assert ids(status__in="[10,20]") == [ok, bad]
    assert ids(status__in="20,30") == [bad, queued]
    assert ids(status__in=["10", "30"]) == [ok, queued]
    assert ids(order_by="-id", limit=1, offset=1) == [bad]
    page = api.get("/runs/", job_definition_id=job, limit=1).json()
    assert page["extra"]["pagination"] == {"count": 1, "total_count": 3}
    assert page["data"][0]["trigger"] is None and page["data"][0]["run_steps"] == []
    related = api.get(f"/runs/{ok}/", include_related='["trigger","job","run_steps"]').json()["data"]
    assert related["trigger"]["id"] and related["job"]["id"] == job and len(related["run_steps"]) == 4
    assert api.get(f"/runs/{ok}/", include_related="trigger").json()["data"]["job"] is None
    assert api.get("/runs/", limit=101).status_code == 400


def test_jobs_with_sources_and_docs_add_their_steps_around_the_commands(cloud: LocalDbtCloud) -> None:
    job = cloud.add_job(
        ["dbt seed --select raw_orders"], name="docs", environment_id=5, generate_docs=True, run_generate_sources=True
    )
    run = cloud.wait(cloud.trigger(job))
    assert [step["name"] for step in run["run_steps"]] == [
        *SETUP_STEPS,
        "Invoke dbt with `dbt source freshness`",
        "Invoke dbt with `dbt seed --select raw_orders`",
        "Invoke dbt with `dbt docs generate`",
    ]
    assert run["run_steps"][3]["status"] == ERROR  # the source's table does not exist yet
    assert run["status"] == SUCCESS and run["has_docs_generated"]
    assert cloud.artifact(run["id"], 6, "catalog.json") is not None


def test_the_field_notes_switches_can_be_set_from_outside(cloud: LocalDbtCloud) -> None:
    url = f"{cloud.base_url}/_emulator/switches"
    answer = requests.post(url, json={"cell_host": "localhost", "skipped_step_status": QUEUED}, timeout=30)
    try:
        assert answer.json()["data"]["cell_host"] == "localhost"
        assert (cloud.api.cell_host, cloud.engine.skipped_step_status) == ("localhost", QUEUED)
    finally:
        requests.post(url, json={"cell_host": None, "skipped_step_status": None}, timeout=30)
    assert (cloud.api.cell_host, cloud.engine.skipped_step_status) == (None, None)
