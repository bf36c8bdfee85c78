"""The sandbox's fixed test identities and limits, importable without starlette or uvicorn.

``connector-host sandbox spartoo`` shows them in its options' help, which is
built on every ``connector-host`` command, so they cannot live next to the
web app.
"""

from __future__ import annotations

DEFAULT_PARTNER_ID = "5A4DB0C0FFEE0001"
"""The sandbox's public test partner ID (not a secret: it only opens this sandbox)."""
DEACTIVATED_PARTNER_ID = "5A4DB0C0FFEE0428"
"""A partner ID the sandbox knows but treats as deactivated (answers -428)."""
DEFAULT_QUOTA_PER_HOUR = 1_000_000
"""Requests per partner per clock hour before -429 (Spartoo's real quota is unknown)."""
