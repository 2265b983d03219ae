"""What drivers see of types and errors: json/jsonb decoded as JSON (text and binary),
PostgreSQL's text formats for floats and timestamps, error positions and SQLSTATEs,
views in psql's listings."""

import asyncio
import datetime

import asyncpg
import psycopg
import pytest

from test_clients import psql


def test_json_and_jsonb_columns_decode_as_json(server, conn):
    conn.execute("CREATE TABLE j (id INT, a JSON, b JSONB)")
    conn.execute("INSERT INTO j VALUES (1, %s, %s)", ('{"x": 1}', '{"y": [1, 2]}'))
    cur = conn.execute("SELECT a, b FROM j")
    assert [d.type_code for d in cur.description] == [114, 3802]
    assert cur.fetchone() == ({"x": 1}, {"y": [1, 2]})
    # psycopg's binary format: jsonb carries its version byte.
    assert conn.execute("SELECT a, b FROM j", binary=True).fetchone() == ({"x": 1}, {"y": [1, 2]})
    assert conn.execute("SELECT b->>'y', a->>'x' FROM j").fetchone() == ("[1, 2]", "1")

    async def with_asyncpg():
        c = await asyncpg.connect(host=server.host, port=server.port, user="t", database="streamhouse")
        try:
            # asyncpg reads json/jsonb in binary and returns the JSON text.
            row = await c.fetchrow("SELECT a, b FROM j")
            return row["a"], row["b"]
        finally:
            await c.close()

    a, b = asyncio.run(with_asyncpg())
    assert (a.replace(" ", ""), b.replace(" ", "")) == ('{"x":1}', '{"y":[1,2]}')


def test_floats_and_timestamps_parse_in_drivers(server, conn):
    conn.execute("CREATE TABLE f (x DOUBLE PRECISION, t TIMESTAMPTZ)")
    conn.execute("INSERT INTO f VALUES ('inf', '2024-01-01 10:00:00.5+00'), (1.0, '2024-01-01 10:00:00+00')")
    # Text format: psycopg parses PostgreSQL's spellings (Infinity, +00 offsets).
    rows = conn.execute("SELECT x, t FROM f ORDER BY x").fetchall()
    utc = datetime.timezone.utc
    assert rows == [(1.0, datetime.datetime(2024, 1, 1, 10, tzinfo=utc)),
                    (float("inf"), datetime.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=utc))]
    r = psql(server, "-A", "-t", "-c", "SET TIME ZONE 'Asia/Kolkata'", "-c", "SELECT x, t FROM f ORDER BY x")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1:] == ["1|2024-01-01", "15:30:00+05:30", "Infinity|2024-01-01", "15:30:00.5+05:30"]


def test_syntax_errors_carry_a_position(conn):
    with pytest.raises(psycopg.errors.SyntaxError) as e:
        conn.execute("SELECT 1;\nCREATE TABLE (x INT)")
    assert e.value.diag.statement_position == "24"  # the "(", as PostgreSQL reports it


def test_unknown_function_is_undefined_function(conn):
    with pytest.raises(psycopg.errors.UndefinedFunction):
        conn.execute("SELECT no_such_function(1)")


def test_views_in_psql_listings(server, conn):
    conn.execute("CREATE TABLE base (id INT, v TEXT)")
    conn.execute("CREATE VIEW recent AS SELECT id FROM base WHERE id > 10")
    r = psql(server, "-c", r"\dv")
    assert r.returncode == 0, r.stderr
    assert "recent" in r.stdout and "view" in r.stdout
    # Views outlive a restart: they are in the catalog.
    server.restart()
    with server.connect() as c:
        c.execute("INSERT INTO base VALUES (5, 'a'), (50, 'b')")
        assert c.execute("SELECT * FROM recent").fetchall() == [(50,)]
