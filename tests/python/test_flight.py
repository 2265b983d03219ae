"""Arrow Flight SQL, the columnar way in: the same SQL and the same answers as over the
Postgres protocol, reached with the clients people use for it. The ADBC Flight SQL driver
(and polars and pandas on top of it) covers queries, prepared statements, DDL, bulk ingest
and metadata; raw pyarrow.flight covers what ADBC hides: the handshake and its token,
garbage tickets, unknown commands, the metadata commands ADBC never sends, and a client
that walks away in the middle of a stream. Answers are checked against psycopg on the same
server, and every failure must leave the server serving and nothing half-written."""

import signal

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest
from adbc_driver_flightsql import DatabaseOptions
from adbc_driver_manager import AdbcStatusCode, NotSupportedError, ProgrammingError
from psycopg import errors as pg_errors

from conftest import Server

SYSTEM_COLUMNS = {"_partition", "_offset", "_timestamp", "_key"}
BIG_ROWS = 1_000_000
RPC_TIMEOUT_S = 120
TIMEOUTS = {opt.value: str(RPC_TIMEOUT_S) for opt in
            (DatabaseOptions.TIMEOUT_QUERY, DatabaseOptions.TIMEOUT_FETCH, DatabaseOptions.TIMEOUT_UPDATE)}


# --- ADBC ---------------------------------------------------------------------------------

def adbc_connect(server, *, username="tester", password="secret", **options):
    """A DB-API connection through the ADBC Flight SQL driver. With a username the driver
    does the basic-auth handshake and sends the bearer token it gets on every call."""
    db_kwargs = dict(TIMEOUTS, **options)
    if username is not None:
        db_kwargs.update(username=username, password=password)
    # StreamHouse has no Flight SQL transactions; autocommit is what the driver falls back to.
    return flight_sql.connect(server.flight_uri, db_kwargs=db_kwargs, autocommit=True)


@pytest.fixture
def adbc(server):
    with adbc_connect(server) as c:
        yield c


def fetch(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetch_arrow_table()


def run(cur, sql, params=None):
    """Executes and drains, so an error is raised whether it comes from prepare, GetFlightInfo or DoGet."""
    cur.execute(sql, params)
    return cur.fetchall()


def rows(table):
    return [tuple(r.values()) for r in table.to_pylist()]


# --- raw Flight: Flight SQL commands packed by hand (protobuf inside google.protobuf.Any) ---

def _varint(n):
    n &= (1 << 64) - 1  # a negative int32 goes on the wire as ten bytes of two's complement
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes_field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number, value):
    return _varint(number << 3) + _varint(value)


def sql_command(name, body=b"", package="arrow.flight.protocol.sql"):
    return _bytes_field(1, f"type.googleapis.com/{package}.{name}".encode()) + _bytes_field(2, body)


def statement_query(sql):
    return sql_command("CommandStatementQuery", _bytes_field(1, sql.encode()))


def bearer(client):
    return flight.FlightCallOptions(headers=[client.authenticate_basic_token("tester", "secret")],
                                    timeout=RPC_TIMEOUT_S)


def raw_fetch(client, command, options):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
    tables = [client.do_get(ep.ticket, options).read_all() for ep in info.endpoints]
    return pa.concat_tables(tables) if tables else info.schema.empty_table()


def assert_serving(server):
    """Both front doors still answer and the process is up."""
    assert server.proc.poll() is None, server.log()
    with adbc_connect(server) as c, c.cursor() as cur:
        assert run(cur, "SELECT 1 AS one") == [(1,)]
    with server.connect() as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


# --- authentication -------------------------------------------------------------------------

