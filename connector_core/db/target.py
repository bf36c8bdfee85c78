"""Where an order book lives: a file path, or a PostgreSQL URL (``--db`` / ``$CONNECTOR_HOST_DB``).

A URL may carry a password; :func:`mask_url` is what every message, log
line and repr shows instead, so the password never leaves the process.
"""

from __future__ import annotations

import os
import re

_URL_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"^(?P<head>[a-z]+://[^:/@?#]*):(?P<secret>[^@/?#]*)@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)


def is_db_url(target: str | os.PathLike[str] | None) -> bool:
    """Whether ``target`` names a PostgreSQL server rather than an SQLite file."""
    return isinstance(target, str) and target.strip().lower().startswith(_URL_SCHEMES)


def mask_url(url: str) -> str:
    """``url`` with its password (in the userinfo or a ``password=`` parameter) replaced by ``***``."""
    masked = _PASSWORD.sub(lambda m: f"{m.group('head')}:***@", url)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group('key')}***", masked)
