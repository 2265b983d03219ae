"""Kafka protocol endpoint, black-box with real Kafka clients: kafka-python (pure Python)
and confluent-kafka (librdkafka). Topics are stream tables: what a producer writes is
queried with SQL through psycopg, and rows inserted with SQL are consumed with Kafka."""

import json
import socket
import subprocess
import struct
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer as CConsumer
from confluent_kafka import KafkaException, TopicPartition as CTopicPartition
from confluent_kafka import Producer as CProducer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, NewTopic
from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

from conftest import Server

TIMEOUT_MS = 15000


def producer(server, **kw):
    return KafkaProducer(bootstrap_servers=server.kafka_addr, request_timeout_ms=TIMEOUT_MS, **kw)


def consumer(server, *topics, **kw):
    kw.setdefault("auto_offset_reset", "earliest")
    kw.setdefault("consumer_timeout_ms", 5000)
    return KafkaConsumer(*topics, bootstrap_servers=server.kafka_addr, request_timeout_ms=TIMEOUT_MS + 5000, **kw)


def drain(c, want, timeout_s=20):
    """Records from a kafka-python consumer until `want` arrived or time ran out."""
    got = []
    deadline = time.time() + timeout_s
    while len(got) < want and time.time() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
    return got


def test_produce_then_consume_and_query(server, conn):
    p = producer(server, acks="all")
    futures = [p.send("clicks", key=f"u{i % 3}".encode(), value=f"page-{i}".encode(),
                      headers=[("trace", f"t{i}".encode()), ("empty", b"")]) for i in range(100)]
    offsets = [f.get(timeout=10).offset for f in futures]
    p.close()
    assert offsets == list(range(100)), "one partition: offsets 0..99 in send order"

    c = consumer(server, "clicks", group_id=None)
    got = drain(c, 100)
    c.close()
    assert [r.value for r in got] == [f"page-{i}".encode() for i in range(100)]
    assert got[5].key == b"u2"
    assert got[5].headers == [("trace", b"t5"), ("empty", b"")]
    assert [r.offset for r in got] == list(range(100))

    # The topic is a table: SQL sees every record.
    rows = conn.execute("SELECT key, value, _offset FROM clicks ORDER BY _offset").fetchall()
    assert len(rows) == 100
    assert bytes(rows[7][0]) == b"u1" and bytes(rows[7][1]) == b"page-7" and rows[7][2] == 7
    assert conn.execute("SELECT count(*) FROM clicks WHERE timestamp IS NOT NULL").fetchone()[0] == 100


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_compression(server, conn, codec):
    topic = f"comp_{codec}"
    p = CProducer({"bootstrap.servers": server.kafka_addr, "compression.type": codec, "linger.ms": 20,
                   "acks": "all"})
    delivered = []
    for i in range(500):
        p.produce(topic, value=json.dumps({"i": i, "pad": "x" * 50}).encode(), key=str(i).encode(),
                  on_delivery=lambda err, msg: delivered.append(err))
    assert p.flush(20) == 0
    assert len(delivered) == 500 and all(e is None for e in delivered), delivered[:3]

    c = CConsumer({"bootstrap.servers": server.kafka_addr, "group.id": f"g-{codec}",
                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen = []
    deadline = time.time() + 30
    while len(seen) < 500 and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        seen.append(json.loads(m.value())["i"])
    c.close()
    assert sorted(seen) == list(range(500))
    assert conn.execute(f"SELECT count(*) FROM {topic}").fetchone()[0] == 500


def test_typed_table_takes_json_and_refuses_what_does_not_fit(server, conn):
    conn.execute("CREATE TABLE orders (id BIGINT NOT NULL, item TEXT, qty INT, placed TIMESTAMPTZ)")
    p = producer(server, acks="all", linger_ms=0)
    md = p.send("orders", key=b"o1", value=json.dumps(
        {"id": 1, "item": "apple", "qty": 3, "placed": "2026-11-27T10:00:00Z"}).encode()).get(timeout=10)
    assert md.offset == 0
    p.send("orders", value=b'{"id": 2, "item": "pear"}').get(timeout=10)
    # Not JSON, wrong type, a missing NOT NULL column: each refused, nothing written.
    for bad in [b"not json", b'{"id": "x"}', b'{"item": "no id"}']:
        with pytest.raises(Exception):
            p.send("orders", value=bad).get(timeout=10)
    p.close()
    rows = conn.execute("SELECT id, item, qty, _key FROM orders ORDER BY id").fetchall()
    assert rows == [(1, "apple", 3, "o1"), (2, "pear", None, None)]

    # Rows written with SQL are consumable, as JSON objects of the columns.
    conn.execute("INSERT INTO orders (id, item, qty) VALUES (3, 'fig', 7)")
    c = consumer(server, "orders", group_id=None)
    got = drain(c, 3)
    c.close()
    values = [json.loads(r.value) for r in got]
    assert [v["id"] for v in values] == [1, 2, 3]
    assert values[2] == {"id": 3, "item": "fig", "qty": 7, "placed": None}
    assert values[0]["placed"].startswith("2026-11-27T10:00:00")
    assert got[0].key == b"o1"


def test_admin_create_list_delete(server, conn):
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr, request_timeout_ms=TIMEOUT_MS)
    admin.create_topics([NewTopic("events", num_partitions=3, replication_factor=1)])
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic("events", num_partitions=1, replication_factor=1)])
    # Retention maps to the table's options; a setting that cannot be honoured is refused.
    admin.create_topics([NewTopic("short_lived", num_partitions=1, replication_factor=1,
                                  topic_configs={"retention.ms": "60000"})])
    kept = admin.describe_configs([ConfigResource("TOPIC", "short_lived")], config_filter="all")["topic"]["short_lived"]
    assert kept["retention.ms"]["value"] == "60000"
    # A compacted topic is a key-compacted table: SQL reads the latest record per key.
    admin.create_topics([NewTopic("compacted", num_partitions=1, replication_factor=1,
                                  topic_configs={"cleanup.policy": "compact"})])
    kept = admin.describe_configs([ConfigResource("TOPIC", "compacted")], config_filter="all")["topic"]["compacted"]
    assert kept["cleanup.policy"]["value"] == "compact"
    p = producer(server)
    for key, value in [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]:
        p.send("compacted", key=key, value=value)
    p.flush()
    p.close()
    rows = conn.execute("SELECT key, value FROM compacted ORDER BY key").fetchall()
    assert [(bytes(k), bytes(v)) for k, v in rows] == [(b"a", b"3"), (b"b", b"2")]
    with pytest.raises(Exception):
        admin.create_topics([NewTopic("odd", num_partitions=1, replication_factor=1,
                                      topic_configs={"cleanup.policy": "shred"})])
    assert "odd" not in admin.list_topics()
    with pytest.raises(InvalidReplicationFactorError):
        admin.create_topics([NewTopic("replicated", num_partitions=1, replication_factor=3)])
    assert "events" in admin.list_topics()
    described = admin.describe_topics(["events"])
    assert len(described[0]["partitions"]) == 3
    configs = admin.describe_configs([ConfigResource("TOPIC", "events")], config_filter="all")["topic"]["events"]
    assert configs["cleanup.policy"]["value"] == "delete"
    assert configs["message.timestamp.type"]["value"] == "CreateTime", "a raw topic keeps the producer's timestamp"
    # SQL sees the new table with its partitions.
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    admin.delete_topics(["events"])
    assert "events" not in admin.list_topics()
    with pytest.raises(Exception):
        conn.execute("SELECT * FROM events")
    admin.close()


