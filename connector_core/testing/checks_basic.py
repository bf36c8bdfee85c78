"""Contract checks: the plugin describes itself, connects, fetches and maps, rejects orders with no address,
maps statuses."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT202012

from connector_core.errors import AuthError, MappingError, PayloadError
from connector_core.models import CANONICAL_STATUSES, to_json
from connector_core.secrets import MASK, SECRET_KEYWORD, secret_fields
from connector_core.testing.env import ContractSkip, Env, fail, short, token

#: Settings field names that look like secrets and must carry ``"x-secret": true``.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?$|secret|token|api_?key|apikey|partner_?id|private|credential|auth", re.I
)
#: Words that make an auth error actionable: it tells the user what to check or change.
ACTIONABLE = re.compile(r"\b(check|verify|wrong|invalid|incorrect|fix|update|correct|try again|re-?enter)\b", re.I)
#: Words that say why an order was rejected for its shipping address.
ADDRESS_REASON = re.compile(r"address|shipping|ship_to|delivery", re.I)


# -- 1. describes itself ---------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def unresolved_refs(schema: Mapping[str, Any]) -> list[str]:
    """The ``$ref`` values of ``schema`` that resolve to nothing."""
    base = str(schema.get("$id", "urn:contract:schema"))
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        base, referencing.Resource.from_contents(dict(schema), default_specification=DRAFT202012)
    )
    resolver = registry.resolver(base_uri=base)
    missing = []
    for ref in _refs(schema):
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            missing.append(ref)
    return missing


def unflagged_secrets(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Property paths whose name looks secret but that lack ``"x-secret": true``."""
    out = []
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        if SECRET_NAME.search(name) and sub.get(SECRET_KEYWORD) is not True:
            out.append(prefix + name)
        out.extend(unflagged_secrets(sub, f"{prefix}{name}."))
    return out


def check_describes_itself(env: Env) -> str:
    """Name, version, a valid settings schema with no dangling $ref and every secret flagged."""
    info = env.info
    problems = []
    if not info.version.strip():
        problems.append("MarketplaceInfo.version is empty: report the plugin's version")
    if not info.title.strip():
        problems.append("MarketplaceInfo.title is empty: give the marketplace's display name")
    try:
        jsonschema.Draft202012Validator.check_schema(info.settings_schema)
    except jsonschema.SchemaError as err:
        problems.append(f"settings_schema is not valid JSON Schema ({err.message}): fix it")
    if info.settings_schema.get("type") != "object":
        problems.append('settings_schema must describe an object: add "type": "object"')
    for label, schema in (("settings_schema", info.settings_schema), ("raw_schema", info.raw_schema)):
        if schema and (missing := unresolved_refs(schema)):
            problems.append(f"{label} has unresolved $ref {short(missing)}: inline them or point at $defs")
    if unflagged := unflagged_secrets(info.settings_schema):
        problems.append(f'settings fields {short(unflagged)} look secret: flag them with "x-secret": true')
    if problems:
        raise fail("; ".join(problems))
    flagged = secret_fields(info.settings_schema)
    return f"{info.name} {info.version}; secret settings: {', '.join(flagged) or 'none'}"


# -- 2. connect -----------------------------------------------------------------------------


def _bad_settings(env: Env) -> dict[str, Any]:
    if env.sandbox is not None:
        return env.sandbox.bad_settings()
    names = secret_fields(env.info.settings_schema)
    if not names:
        raise ContractSkip("no secret settings field to spoil for the bad-credentials half")
    return {**env.settings, **{n: f"contract-invalid-{token()}" for n in names}}


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [f"a secret ({s[:2]}…)" for s in secrets if s in text]
    if MASK in text:
        found.append(f"a secret (masked as {MASK} only by the host's redaction)")
    return found


def check_connect(env: Env) -> str:
    """connect works with good settings; bad credentials raise AuthError with an actionable, secret-free message."""
    result = env.host.connect(env.store())
    if not isinstance(result.account, str) or not result.account.strip():
        raise fail("connect returned an empty ConnectResult.account: say which account was connected")
    bad = _bad_settings(env)
    all_secrets = [*env.secret_values(env.settings, bad), *env.issued_secrets()]
    if leaks := _leaks(repr(result) + str(result.details), all_secrets):
        raise fail(f"connect's result shows {leaks[0]}: never put a secret in ConnectResult")
    try:
        env.host.connect(env.store(bad))
    except AuthError as err:
        env.capture.add_exception("the AuthError for bad credentials", err)
        texts = " ".join([str(err), repr(err), *map(str, err.args)])
        if leaks := _leaks(texts, all_secrets):
            raise fail(f"the AuthError for bad credentials shows {leaks[0]}: build the message without it") from None
        if not ACTIONABLE.search(str(err)):
            raise fail(
                f"the AuthError message {str(err)!r} does not tell the user what to do: "
                "say which setting to check or change"
            ) from None
        return f"auth error: {err}"
    except Exception as exc:
        raise fail(
            f"bad credentials raised {type(exc).__name__}, not connector_core.errors.AuthError: "
            "turn the marketplace's refusal into AuthError"
        ) from None
    raise fail("connect accepted bad credentials: make one authenticated call and raise AuthError when refused")


# -- 3. fetch and map -------------------------------------------------------------------------


def _duplicates(keys: list[str]) -> list[str]:
    return sorted(k for k, n in Counter(keys).items() if n > 1)


