"""SUBSCRIBE: an endless, resumable feed of a stream table, as clients consume it.

Push: `COPY (SUBSCRIBE …) TO STDOUT` in psycopg and psql, and the plain result set over
the extended protocol (psycopg's `stream`). Pull: `DECLARE … CURSOR FOR SUBSCRIBE` and
`FETCH … WITH (timeout)` from psycopg and asyncpg. Every row carries `_partition` and
`_offset`; resuming from them must give exactly the rows after, none twice and none
missed, whether they come from Parquet segments or the in-memory tail. A subscriber that
stops reading must not make the server buffer, and one that leaves must not hurt it.
"""

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time

import asyncpg
import psycopg
import pytest
from psycopg import errors as pg_errors

from conftest import Server

# A feed is endless: every wait below is a bound on liveness, not a performance check.
DELIVERY_TIMEOUT_S = 10


def copy_rows(conn, sql, count):
    """The first `count` rows of a COPY (SUBSCRIBE …) TO STDOUT, as tuples of text; then
    the feed is cancelled, as a client stops an endless COPY, and the connection is idle."""
    rows = []
    with conn.cursor().copy(sql) as copy:
        for row in copy.rows():
            rows.append(row)
            if len(rows) == count:
                break
        conn.cancel_safe()
        with pytest.raises(pg_errors.QueryCanceled):
            for _ in copy.rows():
                pass
    assert conn.execute("SELECT 1").fetchone() == (1,)
    return rows


