"""The core promises over psycopg: DDL, INSERT, SELECT, hidden columns, errors."""

import datetime
import time

import psycopg
import pytest
from psycopg import errors


def test_create_insert_select(conn):
    conn.execute("CREATE TABLE t (id BIGINT NOT NULL, name TEXT, score DOUBLE PRECISION) WITH (partitions = 4, key = 'id')")
    cur = conn.execute("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', 2.5), (3, NULL, 3.5)")
    assert cur.rowcount == 3
    rows = conn.execute("SELECT id, name, score FROM t ORDER BY id").fetchall()
    assert rows == [(1, "a", 1.5), (2, "b", 2.5), (3, None, 3.5)]
    assert conn.execute("SELECT count(*), sum(score) FROM t").fetchone() == (3, 7.5)


def test_select_star_hides_system_columns_but_they_are_selectable(conn):
    conn.execute("CREATE TABLE h (k TEXT, v INT) WITH (partitions = 2, key = 'k')")
    conn.execute("INSERT INTO h VALUES ('x', 1), ('y', 2), ('x', 3)")
    cur = conn.execute("SELECT * FROM h")
    assert [d.name for d in cur.description] == ["k", "v"]
    rows = conn.execute("SELECT k, _partition, _offset, _key, _timestamp FROM h ORDER BY v").fetchall()
    assert rows[0][3] == "x" and rows[2][3] == "x"
    assert rows[0][1] == rows[2][1], "same key, same partition"
    assert rows[2][2] > rows[0][2], "offsets grow within a partition"
    per_partition = {}
    for r in rows:
        per_partition.setdefault(r[1], []).append(r[2])
    for offsets in per_partition.values():
        assert offsets == list(range(len(offsets))), "offsets are dense from 0 in each partition"
    assert all(r[4] is not None for r in rows)


def test_parameters_extended_protocol(conn):
    conn.execute("CREATE TABLE p (id INT, s TEXT, ts TIMESTAMP)")
    conn.execute("INSERT INTO p VALUES (%s, %s, %s)", (7, "seven", "2024-01-02 03:04:05"))
    assert conn.execute("SELECT s FROM p WHERE id = %s", (7,)).fetchone() == ("seven",)


def test_update_and_delete_are_refused_with_0A000(conn):
    conn.execute("CREATE TABLE u (id INT)")
    with pytest.raises(errors.FeatureNotSupported) as e:
        conn.execute("UPDATE u SET id = 2")
    assert e.value.diag.message_hint
    with pytest.raises(errors.FeatureNotSupported):
        conn.execute("DELETE FROM u")


def test_error_codes(conn):
    with pytest.raises(errors.SyntaxError):
        conn.execute("SELEC 1")
    with pytest.raises(errors.UndefinedTable):
        conn.execute("SELECT * FROM nope")
    conn.execute("CREATE TABLE e (id INT NOT NULL)")
    with pytest.raises(errors.DuplicateTable):
        conn.execute("CREATE TABLE e (id INT)")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        conn.execute("INSERT INTO e VALUES ('abc')")
    with pytest.raises(errors.NotNullViolation):
        conn.execute("INSERT INTO e VALUES (NULL)")
    assert conn.execute("SELECT count(*) FROM e").fetchone() == (0,)
    # The connection is still usable after every error.
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_transactions_commit_and_rollback(server):
    with server.connect(autocommit=False) as c:
        c.execute("CREATE TABLE tx (id INT)")
        c.commit()
        c.execute("INSERT INTO tx VALUES (1), (2)")
        with server.connect() as other:
            assert other.execute("SELECT count(*) FROM tx").fetchone() == (0,), "not visible before COMMIT"
        c.commit()
        c.execute("INSERT INTO tx VALUES (3)")
        c.rollback()
    with server.connect() as c:
        assert c.execute("SELECT id FROM tx ORDER BY id").fetchall() == [(1,), (2,)]


