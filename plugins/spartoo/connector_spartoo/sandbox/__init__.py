"""A local stand-in for Spartoo's seller web service (see ``plugins/spartoo/SANDBOX.md``).

The server (``app``, ``server``) needs the ``sandbox`` extra of
connector-spartoo (starlette, uvicorn, python-multipart); the plugin itself
does not, so ``hooks`` imports the server only when a sandbox is started.
"""

from __future__ import annotations

from importlib.util import find_spec

from connector_core.errors import ConfigError

EXTRA = "connector-spartoo[sandbox]"
"""What to install for the sandbox."""

#: The extra's distributions and their import names (python-multipart: either name, by version).
_NEEDED = {"starlette": ("starlette",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart")}


def require_extra() -> None:
    """Raise a one-line :class:`ConfigError` naming the extra when a sandbox dependency is missing."""
    missing = [dist for dist, names in _NEEDED.items() if all(find_spec(name) is None for name in names)]
    if missing:
        raise ConfigError(
            f"the Spartoo sandbox needs {', '.join(missing)}, which are not installed: pip install '{EXTRA}'"
        )
