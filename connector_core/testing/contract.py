"""The plugin contract: nine named checks any marketplace plugin must pass.

Each check drives the plugin through the host's own machinery
(:class:`~connector_core.plugins.PluginHost`, and for the checks that sync,
:class:`~connector_core.db.OrderBook` on a temporary SQLite file and
:class:`~connector_core.engine.Engine`) and compares real values. A failure
carries a message that says what to fix.

By default every check runs against a fresh sandbox of the marketplace (the
plugin's ``sandbox_factory`` hook). With live ``settings`` the checks run
against the real endpoint, read-only unless ``allow_writes`` is set; checks
that need a sandbox (adding orders, injecting faults) are skipped then.

Use it from pytest (:class:`connector_core.testing.pytest_plugin.ContractSuite`),
from the command line (``connector-host contract NAME``), or directly::

    results = ContractHarness("acme").run_all()
"""

from __future__ import annotations

import re
import secrets as _random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT202012

from connector_core.errors import AuthError, ConnectorError, MappingError, PayloadError, QuotaError
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.models import (
    CANONICAL_STATUSES,
    FieldOutcome,
    MarketplaceInfo,
    Order,
    PushResult,
    RawOrder,
    RawReject,
    Shipment,
    Support,
    to_json,
)
from connector_core.plugins import PluginHost
from connector_core.secrets import MASK, SECRET_KEYWORD, redact, register_settings, secret_fields
from connector_core.store_context import StoreContext
from connector_core.testing.sandbox import Sandbox

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

#: Settings field names that look like secrets and must carry ``"x-secret": true``.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?$|secret|token|api_?key|apikey|partner_?id|private|credential|auth", re.I
)
#: Words that make an auth error actionable: it tells the user what to check or change.
ACTIONABLE = re.compile(r"\b(check|verify|wrong|invalid|incorrect|fix|update|correct|try again|re-?enter)\b", re.I)
#: Words that say why an order was rejected for its shipping address.
ADDRESS_REASON = re.compile(r"address|shipping|ship_to|delivery", re.I)
SHIPMENT_FIELDS = ("tracking_number", "carrier", "service", "carrier_fee", "notes_to_buyer")
FAULTS = ("error_rate", "drop_rate", "quota_rate")


class ContractFailure(AssertionError):
    """A check found the plugin out of contract; the message says what to fix."""


class ContractSkip(Exception):
    """A check cannot run in this mode (e.g. it needs a sandbox); the message says why."""


@attrs.frozen
class CheckResult:
    """The outcome of one check: ``passed``, ``failed`` or ``skipped``, with its message."""

    check: str
    number: int
    title: str
    outcome: str
    message: str = ""

    @property
    def passed(self) -> bool:
        """Whether the check passed."""
        return self.outcome == PASSED


@attrs.frozen
class Check:
    """One named check of the contract."""

    id: str
    number: int
    title: str
    run: Callable[[Env], str]


# -- environment -----------------------------------------------------------------


