"""GitHub Actions I/O: outputs the runner can always read, escaped workflow commands."""

import io

from hypothesis import given
from hypothesis import strategies as st

from restart import actions
from restart.redaction import redact
from tests.runner import parse_output_file


@given(st.dictionaries(st.from_regex(r"[a-z][a-z-]{0,10}", fullmatch=True), st.text(max_size=80), max_size=5))
def test_outputs_round_trip_through_the_runner_parser(values: dict[str, str]) -> None:
    values = {k: v.replace("\r", "") for k, v in values.items()}
    assert parse_output_file(actions.format_outputs(values)) == values


def test_values_that_look_like_delimiters_are_safe() -> None:
    values = {"steps": '["dbt run"]\nEOF\nghadelimiter_1234\nname<<X', "status": "success"}
    assert parse_output_file(actions.format_outputs(values)) == values


def test_workflow_commands_escape_their_data() -> None:
    out = io.StringIO()
    log = actions.Log(actions=True, stream=out)
    log.error("line one\nline two 100%", title="a: b, c")
    assert out.getvalue() == "::error title=a%3A b%2C c::line one%0Aline two 100%25\n"


def test_remote_text_is_fenced_with_stop_commands() -> None:
    out = io.StringIO()
    log = actions.Log(actions=True, stream=out)
    with log.untrusted():
        log.info("::error::not a real error")
    first, middle, last = out.getvalue().splitlines()
    token = first.removeprefix("::stop-commands::")
    assert len(token) >= 32 and last == f"::{token}::" and middle == "::error::not a real error"


def test_outside_actions_lines_are_plain() -> None:
    out = io.StringIO()
    actions.Log(actions=False, stream=out).error("bad", title="Invalid input")
    assert out.getvalue() == "error: Invalid input: bad\n"


def test_input_names_keep_hyphens() -> None:
    assert actions.input_env_name("job-id") == "INPUT_JOB-ID"
    assert actions.input_env_name("my input") == "INPUT_MY_INPUT"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    from restart.transport import RetryPolicy, retry_after_seconds

    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert RetryPolicy(max_backoff=30).delay(1, 120.0) == 120.0, "Retry-After is honoured beyond the backoff cap"
    assert RetryPolicy(rate_limit_wait=420).delay(1, 900.0) == 420.0
    assert 0.5 <= RetryPolicy(backoff=1).delay(1, None) <= 1.0


def test_an_unexpected_error_is_still_one_line_and_outputs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from restart import cli

    def broken(*args: object) -> object:
        raise KeyError("secret-token-value in a message")

    monkeypatch.setattr(cli, "run_with", broken)
    out = tmp_path / "out"
    out.write_text("")
    env = {"INPUT_DBT-CLOUD-TOKEN": "secret-token-value", "GITHUB_OUTPUT": str(out)}
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    assert cli.main_action(env) == 1
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("::error")]
    assert len(lines) == 1 and "unexpected KeyError" in lines[0] and "secret-token-value" not in lines[0]
    assert parse_output_file(out.read_text())["status"] == "error"


def test_a_secret_is_redacted_but_a_too_short_one_is_left_alone() -> None:
    assert redact("token s3cret-value in the url", "s3cret-value") == "token *** in the url"
    assert redact("abc in abcdef", "abc") == "abc in abcdef"