def test_partitions_offsets_and_times(server):
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr)
    admin.create_topics([NewTopic("parts", num_partitions=4, replication_factor=1)])
    admin.close()
    p = producer(server, acks=1)
    before = int(time.time() * 1000) - 1
    for i in range(40):
        p.send("parts", value=str(i).encode(), partition=i % 4)
    p.flush()
    p.close()
    c = consumer(server, group_id=None)
    tps = [TopicPartition("parts", i) for i in range(4)]
    assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
    assert c.end_offsets(tps) == {tp: 10 for tp in tps}
    by_time = c.offsets_for_times({tps[1]: before, tps[2]: int(time.time() * 1000) + 60_000})
    assert by_time[tps[1]].offset == 0
    assert by_time[tps[2]] is None, "no record at or after a future time"
    c.assign([tps[3]])
    c.seek(tps[3], 7)
    got = drain(c, 3)
    assert [r.value for r in got] == [b"31", b"35", b"39"]
    c.close()


def test_consumer_group_shares_partitions_and_resumes(server):
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr)
    admin.create_topics([NewTopic("shared", num_partitions=4, replication_factor=1)])
    admin.close()
    p = producer(server)
    for i in range(200):
        p.send("shared", value=str(i).encode(), partition=i % 4)
    p.flush()

    kw = dict(group_id="workers", enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    # Each member polls in its own thread, as consumers of one group run in practice.
    a = consumer(server, "shared", **kw)
    b = consumer(server, "shared", **kw)
    seen = {}
    stop = time.time() + 40

    def run(c, name):
        while time.time() < stop and len(seen) < 200:
            for records in c.poll(timeout_ms=300).values():
                for r in records:
                    seen[r.value] = name
        while time.time() < stop and not (a.assignment() and b.assignment()):
            c.poll(timeout_ms=100)

    threads = [threading.Thread(target=run, args=(c, n)) for c, n in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 200
    assert a.assignment() and b.assignment(), "both members got partitions"
    assert not (a.assignment() & b.assignment()), "no partition is read by two members"
    a.commit()
    b.commit()
    a.close()
    b.close()

    # A new member of the group resumes after the committed offsets, also after a restart.
    for i in range(200, 204):
        p.send("shared", value=str(i).encode(), partition=i % 4)
    p.flush()
    p.close()
    server.restart()
    c = consumer(server, "shared", **kw)
    got = drain(c, 4)
    c.close()
    assert sorted(int(r.value) for r in got) == [200, 201, 202, 203]


def test_group_listed_and_described(server, conn):
    p = producer(server)
    p.send("gl", value=b"x").get(timeout=10)
    p.close()
    c = consumer(server, "gl", group_id="listed-group", client_id="dashboard-1")
    assert len(drain(c, 1)) == 1
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr)
    c.commit()
    assert {"group_id": "listed-group", "protocol_type": "consumer", "group_state": "Stable"} in admin.list_groups()
    desc = admin.describe_groups(["listed-group"])["listed-group"]
    assert desc["group_state"] == "Stable" and desc["protocol_data"] == "range"
    (member,) = desc["members"]
    assert member["client_id"] == "dashboard-1"
    assert member["member_assignment"]["assigned_partitions"] == [{"topic": "gl", "partitions": [0]}]
    offsets = admin.list_group_offsets("listed-group")["listed-group"]
    c.close()
    admin.close()
    assert offsets[TopicPartition("gl", 0)].offset == 1
    # Lag per group and partition is visible in SQL.
    p = producer(server)
    p.send("gl", value=b"y").get(timeout=10)
    p.close()
    rows = conn.execute("SELECT group_id, table_schema, table_name, partition, committed_offset, high_watermark, lag "
                        "FROM streamhouse.consumer_lag WHERE group_id = 'listed-group'").fetchall()
    assert rows == [("listed-group", "public", "gl", 0, 1, 2, 1)]


def test_acks_zero_and_unknown_topic_without_auto_create(tmp_path):
    server = Server(tmp_path / "d", ["--kafka-auto-create-topics", "false"]).start()
    try:
        p = producer(server, acks=0, max_block_ms=3000)
        with pytest.raises(Exception):
            p.send("missing", value=b"x").get(timeout=10)
        p.close()
        admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr)
        assert "missing" not in admin.list_topics()
        admin.create_topics([NewTopic("fire_and_forget", num_partitions=1, replication_factor=1)])
        admin.close()
        # acks=0: the broker sends no response at all; the records still land.
        c = CProducer({"bootstrap.servers": server.kafka_addr, "acks": 0, "linger.ms": 5})
        for i in range(50):
            c.produce("fire_and_forget", value=str(i).encode())
        assert c.flush(10) == 0
        with server.connect() as conn:
            deadline = time.time() + 10
            while conn.execute("SELECT count(*) FROM fire_and_forget").fetchone()[0] < 50 and time.time() < deadline:
                time.sleep(0.1)
            assert conn.execute("SELECT count(*) FROM fire_and_forget").fetchone()[0] == 50
    finally:
        server.stop()


