"""Contract checks of bad weather: transient faults, credentials that expire mid-run, secrets in all output."""

from __future__ import annotations

from connector_core.errors import AuthError, ConnectorError, QuotaError
from connector_core.secrets import is_registered
from connector_core.testing.env import ContractSkip, Env, fail, short
from connector_core.testing.scan import hint, leaks

FAULTS = ("error_rate", "drop_rate", "quota_rate")


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
                raise fail(f"with {fault}=0.5 the plugin raised QuotaError: that fault is no quota answer") from None
            survived.append(fault)  # surfaced as QuotaError: the host blocks the partner and defers
            continue
        except Exception as exc:
            raise fail(
                f"with {fault}=0.5 the plugin gave up ({type(exc).__name__}: {exc}): send requests through "
                "store.http (the host's RetryingClient) or retry TransientError"
            ) from None
        finally:
            sandbox.set_faults()
        if keys != baseline:
            raise fail(f"with {fault}=0.5 the fetch brought {len(keys)} orders instead of {len(baseline)}")
        survived.append(fault)
    if not survived:
        raise fail(f"the sandbox's set_faults accepts none of {', '.join(FAULTS)}: implement them")
    sandbox.set_faults(error_rate=1.0)
    try:
        env.fetch(env.store())
    except ConnectorError as err:
        env.capture.add_exception("the error for a permanent fault", err)
        if not str(err).strip():
            raise fail(f"a permanent fault raised {type(err).__name__} with an empty message") from None
    except Exception as exc:
        raise fail(
            f"a permanent fault surfaced as {type(exc).__name__}, not a connector_core error: "
            "let TransientError/MarketplaceError through"
        ) from None
    else:
        raise fail("with every answer failing, fetch_orders still returned: a permanent fault must raise")
    finally:
        sandbox.set_faults()
    return f"survived {', '.join(survived)}; a permanent fault raised a clear error"


def check_credentials_expire(env: Env) -> str:
    """Tokens expired mid-run (before connect's token is reused, after every page, before a push) are renewed."""
    sandbox = env.need_sandbox("expiring credentials")
    expire = getattr(sandbox, "expire_credentials", None)
    if not callable(expire):
        raise ContractSkip("the sandbox has no expire_credentials: this marketplace's credentials do not expire")
    baseline = sorted(r.order_key for r in env.fetch(env.store())[0])
    store = env.store()
    stage = "fetch_orders"
    try:
        env.host.connect(store)
        expire()
        keys: list[str] = []
        for orders, _rejects, _cursor in env.pages(store):
            keys.extend(r.order_key for r in orders)
            if len(keys) > 2 * len(baseline) + 10:
                break  # the read started over after a renewal and would never end: reported as doubled below
            expire()
        if env.allow_writes:
            from connector_core.testing.checks_push import SHIPPABLE, _shipment

            stage = "push_shipment"
            order = next(o for o in env.mapped_orders(store) if o.status.value in SHIPPABLE)
            expire()
            if order.status.value == "pending_fulfillment":
                env.host.accept_order(store, order)
                expire()
            env.host.push_shipment(store, order, _shipment(store, order))
    except AuthError as err:
        env.capture.add_exception("the AuthError after the token expired", err)
        raise fail(
            f"after the sandbox expired the access token, {stage} raised AuthError ({err}): on a 401 or an "
            "expired token, get a new token once (keep it in store.cache) and retry the call"
        ) from None
    if dupes := sorted({k for k in keys if keys.count(k) > 1}):
        raise fail(
            f"renewing the token mid-fetch yielded {short(dupes)} twice: carry on from the page that failed, "
            "do not start the read over"
        )
    if lost := sorted(set(baseline) - set(keys)):
        raise fail(f"renewing the token mid-fetch lost {short(lost)}: retry the page that was refused")
    pages = "a push" if env.allow_writes else "no push"
    return f"{len(keys)} orders over token expiries after connect and every page, then {pages}; none lost or doubled"


def check_secrets(env: Env) -> str:
    """Issued tokens are registered with store.secrets.add; no secret shows in logs, errors or output."""
    store = env.store()
    env.host.connect(store)
    env.mapped_orders(store)
    bad = env.sandbox.bad_settings() if env.sandbox else None
    try:
        env.host.connect(env.store(bad))
    except ConnectorError as err:
        env.capture.add_exception("the error for bad credentials", err)
    issued = env.issued_secrets()
    if forgotten := [s for s in issued if not (env.registered(s) or is_registered(s))]:
        raise fail(
            f"the marketplace issued {len(forgotten)} token(s) ({hint(forgotten[0])}) that the plugin never "
            "registered: call store.secrets.add(token) as soon as it has one, so the host redacts it everywhere"
        )
    spoiled = env.secret_values(bad) if bad else []  # a mistyped secret is often close to the real one
    if found := leaks(env.capture.seen, [*env.all_secrets(), *spoiled]):
        raise fail("; ".join(found[:3]) + ": never log or raise with a secret, nor with a header that holds one")
    what = f"{len(issued)} issued token(s) registered" if issued else "no token issued"
    return f"{what}; {len(env.capture.seen)} logs, errors and outputs free of secrets"
