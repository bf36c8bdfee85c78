"""Local faults and input: a --db that is not an order book, a full disk, bad settings input, secrets in argv."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from bazaar_plugin import TOKEN, Bazaar, make_order
from click.testing import CliRunner, Result

from connector_core.cli import App, build_cli, cli
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import StoreError
from connector_core.plugins import PluginHost

Run = Callable[..., Result]


@pytest.fixture
def run(host: PluginHost, db_path: Path) -> Run:
    """Run one command on the Bazaar host; ``db`` picks another order book, ``book`` an open one."""
    build_cli(host)
    db_path.parent.mkdir(parents=True, exist_ok=True)  # --db refuses a folder that does not exist

    def invoke(*args: str, db: Path | None = None, book: OrderBook | None = None, **kw: object) -> Result:
        app = App(host_factory=lambda: host, book=book) if book is not None else App(host_factory=lambda: host)
        result = CliRunner().invoke(cli, ["--db", str(db or db_path), *args], obj=app, **kw)  # type: ignore[arg-type]
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_plain_file_as_db_is_refused_untouched(run: Run, tmp_path: Path) -> None:
    """--db on a text file: one-line error; the file keeps its bytes and its 0644 mode."""
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"my notes\n")
    plain.chmod(0o644)
    line = _one_error_line(run("stores", "list", db=plain))
    assert "not an order book" in line
    assert plain.read_bytes() == b"my notes\n"
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_another_sqlite_database_as_db_is_refused_untouched(run: Run, tmp_path: Path) -> None:
    """--db on another application's SQLite file: one-line error; no table is added, the mode is kept."""
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    other.chmod(0o644)
    line = _one_error_line(run("stores", "list", db=other))
    assert "not an order book" in line
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["recipes"]
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


def _fill(book: OrderBook) -> None:
    """Make the book's file full: no page may be added (SQLite answers SQLITE_FULL, as on a full disk)."""
    book.conn.execute("VACUUM")  # nor any free page reused: a fresh book has the pages of an index it dropped
    pages = book.conn.execute("PRAGMA page_count").fetchone()[0]
    book.conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_is_one_store_error_and_loses_nothing(host: PluginHost, bazaar: Bazaar, book: OrderBook) -> None:
    """A sync that cannot write (SQLITE_FULL) raises StoreError 'disk full'; what was stored before stays."""
    book.add_store("shop", "bazaar", {"token": TOKEN})
    engine = Engine(host, book)
    engine.sync("shop")
    bazaar.orders.extend(make_order(i) for i in range(6, 400))
    _fill(book)
    with pytest.raises(StoreError, match="disk full: free some space"):
        engine.sync("shop")
    assert book.count_orders("shop") == 5


def test_a_full_disk_is_one_line_in_the_cli(run: Run, bazaar: Bazaar, db_path: Path) -> None:
    """The CLI shows a full disk as one line 'error: ... disk full ...', exit 1, no traceback."""
    assert (
        run(
            "stores", "add", "bazaar", "--name", "shop", "--set-from-env", "token=BZ_TOKEN", env={"BZ_TOKEN": TOKEN}
        ).exit_code
        == 0
    )
    bazaar.orders.extend(make_order(i) for i in range(6, 400))
    with OrderBook(db_path) as book:
        _fill(book)
        line = _one_error_line(run("sync", book=book))
    assert "disk full" in line


def test_infinite_and_nan_settings_are_one_line_errors(run: Run) -> None:
    """--set fee_rate=Infinity and smtp.timeout=sNaN are refused in one line each; nothing is saved."""
    args = ("stores", "add", "bazaar", "--name", "x", "--set-from-env", "token=BZ", "--set", "fee_rate=Infinity")
    line = _one_error_line(run(*args, env={"BZ": TOKEN}))
    assert "fee_rate takes a finite number" in line
    assert (
        run("stores", "add", "bazaar", "--name", "shop", "--set-from-env", "token=BZ", env={"BZ": TOKEN}).exit_code == 0
    )
    line = _one_error_line(run("stores", "settings", "shop", "--set", "smtp.timeout=sNaN"))
    assert "smtp.timeout" in line and "finite" in line


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"token": "caf\xe9"}', "not UTF-8"),
        ('{"token": "x"}'.encode("utf-16"), "UTF-16"),
        (b"[" * 100_000 + b"]" * 100_000, "nests"),
    ],
    ids=["latin-1", "utf-16", "100k-deep"],
)
def test_bad_settings_files_are_one_line_errors(run: Run, tmp_path: Path, content: bytes, says: str) -> None:
    """A settings file that is not UTF-8, is UTF-16 or nests 100,000 levels deep is a one-line error."""
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    assert says in _one_error_line(run("stores", "add", "bazaar", "--name", "x", "--settings", str(path)))


def test_a_secret_given_with_set_is_warned_about(run: Run) -> None:
    """--set token=... still works but warns that argv is visible in ps, naming the ways that are not."""
    result = run("stores", "add", "bazaar", "--name", "shop", "--set", f"token={TOKEN}")
    assert result.exit_code == 0
    assert "warning: token given with --set is visible to every user in `ps`" in result.stderr
    assert "--secret token" in result.stderr and TOKEN not in result.stderr + result.output


def test_a_secret_read_from_stdin_or_the_environment_never_touches_argv(run: Run, db_path: Path) -> None:
    """--secret token reads stdin, --set-from-env token=VAR the environment; no warning, the store works."""
    result = run("stores", "add", "bazaar", "--name", "one", "--secret", "token", input=TOKEN + "\n")
    assert result.exit_code == 0 and "warning" not in result.stderr
    result = run(
        "stores", "add", "bazaar", "--name", "two", "--set-from-env", "token=BZ_TOKEN", env={"BZ_TOKEN": TOKEN}
    )
    assert result.exit_code == 0 and "warning" not in result.stderr
    with OrderBook(db_path) as book:
        assert book.get_store("one").settings["token"] == book.get_store("two").settings["token"] == TOKEN
    line = _one_error_line(run("stores", "add", "bazaar", "--name", "three", "--set-from-env", "token=NOPE_UNSET"))
    assert "NOPE_UNSET is not set" in line