def test_a_transaction_reads_its_own_writes_and_no_one_else_does(server):
    # psycopg opens a block on the first statement: a driver user who inserts then counts
    # must see the row, as in PostgreSQL, while other sessions see nothing until COMMIT.
    with server.connect(autocommit=False) as c, server.connect() as other:
        c.execute("CREATE TABLE own (id BIGINT, name TEXT) WITH (partitions = 2, key = 'id')")
        c.commit()
        c.execute("INSERT INTO own VALUES (1, 'a'), (2, 'b')")
        assert c.execute("SELECT id, name, _partition, _offset FROM own ORDER BY id").fetchall() == [
            (1, "a", None, None), (2, "b", None, None)], "own rows, system columns not assigned yet"
        c.execute("SAVEPOINT s")
        c.execute("INSERT INTO own VALUES (3, 'c')")
        assert c.execute("SELECT count(*) FROM own").fetchone() == (3,)
        c.execute("ROLLBACK TO SAVEPOINT s")
        assert c.execute("SELECT count(*) FROM own").fetchone() == (2,), "rolled back to the savepoint"
        c.execute("INSERT INTO own SELECT id + 10, name FROM own")  # reads its own pending rows
        assert c.execute("SELECT id FROM own ORDER BY id").fetchall() == [(1,), (2,), (11,), (12,)]
        assert other.execute("SELECT count(*) FROM own").fetchone() == (0,)
        c.commit()
        assert c.execute("SELECT count(*) FROM own WHERE _partition IS NOT NULL AND _offset IS NOT NULL").fetchone() == (4,)
        assert other.execute("SELECT id FROM own ORDER BY id").fetchall() == [(1,), (2,), (11,), (12,)]
        c.execute("INSERT INTO own VALUES (9, 'z')")
        assert c.execute("SELECT count(*) FROM own").fetchone() == (5,)
        c.rollback()
        assert c.execute("SELECT count(*) FROM own").fetchone() == (4,)


def test_pending_rows_reach_every_read_and_leave_with_the_block(server):
    # INSERT … SELECT plans without a SELECT before it; after COMMIT or ROLLBACK the block's
    # rows are read from storage once, or not at all.
    with server.connect(autocommit=False) as c:
        c.execute("CREATE TABLE pa (x BIGINT)")
        c.execute("CREATE TABLE pb (x BIGINT)")
        c.commit()
        c.execute("INSERT INTO pa VALUES (1)")
        c.execute("INSERT INTO pb SELECT x FROM pa")  # reads its own block's row
        c.commit()
        assert c.execute("SELECT x FROM pb").fetchall() == [(1,)]
        c.commit()
        c.execute("INSERT INTO pa VALUES (2)")
        c.execute("SELECT count(*) FROM pa").fetchone()
        c.rollback()
        c.execute("INSERT INTO pb SELECT x FROM pa")  # the rolled-back 2 is gone; 1 once
        c.commit()
        assert c.execute("SELECT x FROM pb ORDER BY x").fetchall() == [(1,), (1,)]
        c.commit()
        # A cursor WITH HOLD declared in a block that rolls back goes with it.
        c.execute("INSERT INTO pa VALUES (3)")
        c.execute("DECLARE held CURSOR WITH HOLD FOR SELECT x FROM pa")
        c.rollback()
        with pytest.raises(errors.InvalidCursorName):
            c.execute("FETCH ALL FROM held")
        c.rollback()
        c.execute("DECLARE kept CURSOR WITH HOLD FOR SELECT x FROM pa ORDER BY x")
        c.commit()
        assert c.execute("FETCH ALL FROM kept").fetchall() == [(1,)], "a committed block's held cursor stays"


def test_failed_statement_aborts_the_block(server):
    with server.connect(autocommit=False) as c:
        c.execute("CREATE TABLE fa (id INT)")
        c.commit()
        c.execute("INSERT INTO fa VALUES (1)")
        with pytest.raises(errors.UndefinedTable):
            c.execute("SELECT * FROM missing")
        with pytest.raises(errors.InFailedSqlTransaction):
            c.execute("INSERT INTO fa VALUES (2)")
        c.rollback()
        assert c.execute("SELECT count(*) FROM fa").fetchone() == (0,)