class Env:
    """What one check runs against: a fresh sandbox (or the live endpoint) and its stores."""

    def __init__(self, harness: ContractHarness, sandbox: Sandbox | None, settings: dict[str, Any]) -> None:
        self.harness = harness
        self.host = harness.host
        self.marketplace = harness.marketplace
        self.info: MarketplaceInfo = harness.host.info(harness.marketplace)
        self.sandbox = sandbox
        self.settings = settings
        self.allow_writes = sandbox is not None or harness.allow_writes
        self.sleeps: list[float] = []
        self._clients: list[RetryingClient] = []
        self._count = 0
        register_settings(self.info.settings_schema, settings)

    def secret_values(self, *settings: Mapping[str, Any]) -> list[str]:
        """The secret values of the given settings (default: this env's settings)."""
        names = secret_fields(self.info.settings_schema)
        values = [s.get(n) for s in (settings or (self.settings,)) for n in names]
        return [v for v in values if isinstance(v, str) and v]

    def store(
        self, settings: Mapping[str, Any] | None = None, status_map: Mapping[str, str] | None = None
    ) -> StoreContext:
        """A store on this env's endpoint; its HTTP client retries often and never really sleeps."""
        self._count += 1
        client = RetryingClient(
            HttpPolicy(max_attempts=25, backoff_base=0.001, backoff_max=0.002, max_total_wait=10_000),
            sleep=self.sleeps.append,
        )
        self._clients.append(client)
        return StoreContext(
            name=f"contract-{self._count}",
            marketplace=self.marketplace,
            settings=dict(self.settings if settings is None else settings),
            status_map=dict(status_map or {}),
            http=client,
        )

    def close(self) -> None:
        """Close every HTTP client the stores opened."""
        for client in self._clients:
            client.close()

    def need_sandbox(self, what: str) -> Sandbox:
        """This env's sandbox, or skip the check in live mode."""
        if self.sandbox is None:
            raise ContractSkip(f"{what} needs the marketplace's sandbox (live settings were given)")
        return self.sandbox

    def need_writes(self, what: str) -> None:
        """Skip a check that writes, unless on a sandbox or writes were allowed."""
        if not self.allow_writes:
            raise ContractSkip(f"{what} writes to the marketplace: allow writes to run it against a live endpoint")

    def invalid_keys(self) -> set[str]:
        """Keys of the sandbox orders it marks as not importable (e.g. no shipping address)."""
        return (
            {str(o["order_key"]) for o in self.sandbox.orders() if not o.get("valid", True)} if self.sandbox else set()
        )

    def fetch(self, store: StoreContext, since: Any = None) -> tuple[list[RawOrder], list[RawReject], Any]:
        """Run ``fetch_orders`` to the end: raw orders, rejects, and the last cursor given."""
        raws: list[RawOrder] = []
        rejects: list[RawReject] = []
        cursor = since
        for page in self.host.fetch_orders(store, since):
            raws.extend(page.orders)
            rejects.extend(page.rejects)
            if page.cursor is not None:
                cursor = page.cursor
        return raws, rejects, cursor

    def map(self, store: StoreContext, raw: RawOrder) -> Order:
        """Map one raw payload the way the engine does: plugin mapping, then status mapping."""
        order = self.host.map_order(store, raw)
        return attrs.evolve(order, status=self.host.map_status(store, order.marketplace_status.code))

    def mapped_orders(self, store: StoreContext) -> list[Order]:
        """Fetch everything and map every payload that maps (rejections are other checks' business)."""
        orders = []
        for raw in self.fetch(store)[0]:
            try:
                orders.append(self.map(store, raw))
            except PayloadError:
                continue
        return orders

    def plugin_hook(self, name: str) -> Callable[..., Any]:
        """Call hook ``name`` on this marketplace's plugin only, with no host defaults in between."""
        pm = self.host.pm
        target = next(
            impl.plugin
            for impl in pm.hook.marketplace_info.get_hookimpls()
            if getattr(impl.function(), "name", None) == self.marketplace
        )
        others = [p for p in pm.get_plugins() if p is not target]
        return pm.subset_hook_caller(name, remove_plugins=others)  # type: ignore[no-any-return]


