"""Everything one check's run shows: log records, printed output, warnings, exceptions; and the secrets in them.

The kit scans what the plugin produced *before* the host's redaction: the
host masks registered secrets at its own edges (its log handlers, the CLI),
but a log handler of the operator's, a crash report or a traceback printed
by another tool sees the raw text. A secret in any of it is a defect.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import traceback
import warnings
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus

import attrs


@attrs.frozen
class Seen:
    """One piece of text the run produced, and where it came from."""

    where: str
    text: str


class _Handler(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(level=logging.DEBUG)
        self.capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.capture.ignore):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is the plugin's bug, not ours
            text = f"{record.msg!r} % {record.args!r}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.capture.seen.append(Seen(f"log record of {record.name} at {record.levelname}", text))


class Capture:
    """Collect every log record (any level, any logger), stdout, stderr and warning while active.

    ``ignore`` holds logger-name prefixes left out (the sandbox's own server
    runs in this process and logs what a marketplace would keep to itself).
    """

    def __init__(self, ignore: Iterable[str] = ()) -> None:
        self.ignore = tuple(ignore) or ("\0",)
        self.seen: list[Seen] = []
        self.warnings: list[str] = []

    def add_exception(self, where: str, exc: BaseException) -> None:
        """Remember an exception the run saw (message, repr and traceback are all scanned)."""
        text = "".join(traceback.format_exception(exc))
        self.seen.append(Seen(where, f"{exc}\n{exc!r}\n{text}"))

    def add_text(self, where: str, text: str) -> None:
        """Remember a text the run showed (a result message, a report)."""
        self.seen.append(Seen(where, text))

    @contextlib.contextmanager
    def active(self) -> Iterator[Capture]:
        """Capture while inside the block."""
        root = logging.getLogger()
        handler = _Handler(self)
        level = root.level
        out, err = io.StringIO(), io.StringIO()
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            with (
                warnings.catch_warnings(record=True) as caught,
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                warnings.simplefilter("always")
                yield self
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        self.seen.append(Seen("standard output", out.getvalue()))
        self.seen.append(Seen("standard error", err.getvalue()))
        self.warnings.extend(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught)


def forms(secret: str) -> set[str]:
    """The ways a secret shows in text: as is, URL-encoded, base64 (e.g. in a logged Authorization header)."""
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def hint(secret: str) -> str:
    """A secret named without showing it: its first two characters and length."""
    return f"{secret[:2]}… ({len(secret)} characters)"


def leaks(seen: Iterable[Seen], secrets: Iterable[str]) -> list[str]:
    """One line per (source, secret) where a secret (in any of its :func:`forms`) shows."""
    variants = [(s, f) for s in sorted(set(secrets)) if len(s) >= 4 for f in forms(s)]
    found: list[str] = []
    for item in seen:
        for secret, form in variants:
            line = f"{item.where} shows a secret ({hint(secret)})"
            if form in item.text and line not in found:
                found.append(line)
    return found
