"""Spartoo hook implementations (skeleton: filled in by the Spartoo plugin work)."""

from __future__ import annotations

from connector_core import hookimpl
from connector_core.models import MarketplaceInfo
from connector_spartoo import __version__


@hookimpl
def marketplace_info() -> MarketplaceInfo:
    return MarketplaceInfo(
        name="spartoo",
        version=__version__,
        title="Spartoo",
        settings_schema={
            "type": "object",
            "required": ["partner_id"],
            "properties": {"partner_id": {"type": "string", "x-secret": True}},
        },
    )
