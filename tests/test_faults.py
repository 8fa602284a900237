"""Faults in the production topology (tests/topology.py): a worker killed in the middle of a
rebuild, Redis flushed and its connections cut while events flow, the database unreachable.
After each, every event that got a 2xx is in the ledger exactly once with the points it was
answered with, every balance is the sum of its ledger, and the boards are exact."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time

from rq.job import Job

from .partner_api import shift

FAST_RECOVERY = {  # seconds: so that a killed job is retried within the test's patience
    "JOB_HEARTBEAT_SECONDS": "6",
    "WORKER_MAINTENANCE_SECONDS": "5",
    "REBUILD_LEASE_SECONDS": "8",
}


def _member(t, auth, ref: str = "f1") -> None:
    status, body = t.call(
        "PUT", f"/api/v1/members/{ref}", {"name": "赵小军", "primary_org": "sx.dt"}, auth
    )
    assert status == 201, body


def _post(t, auth, event_id: str, acked: dict, ref: str = "f1", days_ago: float = 1) -> int:
    status, body = t.call("POST", "/api/v1/events", shift(event_id, ref, days_ago=days_ago), auth)
    if status in (200, 201):
        acked[event_id] = json.loads(body)["points"]
    return status


def _until(condition, seconds: float, what: str, t) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds} s\n{t.text()[-4000:]}")
        time.sleep(0.5)


def _many_members(t, members: int, entries: int) -> None:
    """Members with ledger entries written straight into the database, so that a rebuild
    takes some seconds. Each balance is the sum of its entries (they are not hash-chained:
    this test checks sums, `ledger verify` is not run on them)."""
    t.sql(
        "INSERT INTO members (display_name, party_member, primary_org_id, tags, balance, "
        "lifetime_points, ledger_seq, ledger_head, version, progress, hidden, no_phone_merge, "
        "created_at, updated_at) SELECT 'bulk ' || g, false, o.id, '[]', %s, %s, %s, '', 0, "
        "'{}', false, false, now(), now() FROM generate_series(1, %s) g, organisations o "
        "WHERE o.code = 'sx.dt'",
        10 * entries, 10 * entries, entries, members,
    )  # fmt: skip
    t.sql(
        "INSERT INTO ledger_entries (member_id, seq, points, kind, org_code, category, "
        "occurred_at, created_at, reason, prev_hash, hash) SELECT m.id, s, 10, 'award', "
        "'sx.dt', 'pioneer', now() - s * interval '1 hour', now(), 'bulk', '', md5(m.id || '-' "
        "|| s) FROM members m, generate_series(1, %s) s WHERE m.display_name LIKE 'bulk %%'",
        entries,
    )  # fmt: skip


def test_a_worker_killed_in_a_rebuild_is_retried_and_the_boards_end_exact(topology):
    t = topology(FAST_RECOVERY)
    auth = t.partner()
    _member(t, auth)
    acked: dict[str, int] = {}
    for i in range(5):
        assert _post(t, auth, f"before-{i}", acked, days_ago=1 + i) == 201
    _many_members(t, 40_000, 4)
    job_id = re.search(r"job (\S+) queued", t.flask("boards", "rebuild", "--queue")).group(1)
    job = Job.fetch(job_id, connection=t.redis)
    _until(lambda: job.get_status(refresh=True) == "started" and job.get_meta().get("done"),
           60, "the rebuild starting", t)  # fmt: skip
    # the worker: the python process respawn started (RQ's scheduler is a child of it)
    workers = [p for p in t.processes("worker boards")
               if "python" in _cmdline(p).split(" ")[0] and "respawn" in _cmdline(_parent(p))]  # fmt: skip
    assert len(workers) == 1, [_cmdline(p) for p in t.processes("worker boards")]
    (worker,) = workers
    os.kill(worker, signal.SIGKILL)
    for i in range(5):  # events keep coming while the boards' worker is dead
        assert _post(t, auth, f"during-{i}", acked, days_ago=1 + i) == 201
    _until(lambda: job.get_status(refresh=True) == "finished", 150, "the retried rebuild", t)
    assert "respawn: " in t.text() and "worker boards" in t.text()  # the worker came back
    job.refresh()
    assert job.retries_left == 2  # it finished on its first retry, after the kill
    t.check_ledger(acked)
    _until(t.boards_exact, 30, "exact boards", t)


def test_redis_flushed_and_cut_while_events_flow(topology):
    t = topology(FAST_RECOVERY)
    auth = t.partner()
    for m in range(6):
        _member(t, auth, f"f{m}")
    acked: dict[str, int] = {}
    statuses: list[int] = []

    def flow() -> None:  # 120 shifts, no two of a member on the same day: each earns points
        for i in range(120):
            ref, days = f"f{i % 6}", 1 + i // 6
            statuses.append(_post(t, auth, f"flow-{i}", acked, ref=ref, days_ago=days))
            time.sleep(0.02)

    poster = threading.Thread(target=flow)
    poster.start()
    _until(lambda: len(statuses) >= 30, 60, "the first events", t)
    t.redis.flushdb()  # Redis loses everything: boards, queues, counters
    _until(lambda: len(statuses) >= 70, 60, "more events", t)
    t.redis.execute_command("CLIENT", "KILL", "TYPE", "normal")  # every connection cut
    poster.join(120)
    assert statuses == [201] * 120  # ingestion never stopped
    assert all(points > 0 for points in acked.values())  # each moved the boards
    t.check_ledger(acked)
    _until(t.boards_exact, 90, "the boards repaired", t)
    # repaired by a rebuild the live updates asked for (the first after Redis started empty,
    # then the one after the flush), not by anybody's hand
    assert t.text().count("Successfully completed rebuild leaderboards (repair:") >= 2


class Proxy:
    """A TCP proxy in front of PostgreSQL that can be cut (connections closed, new ones
    refused) and restored on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):  # wakes the thread waiting in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_the_database_unreachable_answers_503_and_recovers(topology):
    proxy = Proxy(("127.0.0.1", 5432))
    base = os.environ["TEST_DATABASE_URL"].rpartition("/")[0].rpartition("@")[0]
    via_proxy = f"{base}@127.0.0.1:{proxy.port}/{{name}}".replace("+psycopg", "")
    t = topology(FAST_RECOVERY, database_url=via_proxy)
    auth = t.partner()
    _member(t, auth)
    acked: dict[str, int] = {}
    for i in range(5):
        assert _post(t, auth, f"up-{i}", acked, days_ago=1 + i) == 201
    proxy.cut()
    refused = []
    for i in range(6):
        status, body = t.call("POST", "/api/v1/events", shift(f"down-{i}", "f1", days_ago=2), auth)
        assert status == 503, (status, body)
        error = json.loads(body)["error"]
        assert error["code"] in ("database_unavailable", "unavailable") and "Traceback" not in body
        refused.append(f"down-{i}")
    status, body = t.call("GET", "/readyz")
    assert status == 503 and json.loads(body)["error"]["code"] == "not_ready"
    assert "database" in json.loads(body)["error"]["details"]
    assert t.call("GET", "/healthz")[0] == 200  # the process itself is fine
    proxy.restore()
    _until(lambda: t.call("GET", "/readyz")[0] == 200, 30, "ready again", t)
    statuses = [_post(t, auth, f"back-{i}", acked, days_ago=1 + i % 5) for i in range(10)]
    assert statuses.count(201) >= 8, statuses  # at most a stale pooled connection or two
    assert all(s in (201, 503) for s in statuses), statuses
    t.check_ledger(acked)
    stored = {e for (e,) in t.sql("SELECT partner_event_id FROM events")}
    assert not stored & set(refused)  # nothing half-written
    # every failure was answered as the database's (the pool's own reset errors are logged)
    assert "unhandled error" not in t.text()


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except OSError:
        return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""