def check_fetch_and_map(env: Env) -> str:
    """fetch_orders yields orders whose raw and mapped forms validate, with unique non-empty keys."""
    if env.info.raw_schema is None:
        raise fail("MarketplaceInfo.raw_schema is missing: declare the JSON Schema of your raw payloads")
    store = env.store()
    raws, _rejects, _cursor = env.fetch(store)
    if not raws:
        raise fail("fetch_orders returned no order from a fresh store: yield every order when since is None")
    keys = [raw.order_key for raw in raws]
    if empty := [i for i, k in enumerate(keys) if not isinstance(k, str) or not k.strip()]:
        raise fail(f"raw orders at positions {short(empty)} have an empty order_key: use the marketplace's id")
    if dupes := _duplicates(keys):
        raise fail(f"one fetch yielded the order keys {short(dupes)} more than once: yield each order once")
    problems = []
    raw_name = env.host.raw_schema_name(env.marketplace)
    invalid = env.invalid_keys()
    mapped: list[str] = []
    for raw in raws:
        try:
            env.host.schemas.validate(raw_name, raw.payload)
        except PayloadError as err:
            problems.append(f"raw {raw.order_key} fails the plugin's raw_schema at {err.path}: {err}")
            continue
        try:
            order = env.map(store, raw)
        except MappingError:
            if raw.order_key in invalid:
                continue  # the sandbox's unimportable orders: check no_address_rejected covers them
            raise
        if (order.store, order.marketplace, order.order_key) != (store.name, env.marketplace, raw.order_key):
            problems.append(
                f"mapped {raw.order_key} says store/marketplace/key {order.store}/{order.marketplace}/"
                f"{order.order_key}: copy them from the store context and the raw order"
            )
        try:
            env.host.schemas.validate("canonical/order", to_json(order))
        except PayloadError as err:
            problems.append(f"mapped {raw.order_key} fails the canonical order schema: {err}")
        mapped.append(order.order_key)
    if dupes := _duplicates(mapped):
        problems.append(f"mapped orders share the keys {short(dupes)}: order keys must be unique")
    if env.sandbox is not None:
        expected = {str(o["order_key"]) for o in env.sandbox.orders()} - invalid
        if lost := sorted(expected - set(keys)):
            problems.append(f"orders {short(lost)} are in the sandbox but were not fetched: fetch every page")
    if problems:
        raise fail("; ".join(problems[:5]))
    return f"{len(raws)} raw orders, {len(mapped)} mapped and valid"


# -- 4. no shipping address ---------------------------------------------------------------------


def check_no_address_rejected(env: Env) -> str:
    """Every mapped order has a usable shipping address; orders without one are rejected with that reason."""
    store = env.store()
    raws, rejects, _ = env.fetch(store)
    problems = []
    no_address: set[str] = set()
    for raw in raws:
        try:
            order = env.map(store, raw)
        except MappingError as err:
            if ADDRESS_REASON.search(str(err)):
                no_address.add(raw.order_key)
            continue
        if not order.ship_to.is_usable():
            problems.append(
                f"{raw.order_key} was mapped with no usable shipping address: map it to Order.ship_to, "
                "or raise MappingError('no shipping address') when the marketplace gives none"
            )
    no_address |= {r.order_key for r in rejects if r.order_key and ADDRESS_REASON.search(r.reason)}
    if env.sandbox is not None:
        invalid = env.invalid_keys()
        if not invalid:
            raise fail("the sandbox holds no order without a shipping address: mark one valid=False in orders()")
        if missed := sorted(invalid - no_address):
            problems.append(
                f"orders {short(missed)} have no shipping address but were not rejected with that reason: "
                "raise MappingError naming the missing shipping address"
            )
    if problems:
        raise fail("; ".join(problems[:5]))
    return f"{len(no_address)} orders rejected for their shipping address"


# -- 6. status mapping -----------------------------------------------------------------------


def check_status_mapping(env: Env) -> str:
    """map_status covers every declared marketplace status; a store's custom mapping overrides it."""
    statuses = env.info.statuses
    if not statuses:
        raise fail("MarketplaceInfo.statuses is empty: declare every marketplace status code the plugin knows")
    store = env.store()
    hook = env.plugin_hook("map_status")
    defaults = {code: hook(store=store, marketplace_status=code) for code in statuses}
    if bad := sorted(code for code, value in defaults.items() if str(value) not in CANONICAL_STATUSES):
        raise fail(
            f"map_status has no canonical status for the declared codes {short(bad)}: "
            f"map each to one of {', '.join(CANONICAL_STATUSES)}"
        )
    custom = {code: next(s for s in CANONICAL_STATUSES if s != str(default)) for code, default in defaults.items()}
    overridden = env.store(status_map=custom)
    got = {code: env.host.map_status(overridden, code).value for code in statuses}
    if got != custom:
        wrong = sorted(code for code in statuses if got[code] != custom[code])
        raise fail(f"a custom status mapping did not win for {short(wrong)}: never bypass map_status")
    orders = env.mapped_orders(overridden)
    if wrong_orders := [o.order_key for o in orders if o.status.value != custom.get(o.marketplace_status.code)]:
        raise fail(
            f"orders {short(wrong_orders)} did not take the custom status of their marketplace code: "
            "set Order.marketplace_status.code to a declared status code"
        )
    return f"{len(statuses)} statuses mapped; custom mapping applied to {len(orders)} orders"
