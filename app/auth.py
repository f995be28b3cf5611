"""API tokens: configured ones, or one generated into the token file on first start."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from app.settings import Settings

log = logging.getLogger(__name__)


def resolve_tokens(settings: Settings) -> tuple[tuple[str, ...], str | None]:
    """Return the accepted tokens and, when this call generated one, that token.

    Configured tokens (``FACEQ_TOKENS`` / YAML) win; otherwise the token file is read (one
    token per line); otherwise a random token is written there (mode 0600). The service never
    runs without a token.
    """
    if settings.tokens:
        return settings.tokens, None
    path = Path(settings.token_file)
    if path.is_file():
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        tokens = tuple(ln for ln in lines if ln and not ln.startswith("#"))
        if tokens:
            return tokens, None
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    log.info("generated an API token into %s", path)
    return (token,), token


def token_matches(candidate: str, tokens: tuple[str, ...]) -> bool:
    """Constant-time comparison against every accepted token."""
    given = candidate.encode("utf-8", "surrogateescape")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, token.encode("utf-8"))
    return found


def token_from_header(value: str | None) -> str | None:
    """Accept ``Authorization: <token>`` (the original's form) and ``Bearer <token>``."""
    if value is None:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None
