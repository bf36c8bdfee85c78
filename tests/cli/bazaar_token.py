"""The Bazaar test plugin's token, for tests of this folder that run it in a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))

from bazaar_plugin import TOKEN

__all__ = ["TOKEN"]