def test_schemas_show_describe(conn):
    conn.execute("CREATE SCHEMA s1")
    conn.execute("CREATE TABLE s1.t (a INT, b TEXT)")
    conn.execute("INSERT INTO s1.t VALUES (1, 'x')")
    assert conn.execute("SELECT * FROM s1.t").fetchall() == [(1, "x")]
    tables = conn.execute("SHOW TABLES").fetchall()
    assert ("s1", "t") in [(r[0], r[1]) for r in tables]
    cols = conn.execute("DESCRIBE s1.t").fetchall()
    assert [c[0] for c in cols][:2] == ["a", "b"]
    assert conn.execute("SHOW server_version").fetchone()[0].startswith("15")
    conn.execute("DROP TABLE s1.t")
    with pytest.raises(errors.UndefinedTable):
        conn.execute("SELECT * FROM s1.t")


def test_copy_in_and_out(conn):
    conn.execute("CREATE TABLE c (id INT, name TEXT)")
    with conn.cursor().copy("COPY c FROM STDIN") as copy:
        for i in range(1000):
            copy.write_row((i, f"n{i}"))
    assert conn.execute("SELECT count(*), max(id) FROM c").fetchone() == (1000, 999)
    with conn.cursor().copy("COPY c (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
        copy.write("id,name\n1000,\"with, comma\"\n1001,\n")
    assert conn.execute("SELECT name FROM c WHERE id = 1000").fetchone() == ("with, comma",)
    out = bytearray()
    with conn.cursor().copy("COPY (SELECT id, name FROM c WHERE id < 3 ORDER BY id) TO STDOUT") as copy:
        for chunk in copy:
            out += chunk
    assert out.decode() == "0\tn0\n1\tn1\n2\tn2\n"


def test_copy_reads_times_without_seconds(conn):
    conn.execute("CREATE TABLE cts (ts TIMESTAMP, tz TIMESTAMPTZ)")
    with conn.cursor().copy("COPY cts FROM STDIN") as copy:
        copy.write("2025-01-01 10:00\t2025-01-01 10:00+02\n2025-01-01T11:30:15\t2025-01-01 11:30Z\n")
    utc = datetime.timezone.utc
    assert conn.execute("SELECT ts, tz FROM cts ORDER BY ts").fetchall() == [
        (datetime.datetime(2025, 1, 1, 10, 0), datetime.datetime(2025, 1, 1, 8, 0, tzinfo=utc)),
        (datetime.datetime(2025, 1, 1, 11, 30, 15), datetime.datetime(2025, 1, 1, 11, 30, tzinfo=utc)),
    ]
    with pytest.raises(errors.InvalidTextRepresentation, match="ts"):
        with conn.cursor().copy("COPY cts (ts) FROM STDIN") as copy:
            copy.write("2025-01-01 10\n")


def test_bad_copy_leaves_nothing(conn):
    conn.execute("CREATE TABLE bc (id INT)")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        with conn.cursor().copy("COPY bc FROM STDIN") as copy:
            copy.write("1\n2\nnot-a-number\n")
    assert conn.execute("SELECT count(*) FROM bc").fetchone() == (0,)


def test_rows_survive_restart(server):
    with server.connect() as c:
        c.execute("CREATE TABLE r (id INT) WITH (partitions = 3)")
        c.execute("INSERT INTO r SELECT * FROM generate_series(1, 500)")
    server.kill9()
    server.start()
    with server.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id) FROM r").fetchone() == (500, 500)
        c.execute("INSERT INTO r VALUES (501)")
    server.restart()
    with server.connect() as c:
        assert c.execute("SELECT count(*) FROM r").fetchone() == (501,)


