"""The action's image without a Docker engine: the Dockerfile carried out on a folder.

The harness understands exactly the instructions the Dockerfile uses and fails on any other, so it
cannot drift from it silently: FROM (this interpreter stands in for the base), ENV (set for the
process), COPY (from the build context as `.dockerignore` filters it, into the folder), RUN pip
install (run with this interpreter's pip and `--no-index`: every locked requirement must already be
installed, as `make venv` installed them from the same lock), RUN python -m compileall (run with this
interpreter on the folder's files) and ENTRYPOINT (exec form; `python` is this interpreter, absolute
paths are the folder's).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Image:
    """A built image: its file system root, its environment and its entrypoint argv."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)

    def path(self, inside: str) -> Path:
        """The host path of `inside`, an absolute path in the image."""
        return self.root / PurePosixPath(inside).relative_to("/")

    def files(self) -> list[str]:
        """Every file in the image, as image paths, sorted."""
        return sorted("/" + p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


def instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


def _pattern(rule: str) -> re.Pattern[str]:
    """A `.dockerignore` rule as a regex over context-relative POSIX paths (Go's filepath.Match plus `**`)."""
    rule = str(PurePosixPath(rule.strip("/")))
    if re.search(r"[\[\\]|\*\*[^/]", rule):
        raise AssertionError(f".dockerignore rule {rule!r}: character classes, escapes and `**x` are not supported")
    out = ""
    for part in re.split(r"(\*\*/?|\*|\?)", rule):
        if part.startswith("**"):
            out += "(?:.*/)?" if part.endswith("/") else ".*"
        elif part == "*":
            out += "[^/]*"
        elif part == "?":
            out += "[^/]"
        else:
            out += re.escape(part)
    return re.compile(out)


def ignored(path: str, rules: list[str]) -> bool:
    """Whether Docker leaves `path` out of the build context: the last rule matching it or a parent wins."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for rule in rules:
        exclude = not rule.startswith("!")
        pattern = _pattern(rule.lstrip("!"))
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            verdict = exclude
    return verdict


def dockerignore(context: Path) -> list[str]:
    """The rules of `context/.dockerignore`, comments and blank lines dropped."""
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]  # a comment: `#` first


def build_context(context: Path) -> list[str]:
    """Every file Docker would send as the build context, as context-relative POSIX paths."""
    rules = dockerignore(context)
    # The literal start of each exception: a folder none of them can reach into is not walked.
    reach = [re.split(r"[*?]", rule[1:].strip("/"), maxsplit=1)[0] for rule in rules if rule.startswith("!")]
    sent = []
    for folder, subfolders, files in os.walk(context):
        base = Path(folder).relative_to(context).as_posix()
        prefix = "" if base == "." else base + "/"
        subfolders[:] = [
            name
            for name in subfolders
            if not ignored(prefix + name, rules)
            or any(r.startswith(prefix + name + "/") or (prefix + name + "/").startswith(r) for r in reach)
        ]
        sent += [prefix + name for name in files if not ignored(prefix + name, rules)]
    return sorted(sent)


def _copy(image: Image, arguments: str, context: Path, sent: list[str]) -> None:
    *sources, destination = shlex.split(arguments)
    if any(s.startswith("--") for s in sources):
        raise AssertionError(f"COPY flags are not supported by the harness: {arguments}")
    if len(sources) > 1 and not destination.endswith("/"):
        raise AssertionError(f"COPY of several sources needs a destination folder ending in /: {arguments}")
    for source in sources:
        source = source.rstrip("/")
        inside = [f for f in sent if f == source or f.startswith(source + "/")]
        if not inside:
            raise AssertionError(f"COPY {source}: not in the build context (.dockerignore?)")
        for relative in inside:
            if relative == source:  # a file: into the folder, or as the destination itself
                name = PurePosixPath(source).name
                target = image.path(destination + name if destination.endswith("/") else destination)
            else:
                target = image.path(destination) / relative[len(source) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / relative, target)


def _on_host(image: Image, argument: str) -> str:
    """An argument of RUN or ENTRYPOINT as it runs here: `python` is this interpreter, an absolute path the folder's."""
    if argument == "python":
        return sys.executable
    return str(image.path(argument)) if argument.startswith("/") else argument


def _run(image: Image, arguments: str) -> None:
    argv = shlex.split(arguments)
    mapped = [_on_host(image, a) for a in argv]
    if argv[:3] == ["python", "-m", "compileall"]:
        command, failure = mapped, "failed"
    elif argv[:2] == ["pip", "install"]:
        command = [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", *mapped[2:]]
        failure = "the test environment lacks what it installs"
    else:
        raise AssertionError(f"only RUN pip install and python -m compileall are supported by the harness: {arguments}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise AssertionError(f"RUN {arguments}: {failure}:\n{done.stdout}{done.stderr}")


def build(context: Path, root: Path) -> Image:
    """Carry out `context/Dockerfile` into the folder `root`."""
    image = Image(root)
    sent = build_context(context)
    for keyword, arguments in instructions((context / "Dockerfile").read_text(encoding="utf-8")):
        if keyword == "FROM":
            continue
        if keyword == "ENV":
            for item in shlex.split(arguments):
                name, equals, value = item.partition("=")
                if not equals:
                    raise AssertionError(f"ENV {arguments}: the NAME value form is not supported (use NAME=value)")
                image.env[name] = value
        elif keyword == "COPY":
            _copy(image, arguments, context, sent)
        elif keyword == "RUN":
            _run(image, arguments)
        elif keyword == "ENTRYPOINT":
            argv = json.loads(arguments)
            image.entrypoint = [_on_host(image, a) for a in argv]
        else:
            raise AssertionError(f"{keyword} is not supported by the harness")
    if not image.entrypoint:
        raise AssertionError("the Dockerfile has no ENTRYPOINT")
    return image


@functools.cache
def action_image() -> Image:
    """The action's image, built once per test process into a temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="dbt-cloud-restart-image-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return build(ROOT, root)