def test_handshake_gives_a_bearer_token_and_calls_without_a_header_are_accepted(server):
    client = flight.FlightClient(server.flight_uri)
    try:
        key, value = client.authenticate_basic_token("alice", "any password")
        assert key.lower() == b"authorization"
        assert value.startswith(b"Bearer ") and len(value) > len(b"Bearer ")
        with_token = flight.FlightCallOptions(headers=[(key, value)], timeout=RPC_TIMEOUT_S)
        assert raw_fetch(client, statement_query("SELECT 41 + 1 AS answer"), with_token).to_pylist() == [{"answer": 42}]
        anonymous = flight.FlightCallOptions(timeout=RPC_TIMEOUT_S)
        assert raw_fetch(client, statement_query("SELECT 'x' AS s"), anonymous).to_pylist() == [{"s": "x"}]
    finally:
        client.close()
    with adbc_connect(server, username=None) as c, c.cursor() as cur:
        assert run(cur, "SELECT 2 AS two") == [(2,)], "ADBC without credentials works"


def test_an_unknown_bearer_token_is_unauthenticated_on_every_call(server):
    client = flight.FlightClient(server.flight_uri)
    try:
        good = bearer(client)
        bad = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer not-a-token-we-issued")],
                                       timeout=RPC_TIMEOUT_S)
        query = flight.FlightDescriptor.for_command(statement_query("SELECT 1 AS one"))
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(query, bad)
        ticket = client.get_flight_info(query, good).endpoints[0].ticket
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.do_get(ticket, bad).read_all()
        assert client.do_get(ticket, good).read_all().to_pylist() == [{"one": 1}]
    finally:
        client.close()

    with pytest.raises(ProgrammingError) as e:
        with adbc_connect(server, username=None,
                          **{DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer not-a-token-we-issued"}) as c:
            with c.cursor() as cur:
                run(cur, "SELECT 1")
    assert e.value.status_code == AdbcStatusCode.UNAUTHENTICATED, e.value
    assert_serving(server)


# --- queries ------------------------------------------------------------------------------

def test_query_results_equal_psycopg_for_every_type(server, adbc):
    import datetime
    import decimal
    with server.connect() as pg:
        pg.execute("CREATE TABLE fty (b BOOLEAN, i2 SMALLINT, i4 INT, i8 BIGINT NOT NULL, f4 REAL,"
                   " f8 DOUBLE PRECISION, n NUMERIC(10,2), t TEXT, by BYTEA, d DATE, ts TIMESTAMP,"
                   " tz TIMESTAMPTZ) WITH (partitions = 2, key = 'i8')")
        utc = datetime.timezone.utc
        for row in [
            (True, 2, 4, 8, 1.5, 2.25, decimal.Decimal("12.34"), "héllo", b"\x00\x01\xff", datetime.date(2024, 2, 29),
             datetime.datetime(2024, 2, 29, 12, 34, 56, 789000), datetime.datetime(2024, 2, 29, 12, 34, 56, tzinfo=utc)),
            (False, -2, -4, -8, -0.5, -1e300, decimal.Decimal("-0.01"), "", b"", datetime.date(1970, 1, 1),
             datetime.datetime(1999, 12, 31, 23, 59, 59), datetime.datetime(1999, 12, 31, 22, 0, tzinfo=utc)),
            (None, None, None, 9, None, None, None, None, None, None, None, None),
        ]:
            pg.execute("INSERT INTO fty VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
        queries = [
            "SELECT * FROM fty ORDER BY i8",
            "SELECT i8, t || '!' AS shout, n * 2 AS twice, ts + INTERVAL '1 day' AS next_day FROM fty ORDER BY i8",
            "SELECT count(*) AS n, sum(i4) AS s, min(t) AS lo, max(d) AS hi FROM fty",
            "SELECT i8, _partition, _offset, _key, _timestamp FROM fty ORDER BY i8",
        ]
        for sql in queries:
            cur = pg.execute(sql)
            expected, names = cur.fetchall(), [d.name for d in cur.description]
            got = fetch(adbc, sql)
            assert got.column_names == names, sql
            assert rows(got) == expected, sql
    assert names == ["i8", "_partition", "_offset", "_key", "_timestamp"]
    assert set(fetch(adbc, "SELECT * FROM fty").column_names).isdisjoint(SYSTEM_COLUMNS)


def test_a_million_row_result_arrives_complete_in_several_batches(big):
    with adbc_connect(big) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name, x FROM big")
        batches = list(cur.fetch_record_batch())
    table = pa.Table.from_batches(batches)
    assert len(batches) > 1, "a big result is streamed, not sent as one message"
    assert table.num_rows == BIG_ROWS
    ids = table.column("id")
    assert pc.count_distinct(ids).as_py() == BIG_ROWS
    assert (pc.min(ids).as_py(), pc.max(ids).as_py()) == (0, BIG_ROWS - 1)
    assert pc.sum(ids).as_py() == BIG_ROWS * (BIG_ROWS - 1) // 2
    assert pc.sum(table.column("x")).as_py() == sum(range(BIG_ROWS)) * 0.5
    assert pc.sum(pc.utf8_length(table.column("name"))).as_py() == sum(len(f"n{i}") for i in range(BIG_ROWS))
    with big.connect() as pg:
        assert pg.execute("SELECT count(*), sum(id), sum(x) FROM big").fetchone() == (
            table.num_rows, pc.sum(ids).as_py(), pc.sum(table.column("x")).as_py())


def test_a_client_that_leaves_after_the_first_batch_does_not_hurt_the_server(big):
    for _ in range(3):
        conn = adbc_connect(big)
        cur = conn.cursor()
        cur.execute("SELECT id, name, x FROM big")
        reader = cur.fetch_record_batch()
        assert 0 < reader.read_next_batch().num_rows < BIG_ROWS
        # While that stream is stalled, other clients are served.
        with big.connect() as pg:
            assert pg.execute("SELECT count(*) FROM big").fetchone() == (BIG_ROWS,)
        with adbc_connect(big) as other, other.cursor() as other_cur:
            assert run(other_cur, "SELECT count(*) FROM big") == [(BIG_ROWS,)]
        del reader
        cur.close()
        conn.close()

    client = flight.FlightClient(big.flight_uri)
    options = bearer(client)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT * FROM big")), options)
    stream = client.do_get(info.endpoints[0].ticket, options)
    assert stream.read_chunk().data.num_rows > 0
    stream.cancel()
    client.close()

    assert_serving(big)
    with adbc_connect(big) as conn, conn.cursor() as cur:
        assert run(cur, "SELECT count(*), sum(id) FROM big") == [(BIG_ROWS, BIG_ROWS * (BIG_ROWS - 1) // 2)]


def test_statement_query_and_statement_update_without_prepare(server, adbc):
    """ADBC's cursor always prepares; the bare statement API sends CommandStatementQuery and
    CommandStatementUpdate, which other Flight SQL clients (JDBC, Go, Rust) use directly."""
    stmt = adbc_driver_manager.AdbcStatement(adbc.adbc_connection)
    try:
        stmt.set_sql_query("CREATE TABLE fupd (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION)")
        stmt.execute_update()
        stmt.set_sql_query("INSERT INTO fupd VALUES (1, 'a', 0.5), (2, 'b', 1.5), (3, 'c', 2.5)")
        assert stmt.execute_update() == 3
        stmt.set_sql_query("INSERT INTO fupd SELECT id + 10, name, x FROM fupd WHERE x > 1")
        assert stmt.execute_update() == 2
        stmt.set_sql_query("SELECT id, name FROM fupd WHERE x > 1 ORDER BY id")
        handle, _ = stmt.execute_query()
        reader = pa.RecordBatchReader._import_from_c(handle.address)
        got = rows(reader.read_all())
        del reader
    finally:
        stmt.close()
    assert got == [(2, "b"), (3, "c"), (12, "b"), (13, "c")]
    with server.connect() as pg:
        assert pg.execute("SELECT id, name FROM fupd WHERE x > 1 ORDER BY id").fetchall() == got


def test_ddl_and_insert_through_execute_are_seen_by_psycopg(server, adbc):
    with adbc.cursor() as cur:
        cur.execute("CREATE TABLE fddl (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION) WITH (partitions = 2)")
        with server.connect() as pg:
            assert pg.execute("SELECT count(*) FROM fddl").fetchone() == (0,)
        cur.execute("INSERT INTO fddl VALUES (1, 'a', 1.5), (2, NULL, 2.5)")
        with server.connect() as pg:
            assert pg.execute("SELECT id, name, x FROM fddl ORDER BY id").fetchall() == [(1, "a", 1.5), (2, None, 2.5)]
            pg.execute("INSERT INTO fddl VALUES (3, 'from pg', 3.5)")
        assert run(cur, "SELECT id, name FROM fddl ORDER BY id") == [(1, "a"), (2, None), (3, "from pg")]
        cur.execute("DROP TABLE fddl")
    with server.connect() as pg:
        with pytest.raises(pg_errors.UndefinedTable):
            pg.execute("SELECT * FROM fddl")


def test_prepared_statement_is_reused_with_different_parameters(server, adbc):
    with server.connect() as pg:
        pg.execute("CREATE TABLE fprep (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION)")
        pg.execute("INSERT INTO fprep VALUES (1, 'n1', 1.5), (2, 'n2', 3.0), (3, 'n3', 4.5), (4, 'n4', 6.0), (5, 'n5', 7.5)")
    sql = "SELECT id, name FROM fprep WHERE id >= $1 AND name <> $2 ORDER BY id"
    with adbc.cursor() as cur:
        assert run(cur, sql, (2, "n3")) == [(2, "n2"), (4, "n4"), (5, "n5")]
        assert run(cur, sql, (4, "n5")) == [(4, "n4")]
        assert run(cur, sql, (9, "n1")) == []
        cur.executemany("INSERT INTO fprep VALUES ($1, $2, $3)", [(10, "ten", 10.0), (11, None, 11.0), (12, "twelve", 12.5)])
        assert cur.rowcount == 3
    with server.connect() as pg:
        assert pg.execute("SELECT id, name, x FROM fprep WHERE id >= %s ORDER BY id", (10,)).fetchall() == [
            (10, "ten", 10.0), (11, None, 11.0), (12, "twelve", 12.5)]
        assert pg.execute("SELECT id, name FROM fprep WHERE id >= %s AND name <> %s ORDER BY id", (4, "n5")).fetchall() == [
            (4, "n4"), (10, "ten"), (12, "twelve")]


def test_polars_and_pandas_read_through_adbc(server, adbc):
    with server.connect() as pg:
        pg.execute("CREATE TABLE fpl (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION)")
        pg.execute("INSERT INTO fpl VALUES (1, 'a', 0.25), (2, NULL, 0.5), (3, 'c', 0.75)")
        expected = pg.execute("SELECT id, name, x FROM fpl ORDER BY id").fetchall()
    df = pl.read_database("SELECT id, name, x FROM fpl ORDER BY id", connection=adbc)
    assert df.columns == ["id", "name", "x"]
    assert df.rows() == expected
    df = pl.read_database("SELECT id, name FROM fpl WHERE id > $1 ORDER BY id", connection=adbc,
                          execute_options={"parameters": [1]})
    assert df.rows() == [(2, None), (3, "c")]
    with adbc.cursor() as cur:
        cur.execute("SELECT id, name, x FROM fpl ORDER BY id")
        pdf = cur.fetch_df()
    assert list(pdf.columns) == ["id", "name", "x"]
    assert list(pdf.itertuples(index=False, name=None)) == expected


# --- bulk ingest ----------------------------------------------------------------------------

def test_ingest_create_then_append_is_counted_by_psycopg(server, adbc):
    first = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", None, "c"], "x": [0.5, 1.5, 2.5]})
    with adbc.cursor() as cur:
        assert cur.adbc_ingest("fing", first, mode="create") == 3
    with server.connect() as pg:
        cur = pg.execute("SELECT id, name, x FROM fing ORDER BY id")
        assert cur.fetchall() == [(1, "a", 0.5), (2, None, 1.5), (3, "c", 2.5)]
        assert [d.type_code for d in cur.description][::2] == [20, 701], "int64 -> bigint, float64 -> double"
        assert [d.name for d in pg.execute("SELECT * FROM fing").description] == ["id", "name", "x"]
        assert pg.execute("SELECT min(_offset) FROM fing").fetchone() == (0,), "a stream table like any other"

    def batch(lo, hi):
        return pa.record_batch({"id": pa.array(range(lo, hi), pa.int64()), "name": [f"r{i}" for i in range(lo, hi)],
                                "x": [i * 0.5 for i in range(lo, hi)]}, schema=first.schema)
    more = pa.RecordBatchReader.from_batches(first.schema, [batch(4, 1004), batch(1004, 2004)])
    with adbc.cursor() as cur:
        assert cur.adbc_ingest("fing", more, mode="append") == 2000
    with server.connect() as pg:
        assert pg.execute("SELECT count(*), sum(id) FROM fing").fetchone() == (2003, sum(range(1, 2004)))

    with adbc.cursor() as cur:
        with pytest.raises(ProgrammingError) as e:
            cur.adbc_ingest("fing", first, mode="create")
        assert "fing" in str(e.value)
        with pytest.raises(ProgrammingError) as e:
            cur.adbc_ingest("fing_absent", first, mode="append")
        assert "fing_absent" in str(e.value)
    with server.connect() as pg:
        assert pg.execute("SELECT count(*) FROM fing").fetchone() == (2003,)
        with pytest.raises(pg_errors.UndefinedTable):
            pg.execute("SELECT * FROM fing_absent")


def test_ingest_that_does_not_fit_the_table_is_refused_whole(server, adbc):
    with server.connect() as pg:
        pg.execute("CREATE TABLE fmis (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION)")
        pg.execute("INSERT INTO fmis VALUES (1, 'one', 1.0)")
    fits = pa.table({"id": [2], "name": ["two"], "x": [2.0]})  # nullable fields, no nulls: fine for NOT NULL
    wrong_name = pa.table({"id": [3], "nom": ["three"], "x": [3.0]})
    wrong_type = pa.table({"id": [3], "name": ["three"], "x": ["not a number"]})
    extra_column = pa.table({"id": [3], "name": ["three"], "x": [3.0], "y": [1]})
    good = pa.record_batch({"id": list(range(100, 1100)), "name": ["ok"] * 1000, "x": [0.0] * 1000}, schema=fits.schema)
    null_id = pa.record_batch({"id": [2000, None], "name": ["a", "b"], "x": [0.0, 0.0]}, schema=fits.schema)
    with adbc.cursor() as cur:
        assert cur.adbc_ingest("fmis", fits, mode="append") == 1
        for bad in (wrong_name, wrong_type, extra_column,
                    pa.RecordBatchReader.from_batches(fits.schema, [good, null_id])):
            with pytest.raises(ProgrammingError):
                cur.adbc_ingest("fmis", bad, mode="append")
    with server.connect() as pg:
        assert pg.execute("SELECT id FROM fmis ORDER BY id").fetchall() == [(1,), (2,)], "nothing of a refused put lands"
    assert_serving(server)


# --- errors ---------------------------------------------------------------------------------

def test_sql_errors_are_client_errors_carrying_the_postgres_message(server, adbc):
    with server.connect() as pg:
        pg.execute("CREATE TABLE ferr (id BIGINT NOT NULL)")
    with adbc.cursor() as cur:
        with pytest.raises(ProgrammingError) as e:
            run(cur, "SELEC 1")
        assert e.value.status_code == AdbcStatusCode.INVALID_ARGUMENT and "SELEC" in str(e.value)
        with pytest.raises(ProgrammingError) as e:
            run(cur, "SELECT * FROM no_such_table")
        assert e.value.status_code == AdbcStatusCode.NOT_FOUND
        assert "no_such_table" in str(e.value) and "does not exist" in str(e.value)
        with pytest.raises(ProgrammingError) as e:
            run(cur, "SELECT CAST('abc' AS BIGINT)")
        assert e.value.status_code == AdbcStatusCode.INVALID_ARGUMENT
        with pytest.raises(ProgrammingError) as e:
            run(cur, "INSERT INTO ferr VALUES ('abc')")
        assert e.value.status_code == AdbcStatusCode.INVALID_ARGUMENT
        with pytest.raises(ProgrammingError):
            run(cur, "INSERT INTO ferr VALUES (NULL)")
        with pytest.raises(ProgrammingError) as e:
            run(cur, "CREATE TABLE ferr (id INT)")
        assert "ferr" in str(e.value)
        with pytest.raises(ProgrammingError):
            run(cur, "SELECT * FROM ferr_absent WHERE id = $1", (1,))
        for refused in ("UPDATE ferr SET id = 2", "DELETE FROM ferr"):
            with pytest.raises((ProgrammingError, NotSupportedError)):
                run(cur, refused)
        assert run(cur, "SELECT count(*) FROM ferr") == [(0,)], "the connection is usable after every error"
    with server.connect() as pg:
        assert pg.execute("SELECT count(*) FROM ferr").fetchone() == (0,)


def test_garbage_tickets_and_unknown_commands_are_refused_and_the_server_keeps_serving(server):
    client = flight.FlightClient(server.flight_uri)
    try:
        options = bearer(client)
        with pytest.raises(pa.ArrowInvalid):  # INVALID_ARGUMENT
            client.do_get(flight.Ticket(b"\x00\x01 not a ticket \xff" * 8), options).read_all()
        with pytest.raises((pa.ArrowInvalid, pa.ArrowKeyError)):  # a statement handle we never issued
            client.do_get(flight.Ticket(sql_command("TicketStatementQuery", _bytes_field(1, b"no such handle"))),
                          options).read_all()
        with pytest.raises((pa.ArrowInvalid, pa.ArrowNotImplementedError)):
            client.do_get(flight.Ticket(sql_command("NoSuchTicket", b"", package="streamhouse")), options).read_all()
        for descriptor in (flight.FlightDescriptor.for_command(b"\x00 not protobuf \xff"),
                           flight.FlightDescriptor.for_command(sql_command("CommandNoSuchThing")),
                           flight.FlightDescriptor.for_path("streamhouse", "public", "t")):
            with pytest.raises((pa.ArrowInvalid, pa.ArrowNotImplementedError)):
                client.get_flight_info(descriptor, options)
        assert raw_fetch(client, statement_query("SELECT 1 AS one"), options).to_pylist() == [{"one": 1}]
    finally:
        client.close()
    assert_serving(server)


# --- metadata -------------------------------------------------------------------------------

def test_get_objects_table_schema_table_types_and_info(server, adbc):
    with server.connect() as pg:
        pg.execute("CREATE TABLE fmeta (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION)")
    catalogs = adbc.adbc_get_objects(depth="catalogs").read_all().to_pylist()
    assert "streamhouse" in [c["catalog_name"] for c in catalogs]
    schemas = {c["catalog_name"]: [s["db_schema_name"] for s in c["catalog_db_schemas"] or []]
               for c in adbc.adbc_get_objects(depth="db_schemas").read_all().to_pylist()}
    assert "public" in schemas["streamhouse"]

    tables = [(c["catalog_name"], s["db_schema_name"], t)
              for c in adbc.adbc_get_objects(depth="all", table_name_filter="fmeta").read_all().to_pylist()
              for s in c["catalog_db_schemas"] or [] for t in s["db_schema_tables"] or []]
    assert [(cat, sch, t["table_name"]) for cat, sch, t in tables] == [("streamhouse", "public", "fmeta")]
    table = tables[0][2]
    columns = [col for col in table["table_columns"] if col["column_name"] not in SYSTEM_COLUMNS]
    assert [col["column_name"] for col in columns] == ["id", "name", "x"]
    positions = [col["ordinal_position"] for col in columns]
    assert positions == sorted(positions) and len(set(positions)) == 3
    table_types = adbc.adbc_get_table_types()
    assert table["table_type"] in table_types
    by_type = adbc.adbc_get_objects(depth="tables", table_name_filter="fmeta",
                                    table_types_filter=[table["table_type"]]).read_all().to_pylist()
    assert any(t["table_name"] == "fmeta" for c in by_type for s in c["catalog_db_schemas"] or []
               for t in s["db_schema_tables"] or [])

    schema = adbc.adbc_get_table_schema("fmeta", db_schema_filter="public")
    user = [f for f in schema if f.name not in SYSTEM_COLUMNS]
    assert [f.name for f in user] == ["id", "name", "x"]
    assert pa.types.is_int64(user[0].type) and not user[0].nullable
    assert (pa.types.is_string(user[1].type) or pa.types.is_large_string(user[1].type)
            or pa.types.is_string_view(user[1].type)) and user[1].nullable
    assert pa.types.is_float64(user[2].type) and user[2].nullable
    with pytest.raises(ProgrammingError):
        adbc.adbc_get_table_schema("fmeta_absent")

    info = adbc.adbc_get_info()
    assert "streamhouse" in str(info.get("vendor_name")).lower(), info
    assert info.get("vendor_version"), info


def test_xdbc_type_info_and_empty_key_commands(server):
    client = flight.FlightClient(server.flight_uri)
    try:
        options = bearer(client)
        types = raw_fetch(client, sql_command("CommandGetXdbcTypeInfo"), options)
        assert types.column_names[:3] == ["type_name", "data_type", "column_size"]
        codes = set(types.column("data_type").to_pylist())
        assert {-5, 8} <= codes, "BIGINT and DOUBLE are listed"
        assert codes & {1, 12, -1, -8, -9, -10}, "a character type is listed"
        only_bigint = raw_fetch(client, sql_command("CommandGetXdbcTypeInfo", _int_field(1, -5)), options)
        assert only_bigint.num_rows >= 1 and set(only_bigint.column("data_type").to_pylist()) == {-5}

        with server.connect() as pg:
            pg.execute("CREATE TABLE fkeys (id BIGINT NOT NULL)")
        where = _bytes_field(1, b"streamhouse") + _bytes_field(2, b"public") + _bytes_field(3, b"fkeys")
        pk = raw_fetch(client, sql_command("CommandGetPrimaryKeys", where), options)
        assert pk.num_rows == 0
        assert pk.column_names == ["catalog_name", "db_schema_name", "table_name", "column_name", "key_name",
                                   "key_sequence"]
        for name in ("CommandGetExportedKeys", "CommandGetImportedKeys"):
            keys = raw_fetch(client, sql_command(name, where), options)
            assert keys.num_rows == 0, name
            assert keys.column_names[:4] == ["pk_catalog_name", "pk_db_schema_name", "pk_table_name",
                                             "pk_column_name"], name
    finally:
        client.close()


# --- one server with a million rows, shared by the tests that only read it -----------------

@pytest.fixture(scope="module")
def big(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("flight-big") / "data").start()
    try:
        with s.connect() as c:
            c.execute("CREATE TABLE big (id BIGINT NOT NULL, name TEXT, x DOUBLE PRECISION) WITH (partitions = 4)")
            with c.cursor().copy("COPY big FROM STDIN") as copy:
                for start in range(0, BIG_ROWS, 100_000):
                    copy.write("".join(f"{i}\tn{i}\t{i * 0.5}\n" for i in range(start, start + 100_000)))
            assert c.execute("SELECT count(*) FROM big").fetchone() == (BIG_ROWS,)
        yield s
    finally:
        s.stop(signal.SIGKILL)