def test_graceful_shutdown_flushes_and_exits_zero(server):
    with server.connect() as c:
        c.execute("CREATE TABLE gs (id INT)")
        c.execute("INSERT INTO gs VALUES (1), (2)")
    assert server.stop() == 0
    segments = list((server.data_dir / "segments").rglob("*.parquet"))
    assert segments, "tails are flushed to segments on shutdown"
    server.start()
    with server.connect() as c:
        assert c.execute("SELECT count(*) FROM gs").fetchone() == (2,)


def test_many_concurrent_connections(server):
    conns = [server.connect() for _ in range(200)]
    try:
        conns[0].execute("CREATE TABLE cc (id INT)")
        for i, c in enumerate(conns):
            c.execute("INSERT INTO cc VALUES (%s)", (i,))
        assert conns[-1].execute("SELECT count(*) FROM cc").fetchone() == (200,)
    finally:
        for c in conns:
            c.close()


def test_retention_removes_old_rows(tmp_path):
    from conftest import Server
    s = Server(tmp_path / "ret").start()
    try:
        with s.connect() as c:
            c.execute("CREATE TABLE ret (id INT) WITH (retention = '1 s')")
            c.execute("INSERT INTO ret VALUES (1), (2)")
            assert c.execute("SELECT count(*) FROM ret").fetchone() == (2,)
            deadline = time.time() + 20
            while time.time() < deadline and c.execute("SELECT count(*) FROM ret").fetchone() != (0,):
                time.sleep(0.3)
            assert c.execute("SELECT count(*) FROM ret").fetchone() == (0,)
            c.execute("INSERT INTO ret VALUES (3)")
            assert c.execute("SELECT id, _offset FROM ret").fetchall() == [(3, 2)]
    finally:
        s.stop(9)