def closed_without_reply(s):
    """Whether the server closed the connection without answering. It may close (and, with
    our bytes unread, reset) it before we finish sending, so ENOTCONN and ECONNRESET count."""
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def test_bad_bytes_close_the_connection_not_the_server(server, conn):
    host, port = server.kafka_addr.rsplit(":", 1)
    # Garbage, a frame over the limit, a negative length, an unknown API key.
    for payload in [b"\xff" * 64, struct.pack(">i", 200 * 1024 * 1024), struct.pack(">i", -5),
                    struct.pack(">ihhi", 10, 999, 0, 1) + b"\x00\x00"]:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(payload)
            assert closed_without_reply(s), "the connection is closed without a reply"
    c = CProducer({"bootstrap.servers": server.kafka_addr})
    c.produce("still_alive", value=b"ok")
    assert c.flush(10) == 0
    assert conn.execute("SELECT count(*) FROM still_alive").fetchone()[0] == 1


def test_view_and_materialized_view_over_a_topic(server, conn):
    conn.execute("CREATE TABLE temps (sensor TEXT, celsius DOUBLE PRECISION)")
    conn.execute("CREATE MATERIALIZED VIEW hot AS SELECT sensor, celsius FROM temps WHERE celsius > 30")
    p = producer(server, acks="all")
    for i, t in enumerate([20.5, 31.0, 35.5, 10.0]):
        p.send("temps", value=json.dumps({"sensor": f"s{i}", "celsius": t}).encode()).get(timeout=10)
    # A materialized view is written only by its maintenance.
    with pytest.raises(Exception):
        p.send("hot", value=b'{"sensor": "x", "celsius": 99}').get(timeout=10)
    p.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        rows = conn.execute("SELECT sensor FROM hot ORDER BY sensor").fetchall()
        if len(rows) == 2:
            break
        time.sleep(0.1)
    assert rows == [("s1",), ("s2",)]
    # Dropping a topic a view reads is refused, like DROP TABLE.
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr)
    with pytest.raises(Exception):
        admin.delete_topics(["temps"])
    admin.close()
    assert conn.execute("SELECT count(*) FROM temps").fetchone()[0] == 4


