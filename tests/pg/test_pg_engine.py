"""The engine's tests of tests/core, run again on the PostgreSQL book (this folder's ``book`` and ``engine``).

Sync, accept, cancel, ship, push, e-mail, one bad order or store among good
ones: the same tests, the same assertions, on the other backend. Left out
are the few that look inside SQLite itself (its statement trace, its
PRAGMAs, its file, its connection as a context manager); what they check is
checked on PostgreSQL by tests of its own (tests/pg/test_pg_order_book.py).
"""

from __future__ import annotations

from types import ModuleType

import test_core_engine
import test_core_engine_mail
import test_core_one_bad_thing
import test_core_push_batch
import test_order_path

SQLITE_ONLY = {
    "test_sync_stores_large_pages_in_bulk_mode": "SQLite's WAL checkpoint PRAGMAs",
    "test_a_status_change_is_one_update_of_the_order": "counts statements with sqlite3's trace callback",
    "test_a_recorded_push_is_one_transaction": "counts statements with sqlite3's trace callback",
    "test_a_batch_of_recorded_pushes_is_one_transaction": "counts statements with sqlite3's trace callback",
    "test_a_page_of_auto_accepts_is_claimed_and_recorded_in_one_write_each": "sqlite3's trace callback",
    "test_failed_mail_is_retried_by_a_push_with_nothing_to_push": "uses the sqlite3 connection as a transaction",
    "test_run_goes_on_after_a_store_raises_an_unexpected_error": "opens the book by its SQLite file",
    "test_sync_of_many_stores_reports_an_unexpected_error_and_syncs_the_others": "opens the book by its SQLite file",
}
"""Tests of the modules below not run here, and why."""

MODULES: tuple[ModuleType, ...] = (
    test_core_engine,
    test_core_engine_mail,
    test_core_one_bad_thing,
    test_core_push_batch,
    test_order_path,
)

# The tests and the module-level fixtures they use; this folder's conftest supplies book, engine and host.
for _module in MODULES:
    for _name, _value in vars(_module).items():
        if _name.startswith("_") or _name in SQLITE_ONLY or _name in globals():
            continue
        if (
            _name.startswith("test_")
            or hasattr(_value, "_fixture_function_marker")
            or hasattr(_value, "_pytestfixturefunction")
        ):
            globals()[_name] = _value


def test_every_left_out_test_exists() -> None:
    """A renamed test of tests/core is not silently dropped from this list (nor run nowhere)."""
    names = {name for module in MODULES for name in vars(module) if name.startswith("test_")}
    assert set(SQLITE_ONLY) <= names
    assert sum(name.startswith("test_") for name in globals()) >= 25
