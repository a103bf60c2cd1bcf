"""Input validation: every bad input is named in one line before any API call."""

import pytest

from restart import settings

GOOD = {"dbt-cloud-token": "tok", "account-id": "1", "job-id": "2"}


def parse(**changes: str) -> settings.Settings:
    return settings.parse({**GOOD, **{k.replace("_", "-"): v for k, v in changes.items()}})


def test_defaults() -> None:
    config = parse()
    assert config.base_url == "https://cloud.getdbt.com"
    assert (config.run_id, config.strategy, config.if_previous_succeeded) == (None, "select", "skip")
    assert (config.wait, config.poll_interval, config.timeout, config.dry_run) == (True, 10.0, 3600.0, False)
    assert "tok" not in repr(config)
    assert config.verify == "fail" and parse(verify="WARN").verify == "warn"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("emea.dbt.com", "https://emea.dbt.com"),
        ("https://ab123.us1.dbt.com", "https://ab123.us1.dbt.com"),
        ("https://ab123.us1.dbt.com/", "https://ab123.us1.dbt.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:1", "http://localhost:1"),
        ("http://[::1]:9", "http://[::1]:9"),
        ("custom.example.com:8443", "https://custom.example.com:8443"),
    ],
)
def test_hosts(host: str, url: str) -> None:
    assert parse(dbt_cloud_host=host).base_url == url


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("dbt-cloud-token", "", "`dbt-cloud-token` is required"),
        ("account-id", "", "`account-id` is required"),
        ("account-id", "abc", "`account-id` must be a positive integer"),
        ("job-id", "0", "`job-id` must be a positive integer"),
        ("job-id", "-3", "`job-id` must be a positive integer"),
        ("run-id", "1.5", "`run-id` must be a positive integer"),
        ("dbt-cloud-host", "http://cloud.getdbt.com", "must use https://"),
        ("dbt-cloud-host", "ftp://x.com", "scheme 'ftp'"),
        ("dbt-cloud-host", "https://x.com/api/v2", "no path"),
        ("dbt-cloud-host", "bad host!", "not a valid host name"),
        ("strategy", "fast", "`strategy` must be one of select, native"),
        ("verify", "strict", "`verify` must be one of fail, warn, off"),
        ("if-previous-succeeded", "maybe", "must be one of skip, run, fail"),
        ("wait", "sometimes", "`wait` must be `true` or `false`"),
        ("poll-interval", "soon", "`poll-interval` must be a number"),
        ("poll-interval", "0", "must be a positive number"),
        ("timeout", "-1", "`timeout` must be a positive number"),
        ("timeout", "nan", "must be a positive number"),
        ("payload", "{", "`payload` is not valid JSON"),
        ("payload", "[1]", "must be a JSON object"),
        ("payload", '{"threads_override": "8"}', "field `threads_override` is invalid"),
        ("payload", '{"nope": 1}', "unknown field"),
        ("payload", '{"steps_override": ["dbt run"]}', "must not set `steps_override`"),
        ("payload", '{"cause": "x"}', "must not set `cause`"),
        ("cause", "x" * 168, "at most 167 characters"),
    ],
)
def test_bad_inputs_name_the_input(name: str, value: str, message: str) -> None:
    with pytest.raises(settings.InputError, match=message.replace("(", r"\(").replace("$", r"\$")) as caught:
        settings.parse({**GOOD, name: value})
    assert caught.value.name == name
    assert "\n" not in str(caught.value)


def test_payload_fields_pass_through() -> None:
    config = parse(payload='{"git_branch": "hotfix", "threads_override": 8, "generate_docs_override": false}')
    assert config.payload == {"git_branch": "hotfix", "threads_override": 8, "generate_docs_override": False}


def test_context_keeps_the_failed_runs_by_default_and_null_drops_a_field() -> None:
    assert parse().context == "keep"
    assert parse(context="Job-Defaults").context == "job-defaults"
    with pytest.raises(settings.InputError, match="`context` must be one of keep, job-defaults"):
        parse(context="fresh")
    assert parse(payload='{"git_sha": null, "threads_override": null}').payload == {
        "git_sha": None,
        "threads_override": None,
    }


def test_decimal_poll_interval() -> None:
    assert parse(poll_interval="0.25").poll_interval == 0.25


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cause", "nightly fix"),
        ("payload", '{"threads_override": 8}'),
        ("restart-on", "transient"),
        ("transient-patterns", "timeout"),
        ("rebuild", "with-test-parents"),
        ("context", "job-defaults"),
    ],
)
def test_native_strategy_refuses_what_dbt_clouds_rerun_would_ignore(name: str, value: str) -> None:
    with pytest.raises(settings.InputError, match="does not apply to strategy `native`") as caught:
        settings.parse({**GOOD, "strategy": "native", name: value})
    assert caught.value.name == name
    native = settings.parse({**GOOD, "strategy": "native", "delay": "5"})  # delay applies to both strategies
    assert native.strategy == "native" and native.delay == 5