class ContractHarness:
    """Runs the contract checks on one marketplace plugin."""

    def __init__(
        self,
        marketplace: str,
        *,
        host: PluginHost | None = None,
        settings: Mapping[str, Any] | None = None,
        allow_writes: bool = False,
    ) -> None:
        self.marketplace = marketplace
        self.host = host if host is not None else PluginHost.create()
        self.settings = dict(settings) if settings is not None else None
        self.allow_writes = allow_writes
        self.host.info(marketplace)  # an unknown marketplace fails here, with the installed ones listed

    @contextmanager
    def environment(self) -> Iterator[Env]:
        """A fresh sandbox (or the live endpoint) for one check."""
        with ExitStack() as stack:
            if self.settings is not None:
                env = Env(self, None, self.settings)
            else:
                factory = self.host.sandbox_factory(self.marketplace)
                if factory is None:
                    raise ContractSkip(
                        f"the {self.marketplace} plugin ships no sandbox_factory: give live settings to run this check"
                    )
                sandbox = stack.enter_context(factory())
                env = Env(self, sandbox, sandbox.settings())
            stack.callback(env.close)
            yield env

    def run_check(self, check_id: str) -> CheckResult:
        """Run one check by its id."""
        check = CHECKS_BY_ID[check_id]
        try:
            with self.environment() as env:
                note = check.run(env)
            return CheckResult(check.id, check.number, check.title, PASSED, redact(note))
        except ContractSkip as skip:
            return CheckResult(check.id, check.number, check.title, SKIPPED, redact(str(skip)))
        except ContractFailure as failure:
            return CheckResult(check.id, check.number, check.title, FAILED, redact(str(failure)))
        except Exception as exc:  # the plugin broke in a way no check expected: that is a failure too
            message = f"the check stopped on {type(exc).__name__}: {exc}"
            return CheckResult(check.id, check.number, check.title, FAILED, redact(message))

    def run_all(self, only: list[str] | None = None) -> list[CheckResult]:
        """Run every check (or those in ``only``) in order."""
        return [self.run_check(c.id) for c in CHECKS if only is None or c.id in only]


def _fail(message: str) -> ContractFailure:
    return ContractFailure(message)


def _short(items: Any, limit: int = 5) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


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
            problems.append(f"{label} has unresolved $ref {_short(missing)}: inline them or point at $defs")
    if unflagged := unflagged_secrets(info.settings_schema):
        problems.append(f'settings fields {_short(unflagged)} look secret: flag them with "x-secret": true')
    if problems:
        raise _fail("; ".join(problems))
    flagged = secret_fields(info.settings_schema)
    return f"{info.name} {info.version}; secret settings: {', '.join(flagged) or 'none'}"


# -- 2. connect -----------------------------------------------------------------------------


def _bad_settings(env: Env) -> dict[str, Any]:
    if env.sandbox is not None:
        return env.sandbox.bad_settings()
    names = secret_fields(env.info.settings_schema)
    if not names:
        raise ContractSkip("no secret settings field to spoil for the bad-credentials half")
    return {**env.settings, **{n: f"contract-invalid-{_random.token_hex(6)}" for n in names}}


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [f"a secret ({s[:2]}…)" for s in secrets if s in text]
    if MASK in text:
        found.append(f"a secret (masked as {MASK} only by the host's redaction)")
    return found


def check_connect(env: Env) -> str:
    """connect works with good settings; bad credentials raise AuthError with an actionable, secret-free message."""
    result = env.host.connect(env.store())
    if not isinstance(result.account, str) or not result.account.strip():
        raise _fail("connect returned an empty ConnectResult.account: say which account was connected")
    bad = _bad_settings(env)
    all_secrets = env.secret_values(env.settings, bad)
    if leaks := _leaks(repr(result) + str(result.details), all_secrets):
        raise _fail(f"connect's result shows {leaks[0]}: never put a secret in ConnectResult")
    try:
        env.host.connect(env.store(bad))
    except AuthError as err:
        texts = " ".join([str(err), repr(err), *map(str, err.args)])
        if leaks := _leaks(texts, all_secrets):
            raise _fail(f"the AuthError for bad credentials shows {leaks[0]}: build the message without it") from None
        if not ACTIONABLE.search(str(err)):
            raise _fail(
                f"the AuthError message {str(err)!r} does not tell the user what to do: "
                "say which setting to check or change"
            ) from None
        return f"auth error: {err}"
    except Exception as exc:
        raise _fail(
            f"bad credentials raised {type(exc).__name__}, not connector_core.errors.AuthError: "
            "turn the marketplace's refusal into AuthError"
        ) from None
    raise _fail("connect accepted bad credentials: make one authenticated call and raise AuthError when refused")


# -- 3. fetch and map -------------------------------------------------------------------------


def _duplicates(keys: list[str]) -> list[str]:
    return sorted(k for k, n in Counter(keys).items() if n > 1)


