"""The three distributions build alone and work from their wheels in a fresh venv.

``python -m build`` makes each sdist from its folder, then the wheel from that
sdist in an isolated environment (hatchling comes from the package index), so
a file the wheel needs but the sdist lacks fails here. The venv then gets the
built wheels only (never the checkout): the plugins are installed with
``--no-index --find-links`` so their ``connector-core`` requirement can only
be met by the built core wheel; their third-party requirements come first,
from the index through pip's cache.

The venv tests run in file order: first without the sandbox extra, then with it.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"

#: distribution -> (source folder, package)
DISTRIBUTIONS = {
    "connector-core": (ROOT, "connector_core"),
    "connector-spartoo": (ROOT / "plugins" / "spartoo", "connector_spartoo"),
    "connector-acme-bazaar": (ROOT / "examples" / "acme_bazaar", "connector_acme_bazaar"),
}
OURS = set(DISTRIBUTIONS)
BUILD_TIMEOUT = 600
PIP_TIMEOUT = 900
RUN_TIMEOUT = 300


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``, bounded by ``timeout``; on ``check``, fail with its output when it exits non-zero."""
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def wheel_of(dist_dir: Path, name: str) -> Path:
    """The built wheel of distribution ``name``."""
    return dist_dir / f"{name.replace('-', '_')}-{VERSION}-py3-none-any.whl"


def sdist_of(dist_dir: Path, name: str) -> Path:
    """The built sdist of distribution ``name``."""
    return dist_dir / f"{name.replace('-', '_')}-{VERSION}.tar.gz"


