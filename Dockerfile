# The action's image: CPython 3.12 and the hash-locked runtime dependencies, nothing else.
# Base: python:3.12-slim, pinned to the digest of its multi-platform index (amd64, arm64, ...);
# Docker pulls by the digest, the tag is for readers. `make pin-base` moves the pin (docs/maintaining.md).
# base-tag: python:3.12-slim (multi-platform index; moved by Dependabot or make pin-base)
FROM python:3.12-slim@sha256:7a8b475003c4fe15a2cd4e55e5cfc2f3560bdc9333d624f24cdd6d4340fd7a17

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Every file pip installs is checked against requirements.lock (scripts/lock_requirements.py).
COPY requirements.lock /app/requirements.lock
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /app/requirements.lock

COPY entrypoint.py /app/entrypoint.py
COPY restart /app/restart
# Compiled here, once: PYTHONDONTWRITEBYTECODE (the container is thrown away) would otherwise have every
# run compile the whole package again before its first request (about 0.25 s of CPU). Unchecked: the
# image's files never change.
RUN python -m compileall -q --invalidation-mode unchecked-hash /app/restart

# No USER: the runner mounts its file-command files (GITHUB_OUTPUT, ...) writable by root only.
ENTRYPOINT ["python", "/app/entrypoint.py"]