def check_fetch_and_map(env: Env) -> str:
    """fetch_orders yields orders whose raw and mapped forms validate, with unique non-empty keys."""
    if env.info.raw_schema is None:
        raise _fail("MarketplaceInfo.raw_schema is missing: declare the JSON Schema of your raw payloads")
    store = env.store()
    raws, _rejects, _cursor = env.fetch(store)
    if not raws:
        raise _fail("fetch_orders returned no order from a fresh store: yield every order when since is None")
    keys = [raw.order_key for raw in raws]
    if empty := [i for i, k in enumerate(keys) if not isinstance(k, str) or not k.strip()]:
        raise _fail(f"raw orders at positions {_short(empty)} have an empty order_key: use the marketplace's id")
    if dupes := _duplicates(keys):
        raise _fail(f"one fetch yielded the order keys {_short(dupes)} more than once: yield each order once")
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
        problems.append(f"mapped orders share the keys {_short(dupes)}: order keys must be unique")
    if env.sandbox is not None:
        expected = {str(o["order_key"]) for o in env.sandbox.orders()} - invalid
        if lost := sorted(expected - set(keys)):
            problems.append(f"orders {_short(lost)} are in the sandbox but were not fetched: fetch every page")
    if problems:
        raise _fail("; ".join(problems[:5]))
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
            raise _fail("the sandbox holds no order without a shipping address: mark one valid=False in orders()")
        if missed := sorted(invalid - no_address):
            problems.append(
                f"orders {_short(missed)} have no shipping address but were not rejected with that reason: "
                "raise MappingError naming the missing shipping address"
            )
    if problems:
        raise _fail("; ".join(problems[:5]))
    return f"{len(no_address)} orders rejected for their shipping address"


# -- 5. incremental ------------------------------------------------------------------------------


def check_incremental(env: Env) -> str:
    """A fetch from the returned cursor yields nothing already seen; orders added in between appear once."""
    store = env.store()
    raws, _, cursor = env.fetch(store)
    first = {r.order_key for r in raws}
    if cursor is None:
        raise _fail("fetch_orders gave no cursor: set FetchPage.cursor so the next sync resumes from there")
    again = {r.order_key for r in env.fetch(store, cursor)[0]}
    if stale := sorted(again & first):
        raise _fail(f"fetching from the cursor re-yielded unchanged orders {_short(stale)}: resume after the cursor")
    if env.sandbox is None:
        return f"{len(first)} orders, then none again from cursor {cursor!r}"
    added = set(env.sandbox.add_orders(3))
    second = [r.order_key for r in env.fetch(store, cursor)[0]]
    if missing := sorted(added - set(second)):
        raise _fail(f"orders {_short(missing)} added after the first fetch did not come from its cursor")
    if stale := sorted(set(second) & first):
        raise _fail(f"fetching from the cursor re-yielded orders older than it: {_short(stale)}")
    return _incremental_sync(env) + f"; cursor fetch brought exactly the {len(added)} new orders"


def _incremental_sync(env: Env) -> str:
    """Two syncs through the engine on a temporary order book, orders added in between."""
    from connector_core.db import OrderBook
    from connector_core.engine import Engine

    sandbox = env.need_sandbox("syncing twice")
    with tempfile.TemporaryDirectory() as tmp, OrderBook(Path(tmp) / "contract.db") as book:
        engine = Engine(env.host, book)
        book.add_store("contract", env.marketplace, env.settings)
        engine.sync("contract")
        sandbox.add_orders(2)
        engine.sync("contract")
        stored = [o.order_key for o in book.iter_orders("contract")]
        known = {str(o["order_key"]) for o in sandbox.orders()}
        expected = known - env.invalid_keys()
        if strays := sorted(set(stored) - known):
            raise _fail(
                f"after two syncs the book holds keys {_short(strays)} that name no sandbox order: the same "
                "order was stored twice under different keys; derive order_key from the marketplace id only"
            )
        if lost := sorted(expected - set(stored)):
            raise _fail(
                f"after two syncs the book lacks {_short(lost)} of the sandbox's {len(expected)} importable orders: "
                "nothing may be lost between syncs (save the cursor only with the orders it covers)"
            )
        report = engine.sync("contract")
        if report.inserted:
            raise _fail(f"a third sync with nothing new inserted {report.inserted} orders: the cursor did not hold")
        return f"two syncs stored {len(stored)} orders, none twice"


