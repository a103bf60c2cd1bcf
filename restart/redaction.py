"""Secrets kept out of every message: one rule, used by the HTTP layer and the executor alike. Pure."""

from __future__ import annotations


def redact(text: str, secret: str) -> str:
    """`text` with `secret` replaced by `***` (a secret too short to be a real token is left alone)."""
    return text.replace(secret, "***") if len(secret) >= 6 else text
