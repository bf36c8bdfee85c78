"""connector-host: import marketplace orders into one canonical order book.

Plugins write ``from connector_core import hookimpl``.
"""

from connector_core.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "hookspec"]