# -- 6. status mapping -----------------------------------------------------------------------


def check_status_mapping(env: Env) -> str:
    """map_status covers every declared marketplace status; a store's custom mapping overrides it."""
    statuses = env.info.statuses
    if not statuses:
        raise _fail("MarketplaceInfo.statuses is empty: declare every marketplace status code the plugin knows")
    store = env.store()
    hook = env.plugin_hook("map_status")
    defaults = {code: hook(store=store, marketplace_status=code) for code in statuses}
    if bad := sorted(code for code, value in defaults.items() if str(value) not in CANONICAL_STATUSES):
        raise _fail(
            f"map_status has no canonical status for the declared codes {_short(bad)}: "
            f"map each to one of {', '.join(CANONICAL_STATUSES)}"
        )
    custom = {code: next(s for s in CANONICAL_STATUSES if s != str(default)) for code, default in defaults.items()}
    overridden = env.store(status_map=custom)
    got = {code: env.host.map_status(overridden, code).value for code in statuses}
    if got != custom:
        wrong = sorted(code for code in statuses if got[code] != custom[code])
        raise _fail(f"a custom status mapping did not win for {_short(wrong)}: never bypass map_status")
    orders = env.mapped_orders(overridden)
    if wrong_orders := [o.order_key for o in orders if o.status.value != custom.get(o.marketplace_status.code)]:
        raise _fail(
            f"orders {_short(wrong_orders)} did not take the custom status of their marketplace code: "
            "set Order.marketplace_status.code to a declared status code"
        )
    return f"{len(statuses)} statuses mapped; custom mapping applied to {len(orders)} orders"


# -- 7. push shipment ----------------------------------------------------------------------------


def _sandbox_order(sandbox: Sandbox, key: str) -> dict[str, Any]:
    for order in sandbox.orders():
        if str(order["order_key"]) == key:
            return order
    raise _fail(f"the sandbox has no order {key}: add_orders/orders must use the host's order keys")


def ship_one(env: Env) -> tuple[Order, Shipment, PushResult, StoreContext]:
    """Accept (when needed) and push a shipment with every field set on a shippable order."""
    store = env.store()
    candidates = [o for o in env.mapped_orders(store) if o.status.value in ("pending_fulfillment", "awaiting_shipment")]
    if not candidates:
        raise _fail("no order awaiting shipment was fetched: the sandbox should hold orders the seller can ship")
    order = candidates[0]
    if order.status.value == "pending_fulfillment":
        env.host.accept_order(store, order)
    shipment = Shipment(
        store=store.name,
        order_key=order.order_key,
        tracking_number=f"CT{_random.token_hex(5).upper()}",
        ship_date=datetime.now(UTC),
        carrier="Colissimo",
        service="Expert",
        carrier_fee=Decimal("6.40"),
        notes_to_buyer="Thank you for your order",
    )
    return order, shipment, env.host.push_shipment(store, order, shipment), store