def test_kcat_produces_and_consumes(server, conn):
    """kcat (Debian's librdkafka tool) against the server, both ways."""
    lines = "\n".join(f"k{i}:v{i}" for i in range(20)) + "\n"
    subprocess.run(["kcat", "-b", server.kafka_addr, "-P", "-t", "kc", "-K", ":", "-X", "acks=all"],
                   input=lines.encode(), check=True, timeout=30)
    assert conn.execute("SELECT count(*) FROM kc").fetchone()[0] == 20
    out = subprocess.run(["kcat", "-b", server.kafka_addr, "-C", "-t", "kc", "-o", "beginning", "-e",
                          "-f", "%k=%s@%o\n"], capture_output=True, check=True, timeout=30).stdout.decode()
    assert out.splitlines() == [f"k{i}=v{i}@{i}" for i in range(20)]
    # Metadata as kcat lists it.
    listing = subprocess.run(["kcat", "-b", server.kafka_addr, "-L", "-t", "kc"], capture_output=True,
                             check=True, timeout=30).stdout.decode()
    assert 'topic "kc" with 1 partitions' in listing


def test_group_rebalances_when_a_member_leaves(server):
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr)
    admin.create_topics([NewTopic("leaving", num_partitions=4, replication_factor=1)])
    admin.close()
    kw = dict(group_id="pair", session_timeout_ms=6000, heartbeat_interval_ms=300)
    a = consumer(server, "leaving", **kw)
    b = consumer(server, "leaving", **kw)
    stop = time.time() + 30
    both = threading.Event()

    def run(c):
        while time.time() < stop and not both.is_set():
            c.poll(timeout_ms=100)
            if a.assignment() and b.assignment() and len(a.assignment() | b.assignment()) == 4:
                both.set()

    threads = [threading.Thread(target=run, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert both.is_set(), "the two members split the partitions"
    b.close()  # LeaveGroup: the remaining member takes every partition
    deadline = time.time() + 20
    while time.time() < deadline and len(a.assignment()) < 4:
        a.poll(timeout_ms=200)
    assert {tp.partition for tp in a.assignment()} == {0, 1, 2, 3}
    a.close()


def wait_for(query, conn, want, timeout_s=15):
    deadline = time.time() + timeout_s
    while True:
        got = conn.execute(query).fetchall()
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.1)


def test_create_partitions_grows_a_topic_live_and_durably(server, conn):
    """CreatePartitions adds partitions that producers, consumers, SQL, a running
    subscription and running materialized views all use at once, and that survive kill -9."""
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr, request_timeout_ms=TIMEOUT_MS)
    admin.create_topics([NewTopic("grow", num_partitions=1, replication_factor=1)])
    conn.execute("CREATE MATERIALIZED VIEW grow_count AS SELECT count(*) AS n FROM grow")
    conn.execute("CREATE MATERIALIZED VIEW grow_values AS SELECT value FROM grow")
    subscriber = server.connect(autocommit=False)
    feed = subscriber.cursor()
    feed.execute("DECLARE feed CURSOR FOR SUBSCRIBE grow")
    p = producer(server, acks="all")
    for i in range(10):
        p.send("grow", value=f"p0-{i}".encode(), partition=0).get(timeout=10)
    p.close()

    admin.create_partitions({"grow": 3})
    assert len(admin.describe_topics(["grow"])[0]["partitions"]) == 3
    p = producer(server, acks="all")
    for part in (1, 2):
        for i in range(10):
            assert p.send("grow", value=f"p{part}-{i}".encode(), partition=part).get(timeout=10).offset == i
    p.close()
    c = consumer(server, group_id=None)
    c.assign([TopicPartition("grow", 2)])
    assert [r.value for r in drain(c, 10)] == [f"p2-{i}".encode() for i in range(10)]
    c.close()
    by_partition = "SELECT _partition, count(*) FROM grow GROUP BY 1 ORDER BY 1"
    assert conn.execute(by_partition).fetchall() == [(0, 10), (1, 10), (2, 10)]
    assert wait_for("SELECT n FROM grow_count", conn, [(30,)]) == [(30,)], "the view follows the new partitions"
    assert wait_for("SELECT count(*) FROM grow_values", conn, [(30,)]) == [(30,)]
    seen = []
    deadline = time.time() + 15
    while len(seen) < 30 and time.time() < deadline:
        feed.execute("FETCH 100 feed WITH (timeout = '500ms')")
        seen.extend((r[0], bytes(r[3])) for r in feed.fetchall())
    assert sorted(seen) == sorted((part, f"p{part}-{i}".encode()) for part in range(3) for i in range(10)), \
        "the running subscription delivers the new partitions' rows"
    subscriber.rollback()
    subscriber.close()

    # SQL inserts spread over all partitions now (no key: each statement's rows go to
    # the next partition in turn).
    for _ in range(3):
        conn.execute("INSERT INTO grow (value) SELECT 'sql'::bytea FROM generate_series(1, 10)")
    assert conn.execute("SELECT count(DISTINCT _partition) FROM grow WHERE value = 'sql'::bytea").fetchone()[0] == 3

    from kafka.errors import InvalidPartitionsError, PolicyViolationError, UnknownTopicOrPartitionError
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({"grow": 2})  # partitions are never removed
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({"grow": 3})
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({"grow": 5000})
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.create_partitions({"no_such_topic": 2})
    with pytest.raises(PolicyViolationError):
        admin.create_partitions({"grow_count": 2})
    admin.create_partitions({"grow": 6}, validate_only=True)
    assert len(admin.describe_topics(["grow"])[0]["partitions"]) == 3, "validate_only changes nothing"
    admin.close()

    server.kill9()
    server.start()
    with server.connect() as after:
        assert after.execute(by_partition).fetchall() == [(0, 20), (1, 20), (2, 20)]
        p = producer(server, acks="all")
        assert p.send("grow", value=b"after", partition=2).get(timeout=10).offset == 20
        p.close()
        assert wait_for("SELECT n FROM grow_count", after, [(61,)]) == [(61,)]
        assert wait_for("SELECT count(*) FROM grow_values", after, [(61,)]) == [(61,)]


