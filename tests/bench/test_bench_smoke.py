"""The benchmark scripts still run: their building blocks on a few hundred orders (no timing asserted)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench scripts import each other as top-level modules, as ``bench/run.py`` does."""
    monkeypatch.syspath_prepend(str(BENCH))


def test_floor_stores_one_raw_row_per_order(tmp_path: Path) -> None:
    """The floor parses a sandbox export and stores exactly one row per order, keyed by orders_id."""
    from common import spartoo_document, spartoo_order_book
    from floor import run_floor

    document = spartoo_document(300)
    chunks = [document[i : i + 4096] for i in range(0, len(document), 4096)]
    result = run_floor([chunks], tmp_path / "floor.sqlite3")
    assert (result.orders, result.bytes) == (300, len(document))
    with sqlite3.connect(tmp_path / "floor.sqlite3") as conn:
        ids = {row[0] for row in conn.execute("SELECT orders_id FROM raw_orders")}
    conn.close()
    book = spartoo_order_book(300)
    assert ids == {book.orders_id(i) for i in range(300)}


def test_validation_benchmark_reports_every_schema() -> None:
    """The validation benchmark times raw and canonical orders and names the backend it measured."""
    import validation

    raws, canonical = validation.spartoo_records(200)
    assert len(raws) == 200 and 150 <= len(canonical) <= 200
    reg = validation.registry_with_spartoo()
    result = validation.bench_schema(reg, "spartoo/raw", raws[:50], quick=True)
    assert result["records"] == 50
    assert result["backend"] == reg.backend_for("spartoo/raw")
    assert result["engine_us"] > 0 and result["reused_jsonschema_us"] > 0
    assert "spartoo/raw" in validation.report([result])


@pytest.mark.skipif(sys.platform != "linux", reason="the suite reads peak RSS from /proc")
def test_import_and_floor_children_agree_on_the_same_sandbox(tmp_path: Path) -> None:
    """The import and floor children, against one sandbox process, see the same orders."""
    from common import run_child
    from scenarios import sandbox_process

    with sandbox_process(orders=300) as sandbox:
        common = ["--url", sandbox["url"], "--partner", sandbox["partner_ids"][0]]
        floor = run_child("floor", *common, "--db", str(tmp_path / "floor.sqlite3"), timeout=300)
        pipeline = run_child("import", *common, "--db", str(tmp_path / "import.sqlite3"), timeout=300)
    assert floor["orders"] == floor["http_orders"] == 300
    assert pipeline["fetched"] == 300
    assert pipeline["stored"] + pipeline["rejected"] == 300
    assert pipeline["peak_rss_mb"] > 0 and floor["peak_rss_mb"] > 0


def test_pyspy_summary_counts_each_stack_for_its_innermost_process() -> None:
    """pyspy_top splits samples by the innermost process a stack names and adds up a function's lines."""
    from pyspy_top import summarise

    lines = [
        'process 1:"host";main (a.py:1);sync (e.py:10);save (s.py:5) 30',
        'process 1:"host";main (a.py:1);sync (e.py:12);parse (x.py:7) 20',
        'process 1:"host";main (a.py:1);fork (w.py:3);process 2:"worker";serve (w.py:9);map (m.py:4) 50',
        "not a profile line",
    ]
    summary = summarise(lines)
    assert set(summary) == {'process 1:"host"', 'process 2:"worker"'}
    total, inclusive, own = summary['process 1:"host"']
    assert total == 50 and inclusive["sync (e.py)"] == 50 and own["save (s.py)"] == 30
    total, inclusive, own = summary['process 2:"worker"']
    assert total == 50 and own == {"map (m.py)": 50} and "main (a.py)" not in inclusive


def test_web_benchmark_measures_every_page(tmp_path: Path) -> None:
    """The web benchmark builds a book, logs in and reports a median for each page (no timing asserted)."""
    import web

    path = tmp_path / "web.sqlite3"
    book = web.build_book(path, 120)
    assert book["orders"] + book["rejected"] == 120
    results = web.measure(path, 2, book["key"], book["sku"])
    assert "orders list (page 1 of all)" in results and len(results) == 7
    for r in results.values():
        assert r["median_ms"] > 0 and abs(r["ratio_to_target"] - r["median_ms"] / 200) < 0.001


