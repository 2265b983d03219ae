"""The drivers and tools people use: psql, asyncpg, SQLAlchemy, pandas."""

import asyncio
import subprocess

import asyncpg
import psycopg
import pytest
import pandas as pd
import sqlalchemy as sa


def psql(server, *args, input=None):
    cmd = ["psql", "-X", "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "streamhouse",
           "-v", "ON_ERROR_STOP=1", *args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)


def test_psql_script_and_meta_commands(server):
    r = psql(server, "-c", "CREATE TABLE ps (id INT, name TEXT) WITH (partitions = 2)")
    assert r.returncode == 0, r.stderr
    r = psql(server, input="INSERT INTO ps VALUES (1, 'a');\nINSERT INTO ps VALUES (2, 'b');\nSELECT count(*) FROM ps;\n")
    assert r.returncode == 0, r.stderr
    assert " 2\n" in r.stdout
    r = psql(server, "-c", r"\dt")
    assert r.returncode == 0, r.stderr
    assert "ps" in r.stdout
    r = psql(server, "-c", r"\d ps")
    assert r.returncode == 0, r.stderr
    assert "name" in r.stdout and "id" in r.stdout
    r = psql(server, "-c", r"\dn")
    assert r.returncode == 0 and "public" in r.stdout, r.stderr
    r = psql(server, "-c", r"\l")
    assert r.returncode == 0 and "streamhouse" in r.stdout, r.stderr


def test_psql_copy_from_stdin_and_error_exit_code(server):
    psql(server, "-c", "CREATE TABLE pc (id INT, v TEXT)")
    r = psql(server, "-c", r"\copy pc FROM STDIN WITH (FORMAT csv)", input="1,a\n2,b\n3,c\n")
    assert r.returncode == 0, r.stderr
    assert "COPY 3" in r.stdout
    r = psql(server, "-c", "SELECT * FROM nothere")
    assert r.returncode != 0 and "does not exist" in r.stderr


def test_asyncpg(server):
    async def main():
        c = await asyncpg.connect(host=server.host, port=server.port, user="tester", database="streamhouse")
        try:
            await c.execute("CREATE TABLE ap (id BIGINT, price DOUBLE PRECISION, tag TEXT, ok BOOLEAN)")
            await c.executemany("INSERT INTO ap VALUES ($1, $2, $3, $4)", [(i, i * 1.5, f"t{i}", i % 2 == 0) for i in range(50)])
            rows = await c.fetch("SELECT id, price, tag, ok FROM ap WHERE id < $1 ORDER BY id", 3)
            assert [tuple(r) for r in rows] == [(0, 0.0, "t0", True), (1, 1.5, "t1", False), (2, 3.0, "t2", True)]
            assert await c.fetchval("SELECT count(*) FROM ap") == 50
        finally:
            await c.close()

    asyncio.run(main())


def test_sqlalchemy_inspect_and_pandas(server):
    with server.connect() as c:
        c.execute("CREATE TABLE sa_t (id INT NOT NULL, name TEXT, amount DOUBLE PRECISION)")
        c.execute("INSERT INTO sa_t VALUES (1, 'x', 2.5), (2, 'y', 3.5)")
    engine = sa.create_engine(f"postgresql+psycopg://tester@{server.host}:{server.port}/streamhouse")
    insp = sa.inspect(engine)
    assert "sa_t" in insp.get_table_names()
    cols = {c["name"]: c for c in insp.get_columns("sa_t")}
    assert set(cols) >= {"id", "name", "amount"}
    df = pd.read_sql("SELECT id, name, amount FROM sa_t ORDER BY id", engine)
    assert list(df["name"]) == ["x", "y"]
    assert df["amount"].sum() == 6.0
    engine.dispose()


def test_binary_copy_to_stdout_decodes_in_psycopg(server):
    """psycopg's binary COPY reader gets PostgreSQL's binary COPY format: every value in its
    binary wire form, NULLs as -1 lengths, the header and the trailer."""
    import datetime
    import decimal
    with server.connect() as c:
        c.execute("CREATE TABLE bc (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION, ok BOOLEAN, "
                  "at TIMESTAMP, n INT, d DATE, amount NUMERIC(10,2), raw BYTEA)")
        c.execute("INSERT INTO bc VALUES (1, 'one', 1.5, true, '2024-01-02 03:04:05.5', 7, '2024-02-29', 12.34, '\\x0102'), "
                  "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
        types = ["int8", "text", "float8", "bool", "timestamp", "int4", "date", "numeric", "bytea"]
        with c.cursor().copy("COPY (SELECT * FROM bc ORDER BY id) TO STDOUT (FORMAT binary)") as cp:
            cp.set_types(types)
            rows = list(cp.rows())
        assert rows == [
            (1, "one", 1.5, True, datetime.datetime(2024, 1, 2, 3, 4, 5, 500000), 7, datetime.date(2024, 2, 29),
             decimal.Decimal("12.34"), b"\x01\x02"),
            (2, None, None, None, None, None, None, None, None),
        ]
        with c.cursor().copy("COPY bc TO STDOUT (FORMAT binary)") as cp:
            raw = b"".join(bytes(chunk) for chunk in cp)
        assert raw.startswith(b"PGCOPY\n\xff\r\n\x00") and raw.endswith(b"\xff\xff")
        # No rows: header and trailer in one message, byte for byte what PostgreSQL 15 sends
        # (psycopg's rows() cannot parse that from PostgreSQL either).
        with c.cursor().copy("COPY (SELECT id FROM bc WHERE false) TO STDOUT (FORMAT binary)") as cp:
            assert [bytes(chunk) for chunk in cp] == [b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff"]
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            with c.cursor().copy("COPY bc FROM STDIN (FORMAT binary)") as cp:
                pass
        with pytest.raises(psycopg.errors.SyntaxError, match="cannot specify DELIMITER in BINARY mode"):
            c.execute("COPY bc TO STDOUT (FORMAT binary, DELIMITER ',')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match='COPY format "parquet" not recognized'):
            c.execute("COPY bc TO STDOUT (FORMAT parquet)")
