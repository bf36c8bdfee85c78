"""What a plugin is handed for every store hook: the store and its tools."""

from __future__ import annotations

import logging
from typing import Any

import attrs

from connector_core.http import HttpPolicy, RetryingClient
from connector_core.secrets import StoreSecrets


@attrs.frozen
class StoreContext:
    """One configured store, as its plugin sees it.

    ``settings`` holds secrets and is left out of the repr. ``status_map`` is
    the store's custom mapping (marketplace code -> canonical status); the
    host applies it before the plugin's :func:`map_status`. ``http`` is a
    retrying HTTP client shared by the store's calls (inject a transport in
    tests); ``store_settings`` are the host-side settings (branding,
    notifications, product handling).

    ``secrets`` registers secrets learnt at run time (``store.secrets.add(token)``)
    so the host redacts them everywhere. ``cache`` is the plugin's scratch
    space for this store (e.g. an access token and its expiry): it lives as
    long as this context (one sync, one push, one command), is shared by
    every hook called with it, is copied (not shared) into a process forked
    from it, and is never saved. See ``docs/plugin-reference.md``.
    """

    name: str
    marketplace: str
    settings: dict[str, Any] = attrs.field(repr=False)
    status_map: dict[str, str] = attrs.field(factory=dict)
    store_settings: dict[str, Any] = attrs.field(factory=dict, repr=False)
    http: RetryingClient = attrs.field(factory=lambda: RetryingClient(HttpPolicy.from_environ()), repr=False, eq=False)
    secrets: StoreSecrets = attrs.field(factory=StoreSecrets, repr=False, eq=False)
    cache: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def log(self) -> logging.Logger:
        """The store's logger (``connector_core.store.<name>``); secrets are redacted."""
        return logging.getLogger(f"connector_core.store.{self.name}")