def source_files(package_dir: Path) -> Iterator[Path]:
    """Every file of a source package, byte-compiled caches left out."""
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def requirements_of(wheel: Path, extras: Sequence[str] = ()) -> list[Requirement]:
    """The wheel's ``Requires-Dist`` that apply here with ``extras``."""
    with zipfile.ZipFile(wheel) as archive:
        meta_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(archive.read(meta_name).decode("utf-8"))
    out = []
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            out.append(req)
    return out


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist and a wheel of each distribution, built from its own folder in isolation."""
    out = tmp_path_factory.mktemp("dist")
    for source, _ in DISTRIBUTIONS.values():
        run([sys.executable, "-m", "build", "--outdir", out, source], timeout=BUILD_TIMEOUT)
    return out


def test_every_distribution_builds_an_sdist_and_a_wheel(dist_dir: Path) -> None:
    """``python -m build`` gives exactly one sdist and one wheel per distribution."""
    expected = {p.name for n in DISTRIBUTIONS for p in (wheel_of(dist_dir, n), sdist_of(dist_dir, n))}
    assert {p.name for p in dist_dir.iterdir()} == expected


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_each_wheel_holds_its_own_package_and_nothing_else(dist_dir: Path, name: str) -> None:
    """A wheel's files are its package's source files (plus, for the core, the canonical schemas) and its metadata."""
    source, package = DISTRIBUTIONS[name]
    with zipfile.ZipFile(wheel_of(dist_dir, name)) as archive:
        names = set(archive.namelist())
        info = f"{package}-{VERSION}.dist-info/"
        expected = {f"{package}/{p.relative_to(source / package).as_posix()}" for p in source_files(source / package)}
        if name == "connector-core":
            canonical = ROOT / "schemas" / "canonical"
            expected |= {f"connector_core/_schemas/canonical/{p.name}" for p in source_files(canonical)}
            for path in source_files(canonical):
                assert archive.read(f"connector_core/_schemas/canonical/{path.name}") == path.read_bytes()
        assert {n for n in names if not n.startswith(info)} == expected
        entry_points = archive.read(f"{info}entry_points.txt").decode("utf-8")
    assert f"{package}/py.typed" in names
    if name == "connector-core":
        assert "connector-host = connector_core.cli:main" in entry_points
    else:
        assert f"= {package}.plugin" in entry_points


def test_plugin_wheels_carry_their_data_files(dist_dir: Path) -> None:
    """The Spartoo wheel holds its JSON Schemas and code lists, the Acme wheel its order schema."""
    with zipfile.ZipFile(wheel_of(dist_dir, "connector-spartoo")) as archive:
        spartoo = set(archive.namelist())
        order = json.loads(archive.read("connector_spartoo/schemas/order.schema.json"))
    assert {
        "connector_spartoo/schemas/order.schema.json",
        "connector_spartoo/schemas/settings.schema.json",
        "connector_spartoo/sandbox/spartoo_code_lists.json",
    } <= spartoo
    assert order["$id"].endswith("/spartoo/order.schema.json")
    with zipfile.ZipFile(wheel_of(dist_dir, "connector-acme-bazaar")) as archive:
        assert "connector_acme_bazaar/order.schema.json" in archive.namelist()


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_each_sdist_holds_no_other_distribution(dist_dir: Path, name: str) -> None:
    """An sdist carries its own package and metadata only: no other package, no tests, no virtualenv."""
    _, package = DISTRIBUTIONS[name]
    others = {p for _, p in DISTRIBUTIONS.values()} - {package}
    with tarfile.open(sdist_of(dist_dir, name)) as archive:
        parts = [Path(m.name).parts[1:] for m in archive.getmembers() if m.isfile()]
    tops = {p[0] for p in parts if p}
    assert package in tops
    assert tops.isdisjoint(others | {"tests", ".venv", "plugins", "examples", "bench", "docs"})


def clean_env(home: Path) -> dict[str, str]:
    """The environment of the fresh venv's commands: nothing from this checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_HOST", "PYTHON", "VIRTUAL_ENV"))}
    env["XDG_DATA_HOME"] = str(home / "data")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def venv(dist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the three built wheels installed, without the sandbox extras."""
    home = tmp_path_factory.mktemp("venv")
    target = home / "venv"
    env = clean_env(home)
    run([sys.executable, "-m", "venv", target], timeout=RUN_TIMEOUT, env=env)
    pip = [target / "bin" / "python", "-m", "pip", "install", "-q"]
    third_party = sorted(
        {str(r) for n in DISTRIBUTIONS for r in requirements_of(wheel_of(dist_dir, n)) if r.name not in OURS}
    )
    # third-party requirements: from the local find-links and pip's cache alone when they hold them all, else the index
    offline = run([*pip, "--no-index", *third_party], timeout=PIP_TIMEOUT, env=env, check=False)
    if offline.returncode != 0:
        run([*pip, *third_party], timeout=PIP_TIMEOUT, env=env)
    # ours: connector-core can only come from the built wheel
    ours = ["--no-index", "--find-links", dist_dir, "connector-spartoo", "connector-acme-bazaar"]
    run([*pip, *ours], timeout=PIP_TIMEOUT, env=env)
    return target


def host(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the venv's ``connector-host`` from a folder outside the checkout."""
    command = [venv / "bin" / "connector-host", *args]
    return run(command, timeout=RUN_TIMEOUT, env=clean_env(venv.parent), cwd=venv.parent, check=check)


def test_the_venv_runs_the_built_wheels_not_the_checkout(venv: Path) -> None:
    """connector_core and both plugins are imported from the venv's site-packages, installed from wheels."""
    probe = (
        "import json, importlib.metadata as md, connector_core, connector_spartoo, connector_acme_bazaar\n"
        "from connector_core.schema_registry import schema_root\n"
        "mods = [connector_core, connector_spartoo, connector_acme_bazaar]\n"
        "print(json.dumps({'files': [m.__file__ for m in mods], 'schemas': str(schema_root()),\n"
        "  'installers': [md.distribution(n).read_text('INSTALLER') for n in\n"
        "                 ('connector-core', 'connector-spartoo', 'connector-acme-bazaar')],\n"
        "  'direct': [md.distribution(n).read_text('direct_url.json') for n in\n"
        "             ('connector-core', 'connector-spartoo', 'connector-acme-bazaar')]}))"
    )
    done = run([venv / "bin" / "python", "-c", probe], timeout=RUN_TIMEOUT, env=clean_env(venv.parent), cwd=venv.parent)
    seen = json.loads(done.stdout)
    site = str(venv.resolve())
    assert all(str(Path(f).resolve()).startswith(site) for f in seen["files"]), seen["files"]
    assert Path(seen["schemas"]).resolve().is_relative_to(venv.resolve())
    assert [i.strip() for i in seen["installers"]] == ["pip", "pip", "pip"]
    assert seen["direct"] == [None, None, None]  # from --find-links, not a path or an editable checkout


def test_without_the_sandbox_extra_the_plugins_load(venv: Path) -> None:
    """With no starlette or uvicorn in the venv, ``connector-host plugins`` lists both plugins."""
    probe = "import importlib.util as u; print(u.find_spec('starlette'), u.find_spec('uvicorn'))"
    absent = run([venv / "bin" / "python", "-c", probe], timeout=RUN_TIMEOUT, env=clean_env(venv.parent))
    assert absent.stdout.split() == ["None", "None"]
    listed = json.loads(host(venv, "plugins", "--json").stdout)
    assert {"spartoo", "acme"} <= {p["name"] for p in listed}


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("demo",), "connector-spartoo[sandbox]"),
        (("sandbox", "spartoo"), "connector-spartoo[sandbox]"),
        (("demo", "acme"), "connector-acme-bazaar[sandbox]"),
    ],
)
def test_without_the_sandbox_extra_a_sandbox_names_the_extra(venv: Path, args: tuple[str, ...], extra: str) -> None:
    """Starting a sandbox without the extra exits 1 with one line naming the extra to install."""
    done = host(venv, *args, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert f"pip install '{extra}'" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.fixture(scope="module")
def venv_with_sandbox(venv: Path, dist_dir: Path) -> Path:
    """The same venv once ``connector-spartoo[sandbox]`` is installed (the core already there)."""
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--find-links", dist_dir]
    run([*pip, "connector-spartoo[sandbox]"], timeout=PIP_TIMEOUT, env=clean_env(venv.parent))
    return venv


def test_demo_runs_from_the_built_wheels(venv_with_sandbox: Path) -> None:
    """``connector-host demo`` from the wheels imports the sandbox's orders and pushes every shipment it makes."""
    done = host(venv_with_sandbox, "demo", "--orders", "12", "--ship", "3")
    out = done.stdout
    imported = re.search(r"^orders imported: (\d+) new", out, re.M)
    pushed = re.search(r"^shipments pushed: (\d+) of (\d+)(.*)$", out, re.M)
    assert imported is not None, out
    assert pushed is not None, out
    assert int(imported.group(1)) > 0
    assert int(pushed.group(1)) == int(pushed.group(2)) == 3
    assert "failed" not in pushed.group(3)
    assert len(re.findall(r"^  \S+: status 3, tracking number DEMO\d+$", out, re.M)) == 3, out