def test_types_round_trip_in_text_and_binary(conn):
    import datetime
    import decimal
    conn.execute(
        "CREATE TABLE tys (b BOOLEAN, i2 SMALLINT, i4 INT, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION, n NUMERIC(10,2),"
        " t TEXT, by BYTEA, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ)"
    )
    row = (True, 2, 4, 8, 1.5, 2.25, decimal.Decimal("12.34"), "héllo", b"\x00\x01\xff", datetime.date(2024, 2, 29),
           datetime.datetime(2024, 2, 29, 12, 34, 56, 789000),
           datetime.datetime(2024, 2, 29, 12, 34, 56, tzinfo=datetime.timezone.utc))
    conn.execute("INSERT INTO tys VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
    for binary in (False, True):
        got = conn.cursor(binary=binary).execute("SELECT * FROM tys").fetchone()
        assert got == row, f"binary={binary}: {got}"


def test_explain_and_interval(conn):
    conn.execute("CREATE TABLE ex (id INT)")
    plan = "\n".join(r[-1] for r in conn.execute("EXPLAIN SELECT count(*) FROM ex WHERE id > 1").fetchall())
    assert "ex" in plan
    import datetime
    assert conn.execute("SELECT INTERVAL '1 day 2 hours'").fetchone()[0] == datetime.timedelta(days=1, hours=2)


def test_cancel_request_stops_a_running_query(server):
    import threading
    with server.connect() as c:
        timer = threading.Timer(0.5, c.cancel)
        timer.start()
        t0 = time.time()
        with pytest.raises(errors.QueryCanceled):
            c.execute("SELECT count(*) FROM generate_series(1, 100000000000)").fetchone()
        assert time.time() - t0 < 10
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_pg_sleep_waits_and_a_cancel_ends_it(server):
    import threading
    with server.connect() as c:
        t0 = time.time()
        assert c.execute("SELECT pg_sleep(0.3)").fetchone() == (None,)
        assert time.time() - t0 >= 0.3
        threading.Timer(0.3, c.cancel).start()
        t0 = time.time()
        with pytest.raises(errors.QueryCanceled):
            c.execute("SELECT pg_sleep(30)")
        assert time.time() - t0 < 5
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_statement_timeout_ends_long_reads_with_57014(server):
    with server.connect() as c:
        assert c.execute("SHOW statement_timeout").fetchone() == ("0",)
        c.execute("SET statement_timeout = 2000")
        assert c.execute("SHOW statement_timeout").fetchone() == ("2s",)
        c.execute("SET statement_timeout = '250ms'")
        assert c.execute("SHOW statement_timeout").fetchone() == ("250ms",)
        # A sleep, a long computation (simple protocol), and the same with a parameter
        # (extended protocol): each ends soon after the limit, with PostgreSQL's message.
        for sql, params in [
            ("SELECT pg_sleep(10)", None),
            ("SELECT count(*) FROM generate_series(1, 100000000000)", None),
            ("SELECT count(*) FROM generate_series(1, 100000000000) WHERE value > %s", (0,)),
        ]:
            t0 = time.time()
            with pytest.raises(errors.QueryCanceled, match="canceling statement due to statement timeout"):
                c.execute(sql, params)
            assert 0.2 <= time.time() - t0 < 5, sql
        assert c.execute("SELECT 1").fetchone() == (1,)
        # A short write is not touched by the limit and lands once.
        c.execute("CREATE TABLE st (id INT)")
        c.execute("INSERT INTO st VALUES (1)")
        assert c.execute("SELECT count(*) FROM st").fetchone() == (1,)
        with pytest.raises(errors.InvalidParameterValue, match="statement_timeout"):
            c.execute("SET statement_timeout = '10 parsecs'")
        with pytest.raises(errors.InvalidParameterValue):
            c.execute("SET statement_timeout = -1")
        assert c.execute("SHOW statement_timeout").fetchone() == ("250ms",)
        c.execute("RESET statement_timeout")
        assert c.execute("SELECT pg_sleep(0.4)").fetchone() == (None,)
    # Inside a transaction block the timeout fails the block, as any error does.
    with server.connect(autocommit=False) as c:
        c.execute("SET statement_timeout = '200ms'")
        with pytest.raises(errors.QueryCanceled):
            c.execute("SELECT pg_sleep(5)")
        with pytest.raises(errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        assert c.execute("SELECT 2").fetchone() == (2,)


def test_one_large_copy_is_one_atomic_statement(conn):
    """A COPY larger than a WAL file still goes in as one statement."""
    conn.execute("CREATE TABLE lc (id BIGINT, pad TEXT) WITH (partitions = 2)")
    pad = "x" * 90
    with conn.cursor().copy("COPY lc FROM STDIN") as copy:
        for start in range(0, 1_000_000, 100_000):
            copy.write("".join(f"{i}\t{pad}\n" for i in range(start, start + 100_000)))
    assert conn.execute("SELECT count(*), count(DISTINCT id) FROM lc").fetchone() == (1_000_000, 1_000_000)


def test_two_inserts_into_one_table_in_a_transaction_get_distinct_offsets(server):
    with server.connect(autocommit=False) as c:
        c.execute("CREATE TABLE tw (id INT)")
        c.commit()
        c.execute("INSERT INTO tw VALUES (1), (2)")
        c.execute("INSERT INTO tw VALUES (3)")
        c.commit()
        rows = c.execute("SELECT id, _offset FROM tw ORDER BY id").fetchall()
        assert rows == [(1, 0), (2, 1), (3, 2)]


def test_settings_given_at_connect_time(server):
    # libpq's options (PGOPTIONS) and plain startup parameters, as drivers send them.
    with server.connect(options="-c statement_timeout=300 --DateStyle=ISO,MDY") as c:
        assert c.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            c.execute("SELECT pg_sleep(5)")
    with server.connect(options="-cTimeZone=Europe/Berlin") as c:
        assert c.execute("SHOW TimeZone").fetchone() == ("Europe/Berlin",)
    # A bad value the user asked for refuses the connection, as PostgreSQL does.
    with pytest.raises(psycopg.OperationalError, match="statement_timeout"):
        server.connect(options="-c statement_timeout=soon")
