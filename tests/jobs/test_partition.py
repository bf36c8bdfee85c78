"""A worker cut off from the network in the middle of a sync: the server frees its lease, another worker finishes.

The worker runs in a network namespace of its own, joined to the host by a
veth pair; the PostgreSQL cluster and the Spartoo sandbox listen on the
host end as well as on loopback (inside the namespace a small forwarder,
``tcpforward.py``, gives the sandbox a loopback address, as the host speaks
plain HTTP to loopback only). Taking the link down is a partition, not a
crash: the worker's process lives on, its TCP connections simply go silent.
The server's keepalive settings (a second idle, a second between probes,
two probes) make it notice the dead peer within seconds and end those
sessions, and with them the session-level advisory lock that is the
store's lease. The job is then put back in the queue and done by a worker
on the host, and the book holds each order once.

The last test ends the lease's session alone, the worker's other
connections untouched: the worker's next lease check asks the server, finds
the session gone and stops the push with at most the shipment in hand sent.

The partition needs root (or CAP_NET_ADMIN) for ``ip netns``; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgcluster import ENV, cluster, new_database
from workerkit import Worker, add_store, book_orders, jobs, query, ship_all, store_lock_of, store_locks, wait_for

from connector_core.db.postgres.leases import LEASE_SPACE
from connector_core.jobs import defer_push, defer_sync, make_app, retry_stalled

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")
pytestmark = pytest.mark.slow

STALE = 12.0
"""Seconds without a heartbeat after which the test retries a job: more than procrastinate's 10 s beat."""


