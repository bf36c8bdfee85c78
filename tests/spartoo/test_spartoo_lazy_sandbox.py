"""The Spartoo plugin imports its sandbox (starlette, uvicorn) only when a sandbox is started."""

from __future__ import annotations

import json
import subprocess
import sys

WEB_SERVER = ("starlette", "uvicorn", "python_multipart", "multipart")

#: Prints, as JSON, the web-server modules loaded after each step of ``steps`` (Python statements).
PROBE = """
import json, sys
seen = {}
for label, step in json.loads(sys.argv[1]):
    exec(step)
    seen[label] = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps(seen))
"""


def loaded_after(*steps: tuple[str, str]) -> dict[str, list[str]]:
    """Run ``steps`` in a fresh interpreter; the web-server packages imported after each."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(steps), json.dumps(WEB_SERVER)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_plugin_imports_no_web_server() -> None:
    """``import connector_spartoo.plugin`` loads neither starlette nor uvicorn; asking for the factory does."""
    seen = loaded_after(
        ("plugin", "import connector_spartoo.plugin"),
        ("factory", "connector_spartoo.plugin.sandbox_factory()"),
    )
    assert seen["plugin"] == []
    assert {"starlette", "uvicorn"} <= set(seen["factory"])


def test_cli_commands_import_no_web_server() -> None:
    """Building the CLI with every plugin and running ``plugins`` and ``sandbox --help`` imports no web server."""
    run_cli = (
        "from connector_core.cli import main\n"
        "for argv in (['plugins', '--json'], ['sandbox', '--help'], ['sandbox', 'spartoo', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code in (0, None), (argv, exit.code)\n"
    )
    seen = loaded_after(("cli", run_cli))
    assert seen["cli"] == []


def test_hook_implementations_stay_registered() -> None:
    """The plugin module still carries the sandbox hooks, so the host finds the factory and the command."""
    from connector_spartoo import plugin

    from connector_core.plugins import PluginHost, get_plugin_manager

    host = PluginHost(get_plugin_manager(plugins=[plugin], load_entrypoints=False))
    factory = host.sandbox_factory("spartoo")
    assert callable(factory)
    assert factory.__module__ == "connector_spartoo.sandbox.server"
    assert "register_commands" in {impl.function.__name__ for impl in host.pm.hook.register_commands.get_hookimpls()}
