"""The planner against real dbt: a narrowed step reruns exactly what `dbt retry` reruns.

Each case runs one failing command on a copy of tests/dbt_project with faults injected through
DBT_EMULATOR_FAULTS, plans the restart from that step's own artifacts, and compares, node for
node, what `dbt ls` resolves the command we would send to with what `dbt retry` runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.exactness.harness import DbtProject, plan_step, sent_selection

PROJECT = Path(__file__).parent / "dbt_project"
SELECTORS = """\
selectors:
  - name: nightly
    definition:
      union:
        - method: path
          value: models/staging
          children: true
        - exclude:
            - method: fqn
              value: revenue_by_day
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    root = tmp_path_factory.mktemp("exactness") / "shop"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb"))
    (root / "selectors.yml").write_text(SELECTORS, encoding="utf-8")
    project = DbtProject(root)
    project.deps_and_parse()
    first = project.run("dbt build")  # every relation exists before faults are injected
    assert first.success
    return project


CASES = [
    ("dbt build", ["stg_orders"]),
    ("dbt build", ["unique_orders_order_id"]),
    ("dbt build", ["stg_orders.test_basic", "raw_payments"]),
    ("dbt build", ["dim_customers.v1", "shop_utils.calendar"]),
    ("dbt build --select +customers --exclude stg_payments", ["stg_customers"]),
    ("dbt build -s orders+ --indirect-selection cautious", ["orders"]),
    ("dbt build --indirect-selection buildable --select stg_orders+", ["stg_orders"]),
    ("dbt build --selector nightly", ["stg_customers"]),
    ("dbt build --resource-type model --resource-type test", ["stg_orders"]),
    ("dbt --debug build --threads 1 --select staging", ["stg_payments", "test_basic"]),
    ("dbt run", ["stg_orders"]),
    ('dbt run --select staging+ --vars \'{"who": "a b"}\'', ["stg_customers", "calendar"]),
    ("dbt run -m marts", ["shop.calendar", "dim_customers_v2"]),
    ("dbt test", ["unique_customers_customer_id", "test_lifetime_value"]),
    ("dbt test --select stg_orders", ["stg_orders.test_basic"]),
    ("dbt test --select orders --exclude unique_orders_order_id", ["not_null_orders_order_id"]),
    ("dbt seed", ["raw_orders"]),
    ("dbt seed --select raw_payments raw_orders --full-refresh", ["raw_payments"]),
    ("dbt snapshot", ["customers_snapshot"]),
]


@pytest.mark.parametrize(("command", "faults"), CASES, ids=[f"{c} [{','.join(f)}]" for c, f in CASES])
def test_narrowed_step_reruns_what_dbt_retry_reruns(shop: DbtProject, command: str, faults: list[str]) -> None:
    step = shop.run(command, faults)
    assert not step.success, "the injected fault did not make the step fail"
    planned = plan_step(step)
    assert planned.action == "narrow", planned.warning
    assert planned.warning == ""
    retried = shop.retry(step)
    assert retried, "dbt retry found nothing to rerun"
    assert sent_selection(shop, planned) == retried, planned.sent