def test_http_cost_reports_both_clients_at_each_latency(capsys: pytest.CaptureFixture[str]) -> None:
    """The per-request CPU benchmark measures bare httpx and the host's client, each answer awaited."""
    import json

    import http_cost

    assert http_cost.main(["--requests", "30", "--latency", "0,5"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["client"], r["latency_ms"]) for r in lines] == [
        ("httpx.Client.post", 0.0),
        ("RetryingClient.request", 0.0),
        ("httpx.Client.post", 5.0),
        ("RetryingClient.request", 5.0),
    ]
    assert all(r["requests"] >= 30 and r["wall_ms"] > 0 for r in lines)
    assert all(r["wall_ms"] >= 5 for r in lines if r["latency_ms"] == 5.0)  # each answer waited its latency


def test_pipe_cost_measures_both_pipes(capsys: pytest.CaptureFixture[str]) -> None:
    """The pipe benchmark echoes a message through each pipe and reports both."""
    import pipe_cost

    assert pipe_cost.main(["--size", "300000", "--rounds", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("message 300,000 bytes, 3 rounds")
    names = [line.split(" write ")[0].strip() for line in out[1:]]
    assert names == ["socket pair (map workers)", "multiprocessing.Pipe"]


def test_partitioned_experiment_stores_what_the_import_stores(capsys: pytest.CaptureFixture[str]) -> None:
    """The site-partitioned experiment fetches, maps and stores the same orders as the real import."""
    import json

    import partitioned

    assert partitioned.main(["--orders", "300", "--runs", "sites,import"]) == 0
    sites, real = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (sites["run"], real["run"]) == ("sites", "import")
    assert sites["fetched"] == real["fetched"] == 300
    assert sites["stored"] == real["stored"] > 0
    assert sites["worker_cpu_seconds"] > 0


def test_store_cost_saves_every_row_under_each_variant(capsys: pytest.CaptureFixture[str]) -> None:
    """The storing benchmark writes the mapped rows under each variant (it stops if a book misses one)."""
    import store_cost

    assert store_cost.main(["--orders", "300", "--rounds", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("rows in pages of 300; microseconds per order (CPU / wall)")
    assert [line.split("  ")[2].strip() for line in out[2:]] == list(store_cost.VARIANTS)


def test_map_cost_reports_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    """The worker-stage benchmark maps sandbox orders and prints one positive figure per stage."""
    import map_cost

    assert map_cost.main(["--orders", "60", "--repeat", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("best of 1; CPU microseconds per order")
    assert int(out[0].split()[0]) > 40  # the sandbox's mappable orders, not the rejects
    figures = {line.rsplit(maxsplit=1)[0].strip(): float(line.rsplit(maxsplit=1)[1]) for line in out[1:]}
    assert "map_order, page hooks" in figures and "pipe: sorted bytes each, worker" in figures
    assert len(figures) == 17 and all(v > 0 for v in figures.values())


def test_waits_reports_each_sync_and_the_workers_side() -> None:
    """The waits benchmark syncs through a map worker and prints both sides' figures (its own process: it patches)."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "bench" / "waits.py"
    done = subprocess.run(
        [sys.executable, str(script), "--orders", "1500", "--syncs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    syncs = [line for line in done.stdout.splitlines() if line.startswith("sync ")]
    assert [line.split(":")[0] for line in syncs] == ["sync 1", "sync 2"]
    assert all("1,500 orders in" in line and "pages mapped by the host" in line for line in syncs)
    assert all(" full passes" in line for line in syncs)  # the host collector's figures
    assert done.stdout.count("  worker: CPU ") == 2  # one worker per sync, each reporting when its pipe closed


def test_accept_cost_compares_two_interpreters_on_the_same_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    """The accept benchmark syncs with auto-accept off and on under each side and names the difference."""
    import accept_cost

    assert accept_cost.main(["--before", sys.executable, "--orders", "150", "--rounds", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    rounds = [line for line in out if line.startswith("# round 1, ")]
    assert [line.split(":")[0] for line in rounds] == ["# round 1, before", "# round 1, after"]
    accepted = next(line for line in out if line.startswith("| orders accepted |"))
    before, after = (int(cell) for cell in accepted.strip("|").split("|")[1:3])
    assert before == after > 0  # the same sandbox accepts the same orders on both sides
    assert out[-1].startswith("per auto-accepted order the host spends ") and "1 in flight, 0 ms latency" in out[-1]


def test_accept_cost_names_a_child_that_cannot_run() -> None:
    """A ``--before`` that is not an interpreter is one line saying so, not a traceback."""
    import accept_cost

    with pytest.raises(SystemExit, match="cannot run /nonexistent/python: No such file or directory"):
        accept_cost.main(["--before", "/nonexistent/python", "--orders", "10", "--rounds", "1"])
