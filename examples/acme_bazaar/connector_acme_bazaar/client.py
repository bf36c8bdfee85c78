"""Talking to the Acme Bazaar API: URLs, the access token, and its errors."""

from __future__ import annotations

import time
from typing import Any

import httpx

from connector_core.errors import AuthError, MarketplaceError, TransitionError
from connector_core.store_context import StoreContext

DEFAULT_BASE_URL = "https://api.acme-bazaar.example/"


class TokenRefused(AuthError):
    """Acme refused the access token (it expired or was revoked): get a new one and try again."""


def check_answer(response: httpx.Response) -> None:
    """Turn Acme's error answers into the core's errors (5xx and 429 are retried by the host)."""
    if response.status_code == 401:
        if response.json().get("error") == "invalid_token":
            raise TokenRefused("Acme Bazaar refused the access token")
        raise AuthError(
            "Acme Bazaar refused the client credentials: check the store's client_id and client_secret "
            "settings (Seller centre > Settings > API clients) and connect again."
        )
    if response.status_code == 409:
        raise TransitionError(f"Acme Bazaar refused the change: {response.json().get('message', 'conflict')}")
    if response.status_code >= 400:
        raise MarketplaceError(f"Acme Bazaar answered HTTP {response.status_code}", code=response.status_code)


def _base(store: StoreContext) -> str:
    return str(store.settings.get("base_url", DEFAULT_BASE_URL)).rstrip("/")


def access_token(store: StoreContext, *, renew: bool = False) -> str:
    """The store's access token: kept in ``store.cache`` until a minute before it expires, then bought again."""
    cached = store.cache.get("acme_token")
    if cached and not renew and cached[1] > time.monotonic():
        return str(cached[0])
    credentials = {
        "grant_type": "client_credentials",
        "client_id": store.settings["client_id"],
        "client_secret": store.settings["client_secret"],
    }
    answer = store.http.request("POST", f"{_base(store)}/oauth/token", data=credentials, check=check_answer).json()
    token = str(answer["access_token"])
    store.secrets.add(token)  # the host now redacts it from logs, errors and output
    store.cache["acme_token"] = (token, time.monotonic() + float(answer["expires_in"]) - 60)
    return token


def call(store: StoreContext, method: str, path: str, **kwargs: Any) -> Any:
    """Call ``path`` of the Acme API for ``store`` and return the decoded JSON answer.

    A refused token is renewed once and the same call sent again, so an
    expiry in the middle of a sync costs one extra request and loses nothing.
    """
    url = f"{_base(store)}/api/v1/{path}"
    try:
        headers = {"Authorization": f"Bearer {access_token(store)}"}
        return store.http.request(method, url, headers=headers, check=check_answer, **kwargs).json()
    except TokenRefused:
        headers = {"Authorization": f"Bearer {access_token(store, renew=True)}"}
        return store.http.request(method, url, headers=headers, check=check_answer, **kwargs).json()