def check_push_shipment(env: Env) -> str:
    """A push is accepted and visible; an identical re-push changes nothing; every field is accounted for."""
    env.need_writes("pushing a shipment")
    order, shipment, result, store = ship_one(env)
    if not result.accepted:
        raise _fail(f"push_shipment was not accepted ({result.message}): a shippable order must take a shipment")
    reported = {f.field: f.outcome for f in result.fields}
    if missing := [f for f in SHIPMENT_FIELDS if f not in reported]:
        raise _fail(f"the push result does not say what became of {_short(missing)}: report every shipment field")
    if reported["tracking_number"] is not FieldOutcome.SENT:
        raise _fail("the tracking number was not sent: it is the one field every marketplace must take")
    if env.sandbox is None:
        return "pushed (live: visibility not checked)"
    before = _sandbox_order(env.sandbox, order.order_key)
    if before.get("tracking_number") != shipment.tracking_number:
        raise _fail(
            f"the sandbox shows tracking {before.get('tracking_number')!r} for {order.order_key}, "
            f"not the pushed {shipment.tracking_number!r}: the push did not reach the marketplace"
        )
    again = env.host.push_shipment(store, order, shipment)
    after = _sandbox_order(env.sandbox, order.order_key)
    if after != before:
        raise _fail(
            f"a second identical push changed the marketplace's order: {before} became {after}; "
            "make the push idempotent (detect a shipment the marketplace already has)"
        )
    if not (again.accepted and again.already_applied):
        raise _fail(
            "a second identical push must succeed with already_applied=True "
            f"(got accepted={again.accepted}, already_applied={again.already_applied})"
        )
    unsupported = sorted(f for f, o in reported.items() if o is FieldOutcome.UNSUPPORTED)
    return f"pushed {order.order_key}; marketplace cannot take: {', '.join(unsupported) or 'nothing'}"


# -- 8. capabilities -------------------------------------------------------------------------------


def _any_item(pred: Callable[[Any], Any]) -> Callable[[Order], bool]:
    return lambda o: any(pred(i) for i in o.items)


#: How a supported import feature shows in canonical orders (names normalised to snake_case).
ORDER_FEATURES: dict[str, Callable[[Order], Any]] = {
    "customer_email": lambda o: o.customer.email,
    "customer_phone": lambda o: o.customer.phone or o.ship_to.phone,
    "customer_notes": lambda o: o.customer_notes,
    "internal_notes": lambda o: o.internal_notes,
    "requested_shipping_service": lambda o: o.requested_shipping_service,
    "payment_method": lambda o: o.payment_method,
    "discounts": lambda o: o.discounts or any(i.discount for i in o.items),
    "gift": lambda o: o.gift,
    "order_weight": lambda o: o.total_weight,
    "billing_address": lambda o: o.bill_to,
    "pickup_point": lambda o: o.pickup_point,
    "item_weight": _any_item(lambda i: i.weight),
    "item_image_url": _any_item(lambda i: i.image_url),
    "item_options": _any_item(lambda i: i.options),
    "item_warehouse_location": _any_item(lambda i: i.warehouse_location),
    "item_brand": _any_item(lambda i: i.brand),
    "item_ean": _any_item(lambda i: i.ean or i.upc),
}
ALIASES = {
    "email": "customer_email",
    "customer_e_mail": "customer_email",
    "phone": "customer_phone",
    "shipping_service": "requested_shipping_service",
    "coupons": "discounts",
    "discounts_coupons": "discounts",
    "gift_detection": "gift",
    "gift_message": "gift",
    "total_weight": "order_weight",
    "bill_to": "billing_address",
    "relay_point": "pickup_point",
    "image_url": "item_image_url",
    "item_image": "item_image_url",
    "options": "item_options",
    "warehouse_location": "item_warehouse_location",
    "shipping_carrier": "carrier",
    "shipping_service_update": "service",
    "cost": "carrier_fee",
    "shipping_cost": "carrier_fee",
}


def feature_key(name: str) -> str:
    """A capability's feature name in the kit's vocabulary (snake_case, common aliases folded)."""
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if key.startswith("shipment_") and key.removeprefix("shipment_") in SHIPMENT_FIELDS:
        key = key.removeprefix("shipment_")
    return ALIASES.get(key, key)


