"""Keeping secrets out of everything a person or a log can read.

Settings fields whose JSON Schema carries ``"x-secret": true`` are secrets.
When a store's settings are loaded their secret values are registered here;
:func:`redact` then replaces every registered value (and its URL-encoded
form) with ``***`` in any text. The host applies it to exception messages,
log records (through :class:`RedactingFilter`), CLI output and JSON output.

Secrets a plugin only learns at run time (an access token bought with the
store's credentials, a session cookie, a signed URL) are registered through
the store's :class:`StoreSecrets` (``store.secrets.add(token)``) and are
redacted the same way from then on, in this process and in the processes it
forks afterwards.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
SECRET_KEYWORD = "x-secret"

_lock = threading.Lock()
_secrets: set[str] = set()
_variants: tuple[str, ...] = ()


def register_secret(value: object) -> None:
    """Remember ``value`` so that :func:`redact` hides it from now on."""
    if not isinstance(value, str) or len(value) < 4:
        return
    global _variants
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        variants = set(_variants)
        variants.update({value, quote(value, safe=""), quote_plus(value)})
        # longest first, so a secret that contains another is masked whole
        _variants = tuple(sorted(variants, key=len, reverse=True))


def is_registered(value: str) -> bool:
    """Whether ``value`` is a registered secret (so :func:`redact` hides it)."""
    return value in _secrets


class StoreSecrets:
    """The run-time secrets of one store: ``store.secrets.add(token)`` has the host redact ``token`` everywhere.

    Registration is for the life of the process (a token that expired is
    still hidden). Values shorter than four characters are ignored: hiding
    them would mangle ordinary text. ``value in store.secrets`` tells whether
    this store registered it.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        """Register ``value`` as a secret of this store; return nothing. Empty or short values are ignored."""
        if isinstance(value, str) and len(value) >= 4:
            self._values.add(value)
            register_secret(value)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<StoreSecrets: {len(self._values)} registered>"


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    variants = _variants
    if not variants or not text:
        return text
    for value in variants:
        if value in text:
            text = text.replace(value, MASK)
    return text


def secret_fields(schema: Mapping[str, Any]) -> list[str]:
    """Top-level property names that the settings schema flags as secret."""
    return [path[0] for path in secret_paths(schema) if len(path) == 1]


def secret_paths(schema: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every property path, at any depth, that the settings schema flags as secret."""
    out: list[tuple[str, ...]] = []
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        return out
    for name, sub in props.items():
        if not isinstance(sub, Mapping):
            continue
        path = (*prefix, name)
        if sub.get(SECRET_KEYWORD):
            out.append(path)
        out.extend(secret_paths(sub, path))
    return out


def _found(doc: Any, path: tuple[str, ...]) -> Iterable[tuple[dict[str, Any], str]]:
    """``(container, key)`` for ``path`` inside ``doc`` when it is there."""
    node = doc
    for part in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return ()
        node = node[part]
    return ((node, path[-1]),) if isinstance(node, dict) and path[-1] in node else ()


def register_settings(schema: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    """Register the secret values of one store's settings (at any depth)."""
    for path in secret_paths(schema):
        for container, key in _found(settings, path):
            register_secret(container[key])


def masked(schema: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``settings`` safe to show: every set secret value (at any depth) becomes ``***``."""
    out = copy.deepcopy(dict(settings))
    for path in secret_paths(schema):
        for container, key in _found(out, path):
            if container[key] not in (None, ""):
                container[key] = MASK
    return out


def redact_obj(value: Any) -> Any:
    """Redact every string inside a JSON-like structure."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _variants:
            message = record.getMessage()
            record.msg = redact(message)
            record.args = None
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(loggers: Iterable[logging.Logger] | None = None) -> None:
    """Attach :class:`RedactingFilter` to the root handlers and the given loggers."""
    flt = RedactingFilter()
    targets = [*(loggers or []), logging.getLogger()]
    for logger in targets:
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(flt)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
