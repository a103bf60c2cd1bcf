"""Run the action the way GitHub's runner runs the Docker action (see shared/runner-contract.md).

The image is the Dockerfile carried out on a folder (tests/image.py): its ENV, its files, its ENTRYPOINT.

Every input declared in action.yml becomes `INPUT_<NAME>` (hyphens kept), set to the step's
`with:` value or the input's default ("" when it has none); file commands point at temp files;
the outputs file is read back with a parser as strict as the runner's.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.image import action_image

ROOT = Path(__file__).resolve().parent.parent
FAKE_GITHUB_TOKEN = "ghs_faketoken0123456789"


def action_metadata() -> dict[str, Any]:
    """action.yml, parsed (a copy: the caller may change it)."""
    return copy.deepcopy(_action_metadata())


@functools.cache
def _action_metadata() -> dict[str, Any]:
    """action.yml, parsed once per test process (PyYAML is pure Python: slow under coverage's tracer)."""
    with open(ROOT / "action.yml", encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def inputs(cloud: Any, job_id: int | str, **extra: str) -> dict[str, str]:
    """The `with:` of a step that restarts `job_id` in the local dbt Cloud; `extra` as snake_case names."""
    values = {
        "dbt-cloud-token": cloud.token,
        "account-id": str(cloud.account_id),
        "job-id": str(job_id),
        "dbt-cloud-host": cloud.base_url,
        "poll-interval": "0.3",
    }
    values.update({k.replace("_", "-"): v for k, v in extra.items()})
    return values


def _evaluate_default(value: Any) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"\$\{\{\s*github\.token\s*\}\}", FAKE_GITHUB_TOKEN, text)


class MalformedOutput(AssertionError):
    """GITHUB_OUTPUT holds a record the runner would reject (failing the step)."""


def parse_output_file(text: str) -> dict[str, str]:
    """The runner's reading of GITHUB_OUTPUT: `name=value` or `name<<DELIM` ... `DELIM`."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not name or not delimiter:
                raise MalformedOutput(f"bad heredoc header {line!r}")
            try:
                end = lines.index(delimiter, i + 1)
            except ValueError:
                raise MalformedOutput(f"heredoc for {name!r} never closed with {delimiter!r}") from None
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif equals > 0:
            outputs[line[:equals]] = line[equals + 1 :]
            i += 1
        else:
            raise MalformedOutput(f"line is neither name=value nor a heredoc: {line!r}")
    return outputs


@dataclass
class ActionResult:
    """What a workflow would see of one action step."""

    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def errors(self) -> list[str]:
        return [line for line in self.log.splitlines() if line.startswith("::error")]

    def json_output(self, name: str) -> Any:
        return json.loads(self.outputs[name])


def run_action(
    tmp_path: Path,
    with_: dict[str, str],
    *,
    event: dict[str, Any] | None = None,
    event_name: str = "workflow_dispatch",
    env: dict[str, str] | None = None,
    timeout: float = 600,
    prebuilt: bool = False,
) -> ActionResult:
    """Run the action once with `with_` inputs; returns exit code, log, outputs and summary.

    `prebuilt` runs it as `uses: docker://<image>` does: no action.yml, so only the `with:` keys
    reach the container and no input has a default.
    """
    metadata = action_metadata()
    unknown = set(with_) - set(metadata["inputs"])
    assert not unknown, f"inputs not declared in action.yml: {unknown}"
    files = tmp_path / f"file_commands_{len(list(tmp_path.glob('file_commands_*')))}"
    files.mkdir()
    for name in ("output", "summary", "env", "state"):
        (files / name).write_text("")
    (files / "event.json").write_text(json.dumps(event or {}))
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    image = action_image()
    process_env = {
        **image.env,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_REPOSITORY": "acme/analytics",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(files / "event.json"),
        "GITHUB_SHA": "0" * 40,
        "GITHUB_WORKFLOW": "restart",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(files / "output"),
        "GITHUB_STEP_SUMMARY": str(files / "summary"),
        "GITHUB_ENV": str(files / "env"),
        "GITHUB_STATE": str(files / "state"),
    }
    for name, spec in metadata["inputs"].items():
        if prebuilt and name not in with_:
            continue
        value = with_.get(name, _evaluate_default((spec or {}).get("default")))
        process_env["INPUT_" + name.replace(" ", "_").upper()] = value
    process_env.update(env or {})
    completed = subprocess.run(
        image.entrypoint,
        cwd=workspace,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return ActionResult(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        parse_output_file((files / "output").read_text()),
        (files / "summary").read_text(),
    )
