"""Spartoo store settings: the JSON Schema and the typed value built from it.

The schema is ``connector_spartoo/schemas/settings.schema.json``. Keys a store leaves
out take the schema's defaults (:func:`SpartooSettings.from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from connector_core.errors import SettingsError
from connector_core.http import require_safe_url
from connector_core.secrets import register_secret
from connector_spartoo.schemas import load_schema

#: Every Spartoo country site known, by top-level domain (decision 1).
SITES: tuple[str, ...] = ("com", "co.uk", "it", "es", "de", "eu", "se", "pl", "com.hr", "ch")

#: The currency of each site's prices.
SITE_CURRENCY: dict[str, str] = {
    "com": "EUR",
    "it": "EUR",
    "es": "EUR",
    "de": "EUR",
    "eu": "EUR",
    "com.hr": "EUR",
    "co.uk": "GBP",
    "se": "SEK",
    "pl": "PLN",
    "ch": "CHF",
}

DEFAULT_BASE_URL = "https://sws.spartoo.{site}/mp/"


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of a Spartoo store's settings (partner ID flagged ``x-secret``)."""
    return load_schema("settings")


def _defaults() -> dict[str, Any]:
    props = settings_schema()["properties"]
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}


@attrs.frozen
class SpartooSettings:
    """One store's Spartoo settings, defaults applied and checked."""

    partner_id: str = attrs.field(repr=False)
    sites: tuple[str, ...] = ("com",)
    base_url: str = DEFAULT_BASE_URL
    timezone: str = "Europe/Paris"
    auto_accept: bool = True
    timeout: float = 30.0
    initial_lookback_days: int = 30
    max_document_mb: float = 512.0
    requests_per_hour: int | None = None

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> SpartooSettings:
        """Build from a store's settings dict; absent keys take their default.

        Raises :class:`SettingsError` naming the key to fix. The partner ID is
        registered as a secret so that it is masked wherever it might show.
        """
        defaults = _defaults()
        known = {*defaults, "partner_id"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SettingsError(f"unknown Spartoo setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        partner_id = settings.get("partner_id")
        if not isinstance(partner_id, str) or not partner_id.strip():
            raise SettingsError(
                "partner_id is missing: enter the merchant ID for web services from your Spartoo account"
            )
        register_secret(partner_id)
        values = defaults | {k: v for k, v in settings.items() if v is not None}

        sites = values["sites"]
        if isinstance(sites, str):
            sites = [sites]
        if not isinstance(sites, list | tuple) or not sites:
            raise SettingsError('sites must list at least one Spartoo site, e.g. ["com"]')
        bad = [s for s in sites if s not in SITES]
        if bad:
            raise SettingsError(f"unknown Spartoo site(s) {', '.join(map(str, bad))}; known sites: {', '.join(SITES)}")
        if len(set(sites)) != len(sites):
            raise SettingsError("sites lists a site twice")

        base_url = values["base_url"]
        if not isinstance(base_url, str) or "{site}" not in base_url:
            raise SettingsError(
                "base_url must be a URL template containing {site}, e.g. https://sws.spartoo.{site}/mp/"
            )
        for site in sites:
            require_safe_url(base_url.replace("{site}", site))

        tz = values["timezone"]
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"timezone {tz!r} is not an IANA time zone name such as Europe/Paris") from None

        auto_accept = values["auto_accept"]
        if not isinstance(auto_accept, bool):
            raise SettingsError("auto_accept must be true or false")
        timeout = values["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise SettingsError("timeout must be a number of seconds between 0 and 600")
        lookback = values["initial_lookback_days"]
        if isinstance(lookback, bool) or not isinstance(lookback, int) or not 1 <= lookback <= 3650:
            raise SettingsError("initial_lookback_days must be a whole number of days between 1 and 3650")
        cap = values["max_document_mb"]
        if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0 < cap <= 4096:
            raise SettingsError("max_document_mb must be a number of megabytes above 0 and at most 4096")
        per_hour = values.get("requests_per_hour")
        if per_hour is not None and (isinstance(per_hour, bool) or not isinstance(per_hour, int) or per_hour < 1):
            raise SettingsError("requests_per_hour must be a whole number of requests, 1 or more (or left out)")

        return cls(
            partner_id=partner_id,
            sites=tuple(sites),
            base_url=base_url,
            timezone=str(tz),
            auto_accept=auto_accept,
            timeout=float(timeout),
            initial_lookback_days=lookback,
            max_document_mb=float(cap),
            requests_per_hour=per_hour,
        )

    @property
    def zone(self) -> ZoneInfo:
        """The time zone Spartoo's dates are read and written in."""
        return ZoneInfo(self.timezone)

    def url(self, site: str, script: str) -> str:
        """The URL of ``script`` (e.g. ``xml_export_orders.php``) on ``site``."""
        if site not in self.sites:
            raise SettingsError(f"site {site!r} is not configured for this store (sites: {', '.join(self.sites)})")
        base = self.base_url.replace("{site}", site)
        if not base.endswith("/"):
            base += "/"
        return require_safe_url(base + script)

    @property
    def max_bytes(self) -> int:
        """The size cap of one answer, in bytes."""
        return int(self.max_document_mb * 1024 * 1024)

    def currency(self, site: str) -> str:
        """The currency of ``site``'s prices."""
        return SITE_CURRENCY.get(site, "EUR")