def test_copy_subscribe_sends_history_then_each_new_row(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE ev (id int, name text) WITH (partitions = 2)")
        conn.execute("INSERT INTO ev VALUES (1, 'a'), (2, 'b'), (3, 'c')")

    got = []
    arrived = threading.Event()
    sub = server.connect()

    def consume():
        with sub.cursor().copy("COPY (SUBSCRIBE ev) TO STDOUT") as copy:
            for row in copy.rows():
                got.append(row)
                if len(got) == 5:
                    arrived.set()
                    return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    deadline = time.time() + DELIVERY_TIMEOUT_S
    while len(got) < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert sorted(int(r[2]) for r in got) == [1, 2, 3], "history first"
    with server.connect() as writer:
        writer.execute("INSERT INTO ev VALUES (4, 'd')")
        writer.execute("INSERT INTO ev VALUES (5, 'e')")
    assert arrived.wait(DELIVERY_TIMEOUT_S), f"new rows did not arrive: {got}"
    assert [r[2:] for r in got[3:]] == [("4", "d"), ("5", "e")]
    positions = {(r[0], r[1]) for r in got}
    assert len(positions) == 5, "each row has its own (partition, offset)"
    sub.close()


def test_psql_copy_subscribe_streams_rows(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE ticks (n int)")
        conn.execute("INSERT INTO ticks VALUES (1), (2)")
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    # psql writes COPY data through stdio; line buffering makes each row leave at once.
    psql = subprocess.Popen(
        ["stdbuf", "-oL", "psql", "-X", "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "streamhouse",
         "-c", "COPY (SUBSCRIBE ticks) TO STDOUT"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        lines = [psql.stdout.readline() for _ in range(2)]
        assert [l.split("\t")[2].strip() for l in lines] == ["1", "2"]
        with server.connect() as conn:
            conn.execute("INSERT INTO ticks VALUES (3)")
        line = psql.stdout.readline()
        assert line.split("\t")[:2] == ["0", "2"] and line.split("\t")[2].strip() == "3"
    finally:
        psql.terminate()
        psql.wait(timeout=10)
    with server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ticks").fetchone()[0] == 3, "the server outlives the subscriber"


def test_cursor_fetch_waits_for_rows_and_honours_the_timeout(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE orders (id int, amount float8)")
        conn.execute("INSERT INTO orders VALUES (1, 9.5), (2, 20), (3, 7.25)")
    conn = server.connect(autocommit=False)
    cur = conn.cursor()
    cur.execute("DECLARE c CURSOR FOR SUBSCRIBE orders")
    cur.execute("FETCH 2 c")
    assert [r[2] for r in cur.fetchall()] == [1, 2]
    assert [d.name for d in cur.description] == ["_partition", "_offset", "id", "amount"]
    cur.execute("FETCH 10 c WITH (timeout = '200ms')")
    assert [r[2] for r in cur.fetchall()] == [3]
    started = time.monotonic()
    cur.execute("FETCH 10 c WITH (timeout = '300ms')")
    assert cur.fetchall() == []
    assert time.monotonic() - started >= 0.25, "an empty FETCH waits for its timeout"

    def insert_later():
        time.sleep(0.3)
        with server.connect() as writer:
            writer.execute("INSERT INTO orders VALUES (4, 1.5)")

    threading.Thread(target=insert_later).start()
    cur.execute("FETCH 10 c")  # no timeout: waits for at least one row
    assert [r[2:] for r in cur.fetchall()] == [(4, 1.5)]
    conn.commit()
    with pytest.raises(pg_errors.InvalidCursorName):
        cur.execute("FETCH 1 c")  # the transaction's end closed it
    conn.rollback()
    conn.close()


def test_psycopg_server_side_cursor_over_a_subscription(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE s (v text)")
        conn.execute("INSERT INTO s VALUES ('x'), ('y'), ('z')")
    with server.connect(autocommit=False) as conn:
        with conn.cursor(name="feed") as cur:
            cur.execute("SUBSCRIBE s")
            assert [r[2] for r in cur.fetchmany(2)] == ["x", "y"]
            assert [r[2] for r in cur.fetchmany(1)] == ["z"]
        conn.rollback()


def test_asyncpg_declare_and_fetch(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE readings (sensor text, value float8)")
        conn.execute("INSERT INTO readings VALUES ('a', 1.0), ('b', 2.0)")

    async def run():
        c = await asyncpg.connect(host=server.host, port=server.port, user="tester", database="streamhouse")
        try:
            async with c.transaction():
                await c.execute("DECLARE r CURSOR FOR SUBSCRIBE (SELECT sensor, value FROM readings WHERE value > 1)")
                rows = await c.fetch("FETCH 10 r WITH (timeout = '200ms')")
                assert [(r["sensor"], r["value"]) for r in rows] == [("b", 2.0)]
                await c.execute("INSERT INTO readings VALUES ('c', 3.0)")  # held until COMMIT
                assert await c.fetch("FETCH 10 r WITH (timeout = '200ms')") == []
            other = await asyncpg.connect(host=server.host, port=server.port, user="tester", database="streamhouse")
            async with other.transaction():
                await other.execute("DECLARE r CURSOR FOR SUBSCRIBE readings FROM OFFSET 2")
                rows = await other.fetch("FETCH ALL r WITH (timeout = '200ms')")
                assert [(r["_offset"], r["sensor"]) for r in rows] == [(2, "c")]
            await other.close()
        finally:
            await c.close()

    asyncio.run(run())


def test_psycopg_stream_over_the_extended_protocol_and_cancel(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE e (n int)")
        conn.execute("INSERT INTO e VALUES (1), (2), (3)")
    with server.connect() as conn:
        seen = []
        for row in conn.cursor().stream("SUBSCRIBE e"):
            seen.append(row[2])
            if len(seen) == 3:
                break  # psycopg cancels the rest
        assert seen == [1, 2, 3]
        assert conn.execute("SELECT count(*) FROM e").fetchone()[0] == 3, "the connection is usable after the cancel"


def resume_spec(rows):
    last = {}
    for r in rows:
        p, o = int(r[0]), int(r[1])
        last[p] = max(last.get(p, -1), o)
    return ",".join(f"{p}:{o + 1}" for p, o in sorted(last.items()))


def test_resuming_from_partition_offsets_gives_exactly_the_rest(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE k (id int, grp text) WITH (partitions = 3, key = 'grp')")
            for i in range(0, 300, 10):
                conn.execute(f"INSERT INTO k SELECT v, 'g' || (v % 7)::text FROM generate_series({i}, {i + 9}) AS t(v)")
        # A graceful restart turns the tails into Parquet segments: history comes from them.
        server.restart()
        with server.connect() as conn:
            conn.execute("INSERT INTO k SELECT v, 'g' || (v % 7)::text FROM generate_series(300, 349) AS t(v)")
        with server.connect() as conn:
            first = copy_rows(conn, "COPY (SUBSCRIBE k) TO STDOUT", 120)
        with server.connect() as conn:
            rest = copy_rows(conn, f"COPY (SUBSCRIBE k FROM OFFSET '{resume_spec(first)}') TO STDOUT", 350 - 120)
        ids = [int(r[2]) for r in first + rest]
        assert sorted(ids) == list(range(350)), "every row exactly once"
        by_partition = {}
        for r in first + rest:
            by_partition.setdefault(r[0], []).append(int(r[1]))
        for offsets in by_partition.values():
            assert offsets == list(range(len(offsets))), "offset order within a partition, no gaps"
    finally:
        server.stop(signal.SIGKILL)


def test_start_positions(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE p (n int)")
        conn.execute("INSERT INTO p VALUES (1), (2), (3)")
        time.sleep(0.05)
        cutoff = conn.execute("SELECT now()").fetchone()[0]
        time.sleep(0.05)
        conn.execute("INSERT INTO p VALUES (4)")
    with server.connect(autocommit=False) as conn:
        cur = conn.cursor()
        cur.execute("DECLARE a CURSOR FOR SUBSCRIBE p FROM OFFSET 2")
        cur.execute("DECLARE b CURSOR FOR SUBSCRIBE p FROM LATEST")
        cur.execute("DECLARE c CURSOR FOR SUBSCRIBE p WITH (snapshot = false)")
        cur.execute(f"DECLARE d CURSOR FOR SUBSCRIBE p FROM TIMESTAMP '{cutoff.isoformat()}'")
        cur.execute("DECLARE e CURSOR FOR SUBSCRIBE p FROM EARLIEST")
        fetch = lambda name: [r[2] for r in cur.execute(f"FETCH ALL {name} WITH (timeout = '150ms')").fetchall()]
        assert fetch("a") == [3, 4]
        assert fetch("b") == []
        assert fetch("c") == []
        assert fetch("d") == [4]
        assert fetch("e") == [1, 2, 3, 4]
        with server.connect() as writer:
            writer.execute("INSERT INTO p VALUES (5)")
        assert fetch("b") == [5] and fetch("c") == [5] and fetch("d") == [5]
        conn.rollback()


def test_filter_projection_and_views(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE m (id int, kind text, v float8)")
        conn.execute("INSERT INTO m VALUES (1, 'x', 1.0), (2, 'y', 2.0), (3, 'x', 3.0)")
        conn.execute("CREATE VIEW only_x AS SELECT id, v * 10 AS v10 FROM m WHERE kind = 'x'")
    with server.connect(autocommit=False) as conn:
        cur = conn.cursor()
        cur.execute("DECLARE f CURSOR FOR SUBSCRIBE (SELECT id, upper(kind) AS k FROM m AS mm WHERE v >= 2)")
        cur.execute("FETCH ALL f WITH (timeout = '150ms')")
        assert [d.name for d in cur.description] == ["_partition", "_offset", "id", "k"]
        assert [r[2:] for r in cur.fetchall()] == [(2, "Y"), (3, "X")]
        cur.execute("DECLARE w CURSOR FOR SUBSCRIBE only_x")
        cur.execute("FETCH ALL w WITH (timeout = '150ms')")
        assert [r[2:] for r in cur.fetchall()] == [(1, 10.0), (3, 30.0)]
        conn.rollback()


@pytest.mark.parametrize("sql, code, words", [
    ("SUBSCRIBE (SELECT count(*) FROM t)", "0A000", "Aggregate"),
    ("SUBSCRIBE (SELECT kind, sum(v) FROM t GROUP BY kind)", "0A000", "Aggregate"),
    ("SUBSCRIBE (SELECT * FROM t ORDER BY v)", "0A000", "Sort"),
    ("SUBSCRIBE (SELECT * FROM t LIMIT 3)", "0A000", "Limit"),
    ("SUBSCRIBE (SELECT * FROM t a JOIN t b ON a.v = b.v)", "0A000", "Join"),
    ("SUBSCRIBE (SELECT DISTINCT kind FROM t)", "0A000", ""),
    ("SUBSCRIBE (SELECT * FROM t WHERE v > (SELECT avg(v) FROM t))", "0A000", "subqueries"),
    ("SUBSCRIBE nosuch", "42P01", "nosuch"),
    ("SUBSCRIBE t FROM NOWHERE", "42601", "EARLIEST"),
    ("SUBSCRIBE t WITH (colour = 'red')", "22023", "colour"),
    ("SUBSCRIBE t FROM OFFSET 'zero'", "22023", "partition:offset"),
    ("SUBSCRIBE t; SELECT 1", "42601", "on its own"),
    ("DECLARE c CURSOR FOR SUBSCRIBE t", "25P01", "transaction blocks"),
    ("FETCH 1 nosuch", "34000", "nosuch"),
    ("FETCH BACKWARD 1 FROM c", "55000", "forward"),
    ("FETCH 1 c WITH (timeout = 'soon')", "22023", "timeout"),
])
def test_refusals_have_proper_codes(server, sql, code, words):
    with server.connect() as conn:
        conn.execute("CREATE TABLE t (kind text, v float8)")
        with pytest.raises(psycopg.Error) as err:
            conn.execute(sql)
        assert err.value.sqlstate == code, err.value
        assert words.lower() in str(err.value).lower()
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_feed_function_is_not_a_query_source_and_huge_timeouts_are_safe(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1)")
        # Outside SUBSCRIBE an endless input would be collected forever: it is not there.
        for sql in ["CREATE TABLE copy_of_t AS SELECT * FROM streamhouse_subscribe('public', 't', 'earliest')",
                    "SELECT count(*) FROM streamhouse_subscribe('public', 't', 'earliest')"]:
            with pytest.raises(psycopg.Error) as err:
                conn.execute(sql)
            assert "streamhouse_subscribe" in str(err.value)
    with server.connect(autocommit=False) as conn:
        conn.execute("DECLARE c CURSOR FOR SUBSCRIBE t")
        rows = conn.execute("FETCH 5 c WITH (timeout = '10000000000000000000')").fetchall()
        assert [r[2] for r in rows] == [1]
        conn.rollback()


def test_cursor_errors_in_a_block(server):
    with server.connect(autocommit=False) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.commit()
        conn.execute("DECLARE c CURSOR FOR SUBSCRIBE t")
        with pytest.raises(pg_errors.DuplicateCursor):
            conn.execute("DECLARE c CURSOR FOR SUBSCRIBE t")
        conn.rollback()
        conn.execute("DECLARE c CURSOR FOR SUBSCRIBE t")
        conn.execute("CLOSE c")
        with pytest.raises(pg_errors.InvalidCursorName):
            conn.execute("CLOSE c")
        conn.rollback()
        # WITH HOLD outlives the transaction, as in PostgreSQL.
        conn.execute("DECLARE h CURSOR WITH HOLD FOR SUBSCRIBE t")
        conn.commit()
        conn.execute("INSERT INTO t VALUES (7)")
        conn.commit()
        assert [r[2] for r in conn.execute("FETCH 5 h WITH (timeout = '1s')").fetchall()] == [7]
        conn.execute("CLOSE ALL")
        conn.commit()


def test_ordinary_cursors(server):
    with server.connect(autocommit=False) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t SELECT v FROM generate_series(1, 25) AS s(v)")
        conn.commit()
        conn.execute("DECLARE o CURSOR FOR SELECT n FROM t ORDER BY n")
        assert [r[0] for r in conn.execute("FETCH 10 FROM o").fetchall()] == list(range(1, 11))
        assert [r[0] for r in conn.execute("FETCH FORWARD ALL FROM o").fetchall()] == list(range(11, 26))
        assert conn.execute("FETCH NEXT FROM o").fetchall() == []
        conn.commit()
        with conn.cursor(name="server_side") as cur:
            cur.execute("SELECT n FROM t WHERE n > %s ORDER BY n", (20,))
            assert [r[0] for r in cur.fetchall()] == [21, 22, 23, 24, 25]
        conn.commit()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_a_stalled_subscriber_does_not_make_the_server_buffer(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE big (id bigint, payload text)")
            for start in range(0, 1_000_000, 250_000):
                conn.execute(f"INSERT INTO big SELECT v, repeat('x', 90) FROM generate_series({start}, {start + 249_999}) AS t(v)")
        server.restart()  # history in segments, tails empty
        baseline = rss_bytes(server.proc.pid)
        # A client that asks for the feed and then reads nothing at all.
        psql_like = psycopg.pq.PGconn.connect(server.dsn().encode())
        psql_like.send_query(b"COPY (SUBSCRIBE big) TO STDOUT")
        time.sleep(3)
        grown = rss_bytes(server.proc.pid) - baseline
        # ~100 MB of history is waiting; the server may hold a few chunks and socket buffers.
        assert grown < 64 * 1024 * 1024, f"server grew by {grown / 1e6:.1f} MB for a stalled subscriber"
        # Leaving frees it: the server goes on serving.
        psql_like.finish()
        with server.connect() as conn:
            assert conn.execute("SELECT count(*) FROM big").fetchone()[0] == 1_000_000
    finally:
        server.stop(signal.SIGKILL)


def test_subscribers_that_disconnect_mid_stream_leave_the_server_healthy(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE d (n int)")
        conn.execute("INSERT INTO d SELECT v FROM generate_series(1, 1000) AS t(v)")
    for _ in range(5):
        raw = psycopg.pq.PGconn.connect(server.dsn().encode())
        raw.send_query(b"COPY (SUBSCRIBE d) TO STDOUT")
        time.sleep(0.05)
        sock = socket.socket(fileno=os.dup(raw.socket))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        raw.finish()
    with server.connect() as conn:
        conn.execute("INSERT INTO d VALUES (1001)")
        rows = copy_rows(conn, "COPY (SUBSCRIBE d FROM OFFSET 1000) TO STDOUT", 1)
        assert rows[0][2] == "1001"


def test_dropping_the_table_ends_the_subscription_with_an_error(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE gone (n int)")
        conn.execute("INSERT INTO gone VALUES (1)")
    sub = server.connect(autocommit=False)
    sub.execute("DECLARE g CURSOR FOR SUBSCRIBE gone")
    assert len(sub.execute("FETCH 1 g").fetchall()) == 1
    with server.connect() as conn:
        conn.execute("DROP TABLE gone")  # wakes the feed: nothing else is written
    with pytest.raises(psycopg.Error) as err:
        sub.execute("FETCH 1 g WITH (timeout = '2s')")
    assert err.value.sqlstate == "42P01"
    sub.close()


def test_flight_sql_subscribe_streams_batches_while_the_client_reads(server):
    """A DoGet for SUBSCRIBE streams for as long as the client reads (ADBC)."""
    from test_flight import adbc_connect

    with server.connect() as conn:
        conn.execute("CREATE TABLE fl (n int, tag text)")
        conn.execute("INSERT INTO fl VALUES (1, 'a'), (2, 'b')")
    seen = []
    done = threading.Event()

    def consume():
        with adbc_connect(server) as flight_conn:
            cur = flight_conn.cursor()
            cur.execute("SUBSCRIBE (SELECT n, tag FROM fl WHERE n <> 3)")
            reader = cur.fetch_record_batch()
            assert reader.schema.names == ["_partition", "_offset", "n", "tag"]
            while len(seen) < 3:
                seen.extend(reader.read_next_batch().column(2).to_pylist())
            done.set()
            # Leaving mid-stream: the cursor's close cancels the DoGet.

    reader_thread = threading.Thread(target=consume, daemon=True)
    reader_thread.start()
    deadline = time.time() + DELIVERY_TIMEOUT_S
    while len(seen) < 2 and time.time() < deadline:
        time.sleep(0.02)
    assert seen == [1, 2]
    with server.connect() as conn:
        conn.execute("INSERT INTO fl VALUES (3, 'filtered out')")
        conn.execute("INSERT INTO fl VALUES (4, 'd')")
    assert done.wait(DELIVERY_TIMEOUT_S), f"only {seen} arrived"
    assert seen == [1, 2, 4]
    reader_thread.join(DELIVERY_TIMEOUT_S)
    with server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM fl").fetchone()[0] == 4


def test_flight_cancel_flight_info_ends_a_running_subscription(server):
    """CancelFlightInfo (the Flight action) cancels the DoGet its FlightInfo names."""
    import pyarrow as pa
    import pyarrow.flight as flight
    from test_flight import _bytes_field, bearer, statement_query

    with server.connect() as conn:
        conn.execute("CREATE TABLE cf (n int)")
        conn.execute("INSERT INTO cf VALUES (1), (2)")
    client = flight.FlightClient(server.flight_uri)
    options = bearer(client)

    def cancel(info):
        request = _bytes_field(1, info.serialize())  # CancelFlightInfoRequest { info }
        (result,) = list(client.do_action(flight.Action("CancelFlightInfo", request), options))
        body = result.body.to_pybytes()
        return body[1] if body else 0  # CancelFlightInfoResult { status }: 1 cancelled, 3 not cancellable

    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SUBSCRIBE cf")), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        first = reader.read_chunk().data
        assert first.column(2).to_pylist() == [1, 2]
        outcome = {}

        def read_on():
            try:
                while True:
                    reader.read_chunk()
            except (pa.ArrowException, flight.FlightError, StopIteration) as e:
                outcome["error"] = e

        waiter = threading.Thread(target=read_on, daemon=True)
        waiter.start()
        assert cancel(info) == 1
        waiter.join(DELIVERY_TIMEOUT_S)
        assert "cancel" in str(outcome.get("error", "")).lower(), outcome
        assert cancel(info) == 3, "an ended query is not cancellable"

        # Cancelled before its DoGet: the DoGet is refused.
        early = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SUBSCRIBE cf")), options)
        assert cancel(early) == 1
        with pytest.raises(flight.FlightCancelledError):
            client.do_get(early.endpoints[0].ticket, options).read_all()
        assert [a.type for a in client.list_actions(options)].count("CancelFlightInfo") == 1
    finally:
        client.close()
    with server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM cf").fetchone()[0] == 2


def test_a_subscriber_that_vanishes_from_a_quiet_table_is_noticed(server):
    """Nothing is written on a quiet table, so the feed probes the client now and then
    (a ParameterStatus it already knows): a live client is not disturbed, a gone one is
    noticed and its reader freed."""
    with server.connect() as conn:
        conn.execute("CREATE TABLE quiet (n int)")
    live = server.connect()
    got = []

    def consume():
        with live.cursor().copy("COPY (SUBSCRIBE quiet) TO STDOUT") as copy:
            for row in copy.rows():
                got.append(row)
                return

    # The live subscriber starts first: by the time the gone one is noticed, it was probed too.
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    time.sleep(0.5)
    gone = psycopg.pq.PGconn.connect(server.dsn().encode())
    gone.send_query(b"COPY (SUBSCRIBE quiet) TO STDOUT")
    time.sleep(0.2)
    sock = socket.socket(fileno=os.dup(gone.socket))
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    gone.finish()
    deadline = time.time() + 30
    while "subscriber gone" not in server.log() and time.time() < deadline:
        time.sleep(0.5)
    assert "subscriber gone" in server.log(), "the vanished subscriber was never noticed"
    with server.connect() as conn:
        conn.execute("INSERT INTO quiet VALUES (1)")
    reader.join(DELIVERY_TIMEOUT_S)
    assert got == [("0", "0", "1")], "the live subscriber, probed too, still gets its rows"
