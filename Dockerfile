# The action's image: CPython 3.12 and the hash-locked runtime dependencies, nothing else.
# Base: python:3.12-slim. Pin it to a digest with `make pin-base` (README, "Docker image"); the tag stays
# readable in the FROM line as `python:3.12-slim@sha256:...`.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Every file pip installs is checked against requirements.lock (scripts/lock_requirements.py).
COPY requirements.lock /app/requirements.lock
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /app/requirements.lock

COPY entrypoint.py /app/entrypoint.py
COPY restart /app/restart

# No USER: the runner mounts its file-command files (GITHUB_OUTPUT, ...) writable by root only.
ENTRYPOINT ["python", "/app/entrypoint.py"]
