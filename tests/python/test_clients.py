"""The drivers and tools people use: psql, asyncpg, SQLAlchemy, pandas."""

import asyncio
import subprocess

import asyncpg
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