def test_group_member_picks_up_added_partitions(server):
    """A librdkafka group consumer notices new partitions on its metadata refresh, its
    group rebalances, and it reads them, as against Kafka."""
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_addr, request_timeout_ms=TIMEOUT_MS)
    admin.create_topics([NewTopic("widening", num_partitions=1, replication_factor=1)])
    c = CConsumer({"bootstrap.servers": server.kafka_addr, "group.id": "wideners", "auto.offset.reset": "earliest",
                   "topic.metadata.refresh.interval.ms": 500})
    c.subscribe(["widening"])
    p = CProducer({"bootstrap.servers": server.kafka_addr})
    p.produce("widening", value=b"first", partition=0)
    assert p.flush(10) == 0
    got = []
    deadline = time.time() + 20
    while not got and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.partition(), m.value()))
    admin.create_partitions({"widening": 4})
    admin.close()
    p = CProducer({"bootstrap.servers": server.kafka_addr})
    for part in (1, 2, 3):
        p.produce("widening", value=f"new-{part}".encode(), partition=part)
    assert p.flush(10) == 0
    deadline = time.time() + 30
    while len(got) < 4 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.partition(), m.value()))
    assert sorted(got) == [(0, b"first"), (1, b"new-1"), (2, b"new-2"), (3, b"new-3")]
    assert sorted(tp.partition for tp in c.assignment()) == [0, 1, 2, 3]
    c.close()
