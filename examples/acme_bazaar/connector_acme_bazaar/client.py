"""Talking to the Acme Bazaar API: URLs, the API key header, and its errors."""

from __future__ import annotations

from typing import Any

import httpx

from connector_core.errors import AuthError, MarketplaceError, TransitionError
from connector_core.store_context import StoreContext

DEFAULT_BASE_URL = "https://api.acme-bazaar.example/"


def check_answer(response: httpx.Response) -> None:
    """Turn Acme's error answers into the core's errors (5xx and 429 are retried by the host)."""
    if response.status_code == 401:
        raise AuthError(
            "Acme Bazaar refused the API key: check the store's api_key setting "
            "(Seller centre > Settings > API keys) and connect again."
        )
    if response.status_code == 409:
        raise TransitionError(f"Acme Bazaar refused the change: {response.json().get('message', 'conflict')}")
    if response.status_code >= 400:
        raise MarketplaceError(f"Acme Bazaar answered HTTP {response.status_code}", code=response.status_code)


def call(store: StoreContext, method: str, path: str, **kwargs: Any) -> Any:
    """Call ``path`` of the Acme API for ``store`` and return the decoded JSON answer."""
    base = store.settings.get("base_url", DEFAULT_BASE_URL).rstrip("/")
    response = store.http.request(
        method,
        f"{base}/api/v1/{path}",
        headers={"X-Api-Key": store.settings["api_key"]},
        check=check_answer,
        **kwargs,
    )
    return response.json()
