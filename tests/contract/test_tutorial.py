"""The plugin tutorial quotes the example plugin's code exactly."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "writing-a-plugin.md"
SOURCES = [
    *sorted((ROOT / "examples" / "acme_bazaar").rglob("*.py")),
    ROOT / "examples" / "acme_bazaar" / "pyproject.toml",
    ROOT / "tests" / "contract" / "test_acme_contract.py",
]


def code_blocks() -> list[str]:
    """The python and toml blocks of the tutorial."""
    return re.findall(r"```(?:python|toml)\n(.*?)\n```", TUTORIAL.read_text(encoding="utf-8"), re.S)


def test_every_code_block_is_quoted_from_the_repository() -> None:
    """Each python/toml block of the tutorial occurs verbatim in the example's files."""
    texts = [path.read_text(encoding="utf-8") for path in SOURCES]
    blocks = code_blocks()
    assert len(blocks) >= 10
    stale = [block.splitlines()[0] for block in blocks if not any(block in text for text in texts)]
    assert stale == []


def test_tutorial_covers_every_hook_of_the_example() -> None:
    """Every hook the example plugin implements is shown in the tutorial."""
    plugin = (ROOT / "examples/acme_bazaar/connector_acme_bazaar/plugin.py").read_text(encoding="utf-8")
    hooks = re.findall(r"@hookimpl\ndef (\w+)", plugin)
    shown = "\n".join(code_blocks())
    assert [h for h in hooks if f"def {h}(" not in shown] == []
    assert len(hooks) == 11
