"""Settings typed by people: ``--set KEY=VALUE`` values and settings files.

One typer (:func:`coerce`) turns a command-line string into the JSON value
a settings schema node asks for, for a plugin's settings (``stores add
--set partner_id=...``) and the host's own (``stores settings --set
smtp.port=587``) alike; :func:`read_settings_file` reads a JSON settings
file. Every refusal is one :class:`~connector_core.errors.SettingsError`
line that names the key and says what it takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from connector_core.errors import SettingsError
from connector_core.secrets import redact

TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})
NULL = frozenset({"null", "none", ""})
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32


def schema_types(node: Mapping[str, Any]) -> list[str]:
    """The JSON types a schema node allows (from ``type``, else from its ``enum``)."""
    t = node.get("type")
    if t is None and "enum" in node:
        return sorted({type(v).__name__.replace("str", "string").replace("NoneType", "null") for v in node["enum"]})
    if t is None:
        return ["string"]
    return [t] if isinstance(t, str) else list(t)


def _shown(text: str) -> str:
    return repr(redact(text))


def coerce(key: str, node: Mapping[str, Any], text: str) -> Any:
    """Type the command-line string ``text`` after the schema ``node``; ``key`` names it in errors.

    ``null``/``none``/empty is ``None`` where the node allows null; booleans
    take true/false (yes/no, on/off, 1/0); integers and numbers must be
    finite; arrays take ``a,b,c`` (each item typed after ``items``) or a JSON
    array; objects take JSON; an ``enum`` must match one of its values.
    """
    types = schema_types(node)
    low = text.strip().lower()
    if "null" in types and low in NULL:
        return None
    if "array" in types:
        if text.lstrip().startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise SettingsError(f"{key} takes a list: a,b,c or a JSON array, not {_shown(text)}") from None
        items = node.get("items", {}) if isinstance(node.get("items"), Mapping) else {}
        return [coerce(key, items, part.strip()) for part in text.split(",") if part.strip()]
    if "object" in types:
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        if "string" not in types:
            raise SettingsError(f"{key} takes a JSON object, not {_shown(text)}")
    if "boolean" in types:
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        if types == ["boolean"] or "string" not in types:
            raise SettingsError(f"{key} is on/off: use true or false, not {_shown(text)}")
    if "integer" in types:
        try:
            return int(text.strip())
        except ValueError:
            if "number" not in types and "string" not in types:
                raise SettingsError(f"{key} takes a whole number, not {_shown(text)}") from None
    if "number" in types:
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            plain = text.strip()
            if number == number.to_integral_value() and not any(c in plain for c in ".eE"):
                return int(number)
            value = float(number)
            if math.isfinite(value):
                return value
        if "string" not in types:
            raise SettingsError(f"{key} takes a finite number, e.g. 30 or 2.5, not {_shown(text)}")
    if "enum" in node and text not in node["enum"]:
        choices = ", ".join(str(v) for v in node["enum"] if v is not None)
        raise SettingsError(f"{key} must be one of {choices}, not {_shown(text)}")
    return text


def split_assignment(assignment: str, example: str = "key=value") -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``("KEY", "VALUE")``; a one-line error (with ``example``) for anything else."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SettingsError(f"--set takes key=value (e.g. {example}), not {_shown(assignment)}")
    return key, text


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """A JSON object of settings from ``path``; one-line errors for a missing, binary, non-UTF-8 or deep file."""
    where = str(path)
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"cannot read settings from {where}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SettingsError(f"{where} is over {MAX_FILE_BYTES // 1024} KiB: a settings file is a small JSON object")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SettingsError(f"{where} is UTF-16: save it as UTF-8 JSON")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SettingsError(f"{where} is not UTF-8 text: save it as UTF-8 JSON") from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except RecursionError:
        raise SettingsError(f"{where} nests too deeply: a settings file is a flat JSON object") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{where} must hold a JSON object of settings")
    if _depth(loaded) > MAX_DEPTH:
        raise SettingsError(f"{where} nests more than {MAX_DEPTH} levels: a settings file is a flat JSON object")
    return loaded


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def plugin_settings(
    schema: Mapping[str, Any], settings_file: str | None, pairs: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """A plugin's settings from ``--settings FILE.json`` overridden by ``--set KEY=VALUE`` pairs."""
    settings: dict[str, Any] = {} if settings_file is None else read_settings_file(settings_file)
    props = schema.get("properties", {})
    for pair in pairs:
        key, text = split_assignment(pair, "sites=com,it")
        settings[key] = coerce(key, props.get(key, {}) if isinstance(props.get(key), Mapping) else {}, text)
    return settings