def check_capabilities(env: Env) -> str:
    """Every feature declared supported is observed: in the orders, or as a sent field of a push."""
    caps = {feature_key(c.feature): c.support for c in env.info.capabilities}
    orders = env.mapped_orders(env.store())
    unseen = sorted(
        f
        for f, s in caps.items()
        if s is Support.SUPPORTED and f in ORDER_FEATURES and not any(ORDER_FEATURES[f](o) for o in orders)
    )
    if unseen:
        raise _fail(
            f"declared supported but seen in none of {len(orders)} orders: {_short(unseen)}; "
            "map them, or declare them supplied_by_host / not_offered"
        )
    checked = [f for f in caps if f in ORDER_FEATURES]
    pushed = [f for f in caps if f in SHIPMENT_FIELDS]
    if pushed and env.allow_writes:
        result = ship_one(env)[2]
        outcome = {f.field: f.outcome for f in result.fields}
        untrue = sorted(f for f in pushed if (caps[f] is Support.SUPPORTED) != (outcome.get(f) is FieldOutcome.SENT))
        if untrue:
            raise _fail(
                f"the capability table disagrees with what push_shipment sent for {_short(untrue)}: "
                "declare supported exactly the fields the marketplace takes"
            )
        checked += pushed
    other = sorted(set(caps) - set(checked))
    return f"verified {len(checked)} features" + (f"; not checkable here: {_short(other, 8)}" if other else "")


# -- 9. faults ----------------------------------------------------------------------------------------


def check_faults(env: Env) -> str:
    """5xx answers and dropped connections are retried; a quota answer is retried or raised as QuotaError
    (the host then defers the work past the quota window); a permanent fault is a clear error."""
    sandbox = env.need_sandbox("injecting faults")
    baseline = sorted(r.order_key for r in env.fetch(env.store())[0])
    survived = []
    for fault in FAULTS:
        try:
            sandbox.set_faults(**{fault: 0.5})
        except (TypeError, ValueError):
            continue  # this sandbox cannot inject that fault
        store = env.store()
        try:
            env.host.connect(store)
            keys = sorted(r.order_key for r in env.fetch(store)[0])
        except QuotaError:
            if fault != "quota_rate":
                raise _fail(f"with {fault}=0.5 the plugin raised QuotaError: that fault is no quota answer") from None
            survived.append(fault)  # surfaced as QuotaError: the host blocks the partner and defers
            continue
        except Exception as exc:
            raise _fail(
                f"with {fault}=0.5 the plugin gave up ({type(exc).__name__}: {exc}): send requests through "
                "store.http (the host's RetryingClient) or retry TransientError"
            ) from None
        finally:
            sandbox.set_faults()
        if keys != baseline:
            raise _fail(f"with {fault}=0.5 the fetch brought {len(keys)} orders instead of {len(baseline)}")
        survived.append(fault)
    if not survived:
        raise _fail(f"the sandbox's set_faults accepts none of {', '.join(FAULTS)}: implement them")
    sandbox.set_faults(error_rate=1.0)
    try:
        env.fetch(env.store())
    except ConnectorError as err:
        if not str(err).strip():
            raise _fail(f"a permanent fault raised {type(err).__name__} with an empty message") from None
        if leaks := _leaks(str(err), env.secret_values()):
            raise _fail(f"the error for a permanent fault shows {leaks[0]}") from None
    except Exception as exc:
        raise _fail(
            f"a permanent fault surfaced as {type(exc).__name__}, not a connector_core error: "
            "let TransientError/MarketplaceError through"
        ) from None
    else:
        raise _fail("with every answer failing, fetch_orders still returned: a permanent fault must raise")
    finally:
        sandbox.set_faults()
    return f"survived {', '.join(survived)}; a permanent fault raised a clear error"


CHECKS: tuple[Check, ...] = (
    Check("describes_itself", 1, "The plugin describes itself", check_describes_itself),
    Check("connect", 2, "connect: good settings work, bad credentials give an actionable AuthError", check_connect),
    Check("fetch_and_map", 3, "fetch_orders: raw and mapped orders validate, keys unique", check_fetch_and_map),
    Check("no_address_rejected", 4, "Orders without a shipping address are rejected", check_no_address_rejected),
    Check("incremental", 5, "Incremental fetch: nothing lost, nothing duplicated", check_incremental),
    Check("status_mapping", 6, "map_status is total; custom mapping wins", check_status_mapping),
    Check("push_shipment", 7, "push_shipment is visible, idempotent, reported per field", check_push_shipment),
    Check("capabilities", 8, "The capability table is truthful", check_capabilities),
    Check("faults", 9, "Transient faults are survived; a permanent one is a clear error", check_faults),
)
CHECKS_BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}