@dataclass(frozen=True)
class Link:
    """A network namespace and the veth pair joining it to the host."""

    ns: str
    host_dev: str
    ns_dev: str
    host_ip: str
    ns_ip: str
    subnet: str

    def in_ns(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *cmd]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def link() -> Iterator[Link]:
    """A fresh namespace ``chw…`` with ``10.213.N.2`` inside and ``10.213.N.1`` on the host; removed afterwards."""
    if os.environ.get(ENV):
        pytest.skip(f"${ENV} names an outside server, which cannot be made to listen on the test's veth address")
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is missing")
    tag = uuid.uuid4().hex[:6]
    net = random.randrange(1, 255)
    found = Link(
        ns=f"chw{tag}",
        host_dev=f"chwh{tag}",
        ns_dev=f"chwn{tag}",
        host_ip=f"10.213.{net}.1",
        ns_ip=f"10.213.{net}.2",
        subnet=f"10.213.{net}.0/24",
    )
    try:
        _ip("netns", "add", found.ns)
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip() or f"exit {exc.returncode}"
        pytest.skip(f"`ip netns add` is not permitted here (needs root or CAP_NET_ADMIN): {reason}")
    try:
        try:
            _ip("link", "add", found.host_dev, "type", "veth", "peer", "name", found.ns_dev)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot create a veth pair: {exc.stderr.decode(errors='replace').strip()}")
        _ip("link", "set", found.ns_dev, "netns", found.ns)
        _ip("addr", "add", f"{found.host_ip}/24", "dev", found.host_dev)
        _ip("link", "set", found.host_dev, "up")
        _ip("netns", "exec", found.ns, "ip", "addr", "add", f"{found.ns_ip}/24", "dev", found.ns_dev)
        _ip("netns", "exec", found.ns, "ip", "link", "set", found.ns_dev, "up")
        _ip("netns", "exec", found.ns, "ip", "link", "set", "lo", "up")
        yield found
    finally:
        # Deleting the namespace takes its veth end, and so the pair, with it; the host end is removed in case not.
        subprocess.run(["ip", "link", "del", found.host_dev], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", found.ns], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pg_reachable(link: Link) -> Iterator[str]:
    """A cluster also listening on the host end of the veth, quick to drop a silent peer (superuser URL)."""
    keepalive = {
        "tcp_keepalives_idle": 1,
        "tcp_keepalives_interval": 1,
        "tcp_keepalives_count": 2,
        "tcp_user_timeout": 3000,  # ms: unacknowledged data counts too, not only an idle line
    }
    with cluster(listen=[link.host_ip], hba=[f"host all all {link.subnet} trust"], settings=keepalive) as url:
        yield url


@contextmanager
def also_listening(sandbox: Any, host: str) -> Iterator[None]:
    """A second server of the same sandbox state on ``host`` (same port): one set of orders and counters."""
    import uvicorn
    from connector_spartoo.sandbox.app import build_app

    port = int(sandbox.url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        build_app(sandbox.state), host=host, port=port, lifespan="off", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sandbox-on-veth", daemon=True)
    thread.start()
    try:
        wait_for(f"the sandbox to listen on {host}:{port}", lambda: server.started or not thread.is_alive(), 30)
        assert server.started, f"the sandbox could not listen on {host}:{port}"
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def forwarder(link: Link, port: int) -> Iterator[None]:
    """``127.0.0.1:port`` inside the namespace forwarded over the veth to the host's ``port``."""
    script = Path(__file__).with_name("tcpforward.py")
    cmd = link.in_ns(sys.executable, str(script), "127.0.0.1", str(port), link.host_ip, str(port))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline().decode(errors="replace") if ready else ""
        assert line.strip() == "ready", f"the forwarder in {link.ns} did not start: {line!r}"
        yield
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_partitioned_worker_loses_its_lease_and_another_finishes_its_sync(
    link: Link, pg_reachable: str, tmp_path: Path
) -> None:
    server = pg_reachable
    book, queue = new_database(server), new_database(server)
    app = make_app(queue)
    with app.open():
        app.schema_manager.apply_schema()

    def via_veth(url: str) -> str:
        return url.replace("@127.0.0.1:", f"@{link.host_ip}:", 1)

    store = "slow"
    with (
        sandbox_server.SpartooSandbox(orders=60, sites=["com"], seed=31, latency=250, history_days=20) as sb,
        also_listening(sb, link.host_ip),
        forwarder(link, int(sb.url.rsplit(":", 1)[1])),
    ):
        add_store(book, store, sb.settings(), tmp_path)
        with app.open():
            job = defer_sync(app, store)
        assert job is not None
        cut_off = Worker(via_veth(book), via_veth(queue), tmp_path / "cut-off.log", prefix=link.in_ns())
        rescuer: Worker | None = None
        try:

            def holding() -> int | None:
                running = [i for i, _, _, status, _, _ in jobs(queue) if status == "doing"] == [job]
                accepted = sum(int(o["update_count"]) for o in sb.orders())
                held = store_lock_of(book, store)
                return held[0] if running and accepted > 0 and held else None

            lock_pid = wait_for("the namespaced worker's sync under way, its lease held", holding, 90)
            # the lease is held over the veth: its session's client is the namespace's address
            assert query(server, "SELECT host(client_addr) FROM pg_stat_activity WHERE pid = %s", (lock_pid,)) == [
                (link.ns_ip,)
            ]

            subprocess.run(link.in_ns("ip", "link", "set", link.ns_dev, "down"), check=True, timeout=30)

            wait_for(f"the server to drop {store}'s lease", lambda: not store_lock_of(book, store), 60)

            def sessions_left() -> int:
                sql = "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = %s"
                return int(query(server, sql, (link.ns_ip,))[0][0])

            # then every session of the cut-off worker ends (its book connection, its queue pool) as the server
            # gives up on each silent peer
            wait_for("the server to end every session of the cut-off worker", lambda: sessions_left() == 0, 60)
            assert cut_off.proc.poll() is None, cut_off.tail()  # a partition, not a crash: the process lives on

            async def retry() -> list[int]:
                async with app.open_async():
                    return await retry_stalled(app, seconds_since_heartbeat=STALE)

            def retried() -> list[int]:
                import asyncio

                return asyncio.run(retry())

            assert wait_for("the cut-off worker's job to count as stalled", retried, STALE + 40, poll=1) == [job]
            kept = len(book_orders(book).get(store, []))
            assert kept > 0  # the cut-off worker had stored its page: the rescuer goes on from there
            rescuer = Worker(book, queue, tmp_path / "rescuer.log")
            wait_for(
                "the second worker to finish the sync",
                lambda: [s for i, _, _, s, _, _ in jobs(queue) if i == job] == ["succeeded"],
                120,
            )
        finally:
            if rescuer is not None:
                rescuer.stop()
            cut_off.kill()

        assert book_orders(book)[store] == sorted(sb.expected_orders())  # each order once
        # the accepts cut off in flight were not sent again by the rescuer: one request per change, one at most
        accepts = [(int(o["update_requests"]), int(o["update_count"])) for o in sb.orders()]
        assert all(sent == changed <= 1 for sent, changed in accepts), accepts
        assert [(s, a) for i, _, _, s, a, _ in jobs(queue) if i == job] == [("succeeded", 2)]
        assert store_locks(server) == []
        history = query(book, "SELECT state FROM runs WHERE store = %s AND kind = 'sync' ORDER BY id", (store,))
        # the rescuer's run is done; the cut-off one, which never got to write its end, was ended by it
        assert history[-2:] == [("interrupted",), ("done",)]


def test_a_worker_whose_lease_session_ends_stops_pushing_that_store(
    pg_server: str, queue_url: str, tmp_path: Path
) -> None:
    """Only the lease's own session is lost (ended by the server, as an idle-session timeout or a NAT would):
    the lock is free, another host may take the store, so the worker must push at most the shipment in hand."""
    book, store = new_database(pg_server), "sp"
    app = make_app(queue_url)
    with sandbox_server.SpartooSandbox(orders=40, sites=["com"], seed=33, latency=150, history_days=20) as sb:
        add_store(book, store, sb.settings(), tmp_path)
        with app.open():
            defer_sync(app, store)
        worker = Worker(book, queue_url, tmp_path / "worker.log")
        try:
            wait_for("the sync", lambda: [s for *_, s, _, _ in jobs(queue_url)] == ["succeeded"], 90)
            planned = ship_all(book, store, "L")
            assert len(planned) >= 10
            with app.open():
                push = defer_push(app, store)

            def shipped() -> int:
                return sum(1 for o in sb.orders() if o["order_key"] in planned and o["status"] == "3")

            def pushing() -> int | None:
                held = store_lock_of(book, store)
                doing = [i for i, *_, s, _, _ in jobs(queue_url) if s == "doing"] == [push]
                return held[0] if doing and held and shipped() > 0 else None

            lease_pid = wait_for("the push under way", pushing, 60, poll=0.05)
            with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as other:
                assert other.execute("SELECT pg_terminate_backend(%s)", (lease_pid,)).fetchone() == (True,)
                # the store is free: another host takes it, as the lease promises it may
                key = ("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LEASE_SPACE, f"store:{store}"))
                assert wait_for("the lock free", lambda: other.execute(*key).fetchone()[0], 10)
                at_loss = shipped()
                wait_for(
                    "the push job to end",
                    lambda: [s for i, *_, s, _, _ in jobs(queue_url) if i == push] in (["succeeded"], ["failed"]),
                    90,
                )
                after = shipped()
        finally:
            worker.stop()
        ended = [s for i, *_, s, _, _ in jobs(queue_url) if i == push]
        assert after <= at_loss + 1, (
            f"{after - at_loss} of {len(planned)} shipments pushed after the lease was lost, job {ended}"
        )
