"""Pin the Dockerfile's base image to a digest, keeping its tag in the comment above the FROM line.

    python scripts/pin_base.py sha256:<64 hex> [--note "one line, no brackets"]
    python scripts/pin_base.py --check     # exit 1 unless the FROM line is pinned and labelled

`make pin-base` asks the registry for the digest of the tag's multi-platform index and calls this.
The Dockerfile keeps exactly one base, written as:

    # base-tag: python:3.12-slim (<note>)
    FROM python:3.12-slim@sha256:<digest>
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
FROM = re.compile(r"^FROM (?P<tag>[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+)(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
NOTE = "multi-platform index; moved by Dependabot or make pin-base"
LABEL = re.compile(r"^# base-tag: (?P<tag>\S+)(?: \((?P<note>[^)]*)\))?$")


def base(lines: list[str]) -> tuple[int, re.Match[str]]:
    """The index and match of the single FROM line; exits when there is not exactly one."""
    found = [(i, FROM.match(line)) for i, line in enumerate(lines) if line.startswith("FROM ")]
    if len(found) != 1 or found[0][1] is None:
        raise SystemExit("the Dockerfile must have one FROM line of the form FROM <image>:<tag>[@sha256:...]")
    return found[0][0], found[0][1]


def pin(text: str, digest: str, note: str = NOTE) -> str:
    """`text` with its FROM line pinned to `digest` and the tag label above it rewritten."""
    if not DIGEST.match(digest):
        raise SystemExit(f"not an image digest: {digest!r} (expected sha256: and 64 hex digits)")
    if not note or any(c in note for c in "()\n\r"):
        raise SystemExit(f"the note must be one line without brackets, got {note!r}")
    lines = text.splitlines()
    index, match = base(lines)
    tag = match["tag"]
    lines[index] = f"FROM {tag}@{digest}"
    label = f"# base-tag: {tag} ({note})"
    if index > 0 and LABEL.match(lines[index - 1]):
        lines[index - 1] = label
    else:
        lines.insert(index, label)
    return "\n".join(lines) + "\n"


def problems(text: str) -> list[str]:
    """What keeps `text` from being a Dockerfile pinned the way this script pins it."""
    lines = text.splitlines()
    index, match = base(lines)
    found = []
    if not match["digest"]:
        found.append(f"{lines[index]!r} is not pinned by digest (run make pin-base)")
    label = LABEL.match(lines[index - 1]) if index > 0 else None
    if label is None:
        found.append("no '# base-tag: <image>:<tag> (...)' comment directly above the FROM line")
    elif label["tag"] != match["tag"]:
        found.append(f"the base-tag comment names {label['tag']}, the FROM line {match['tag']}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("digest", nargs="?", help="sha256:... of the tag's multi-platform index")
    parser.add_argument("--note", default=NOTE, help="the comment's note in brackets (one line, no brackets)")
    parser.add_argument("--check", action="store_true", help="only check the Dockerfile")
    parser.add_argument("--dockerfile", type=Path, default=DOCKERFILE)
    args = parser.parse_args(argv)
    text = args.dockerfile.read_text(encoding="utf-8")
    if args.check:
        found = problems(text)
        for problem in found:
            print(f"{args.dockerfile}: {problem}", file=sys.stderr)
        return 1 if found else 0
    if not args.digest:
        parser.error("give the digest, or --check")
    args.dockerfile.write_text(pin(text, args.digest, args.note), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
