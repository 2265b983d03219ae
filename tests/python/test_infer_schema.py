"""Schema inference for raw topics: JSON produced by a Kafka client into a raw topic,
proposed as typed columns (INFER SCHEMA), then a table copied from it or a materialized
view that keeps decoding new records."""

import json
import time

import psycopg
import pytest
from confluent_kafka import Producer

READINGS = [
    {"device": {"id": 7, "site": "berlin"}, "temp": 21.5, "ok": True, "at": "2026-11-28T10:00:00Z", "tags": ["a"]},
    {"device": {"id": 8, "site": "paris"}, "temp": 19, "ok": False, "at": "2026-11-28T10:00:05Z", "tags": []},
    {"device": {"id": 9}, "temp": 22.25, "at": "2026-11-28T10:00:09+01:00", "note": "hot"},
]


def produce(server, topic, values):
    p = Producer({"bootstrap.servers": server.kafka_addr})
    for v in values:
        p.produce(topic, value=v if isinstance(v, bytes) else json.dumps(v).encode())
    assert p.flush(10) == 0


def test_infer_then_table_then_live_view(server, conn):
    produce(server, "readings", READINGS)
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    proposal = conn.execute("INFER SCHEMA FROM TOPIC readings").fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in proposal] == [
        ("device_id", "BIGINT", "$.device.id", False, 3),
        ("device_site", "TEXT", "$.device.site", True, 2),
        ("temp", "DOUBLE PRECISION", "$.temp", False, 3),
        ("ok", "BOOLEAN", "$.ok", True, 2),
        ("at", "TIMESTAMPTZ", "$.at", False, 3),
        ("tags", "JSON", "$.tags", True, 2),
        ("note", "TEXT", "$.note", True, 1),
    ]
    select = next(n for n in notices if n.startswith("to decode the records: "))[len("to decode the records: "):]
    assert len(conn.execute(select).fetchall()) == 3, "the SELECT shown runs as it is"
    # Nothing was created by looking.
    assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'typed'").fetchone()[0] == 0

    conn.execute("CREATE TABLE typed FROM TOPIC readings INFER SCHEMA")
    rows = conn.execute("SELECT device_id, device_site, temp, ok, at, tags, note FROM typed ORDER BY device_id").fetchall()
    assert [r[:4] for r in rows] == [(7, "berlin", 21.5, True), (8, "paris", 19.0, False), (9, None, 22.25, None)]
    assert rows[2][4].isoformat() == "2026-11-28T09:00:09+00:00"
    assert [r[5] for r in rows] == [["a"], [], None], "JSON values, decoded by psycopg"
    assert rows[2][6] == "hot"
    described = conn.execute("SELECT * FROM typed LIMIT 0").description
    assert [(d.name, d.type_code) for d in described] == [
        ("device_id", 20), ("device_site", 25), ("temp", 701), ("ok", 16), ("at", 1184), ("tags", 114), ("note", 25)]
    with pytest.raises(psycopg.errors.DuplicateTable):
        conn.execute("CREATE TABLE typed FROM TOPIC readings INFER SCHEMA")
    conn.execute("CREATE TABLE IF NOT EXISTS typed FROM TOPIC readings INFER SCHEMA")
    assert conn.execute("SELECT count(*) FROM typed").fetchone()[0] == 3, "IF NOT EXISTS copies nothing again"

    conn.execute("CREATE MATERIALIZED VIEW live FROM TOPIC readings INFER SCHEMA LIMIT 2")
    # New records keep arriving, one of them not JSON at all: the view decodes what it can.
    # A later "at" that is no time gives NULL there, not a stopped view.
    produce(server, "readings", [{"device": {"id": 10, "site": "rome"}, "temp": 30, "at": "soon"}, b"\xff not json"])
    deadline = time.time() + 15
    while time.time() < deadline:
        live = conn.execute("SELECT device_id, device_site, temp, at IS NULL FROM live ORDER BY device_id NULLS LAST").fetchall()
        if len(live) == 5:
            break
        time.sleep(0.1)
    assert live == [(7, "berlin", 21.5, False), (8, "paris", 19.0, False), (9, None, 22.25, False),
                    (10, "rome", 30.0, True), (None, None, None, True)]


def test_what_cannot_be_inferred_is_refused_clearly(server, conn):
    conn.execute("CREATE TABLE typed_already (a int)")
    conn.execute("INSERT INTO typed_already VALUES (1)")
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("INFER SCHEMA FROM TOPIC no_such_topic")
    with pytest.raises(psycopg.errors.DatatypeMismatch):
        conn.execute("INFER SCHEMA FROM TOPIC typed_already")
    produce(server, "garbage", [b"plain text", b"[1, 2]", b"\x00\x01"])
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        conn.execute("INFER SCHEMA FROM TOPIC garbage")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        conn.execute("CREATE TABLE g FROM TOPIC garbage INFER SCHEMA")
    assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'g'").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("INFER SCHEMA FROM TOPIC garbage LIMIT lots")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("INFER SCHEMA FROM TOPIC garbage LIMIT 1000000")
    conn.execute("CREATE TABLE empty_topic (key bytea, value bytea)")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("INFER SCHEMA FROM TOPIC empty_topic")
    # The extended protocol describes the proposal's columns.
    cur = conn.cursor()
    produce(server, "described", [{"x": 1}])
    cur.execute("INFER SCHEMA FROM TOPIC described", prepare=True)
    assert [d.name for d in cur.description] == ["column_name", "data_type", "json_path", "nullable", "records_with_value", "example"]


def test_quoted_names_stay_names(server, conn):
    """A quote inside a quoted name is part of the name, never SQL of its own."""
    produce(server, "odd", [{"a": 1}])
    conn.execute("CREATE TABLE victim (x int)")
    conn.execute('CREATE TABLE "x"" (a int); DROP TABLE victim; --" FROM TOPIC odd INFER SCHEMA')
    assert conn.execute('SELECT a FROM "x"" (a int); DROP TABLE victim; --"').fetchall() == [(1,)]
    assert conn.execute("SELECT count(*) FROM victim").fetchone()[0] == 0, "victim is still there"
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute('INFER SCHEMA FROM TOPIC "od""d"')
