"""gRPC ingest, black-box: the repository's .proto compiled with grpcio-tools, then real
grpcio calls — unary and client-streaming, JSON lines and Arrow IPC — checked with SQL and
with the offsets the server returns."""

import importlib
import json
import sys
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "extensions/grpc/proto"
PROTO = "streamhouse/ingest/v1/ingest.proto"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpc_gen")
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", PROTO])
    assert rc == 0, "the .proto must compile"
    sys.path.insert(0, str(out))
    try:
        pb = importlib.import_module("streamhouse.ingest.v1.ingest_pb2")
        stubs = importlib.import_module("streamhouse.ingest.v1.ingest_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb, stubs


@pytest.fixture
def stub(server, api):
    channel = grpc.insecure_channel(server.grpc_addr)
    yield api[1].IngestStub(channel)
    channel.close()


def json_lines(rows):
    return "\n".join(json.dumps(r) for r in rows).encode()


def ipc(table):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_unary_json_and_arrow(server, conn, api, stub):
    pb = api[0]
    conn.execute("CREATE TABLE events (id BIGINT, name TEXT, score DOUBLE PRECISION)")
    answer = stub.Produce(pb.ProduceRequest(table="events", json=json_lines({"id": i, "name": f"n{i}", "score": i / 2} for i in range(10))))
    assert answer.rows == 10
    assert [(p.partition, p.base_offset, p.rows) for p in answer.partitions] == [(0, 0, 10)]
    # Table names fold to lower case, as in SQL.
    assert stub.Produce(pb.ProduceRequest(table="Events", json=b'{"id": -1}')).partitions[0].base_offset == 10

    # Arrow IPC by column name, in another order, with a missing column (null) and a cast.
    batch = pa.table({"name": ["a", "b"], "id": pa.array([100, 101], pa.int32())})
    answer = stub.Produce(pb.ProduceRequest(table="public.events", arrow_ipc=ipc(batch)))
    assert answer.rows == 2 and [(p.base_offset, p.rows) for p in answer.partitions] == [(11, 2)]

    rows = conn.execute("SELECT id, name, score, _offset FROM events ORDER BY _offset").fetchall()
    assert len(rows) == 13
    assert rows[3] == (3, "n3", 1.5, 3)
    assert rows[12] == (101, "b", None, 12)


def test_offsets_across_partitions(server, conn, api, stub):
    pb = api[0]
    conn.execute("CREATE TABLE keyed (k TEXT, v BIGINT) WITH (partitions = 3, key = 'k')")
    # More rows than one decoded batch (1024): still one range per partition.
    n = 5000
    answer = stub.Produce(pb.ProduceRequest(table="keyed", json=json_lines({"k": f"key{i % 7}", "v": i} for i in range(n))))
    assert answer.rows == n
    assert sorted(p.partition for p in answer.partitions) == [0, 1, 2], "one range per partition"
    for p in answer.partitions:
        got = conn.execute("SELECT count(*), min(_offset), max(_offset) FROM keyed WHERE _partition = %s", (p.partition,)).fetchone()
        assert got == (p.rows, p.base_offset, p.base_offset + p.rows - 1)


def test_client_streaming(server, conn, api, stub):
    pb = api[0]
    conn.execute("CREATE TABLE streamed (i BIGINT)")

    def requests():
        for chunk in range(5):
            yield pb.ProduceRequest(table="streamed", json=json_lines({"i": chunk * 100 + j} for j in range(100)))

    answer = stub.ProduceStream(requests())
    assert answer.rows == 500 and len(answer.requests) == 5
    assert [r.partitions[0].base_offset for r in answer.requests] == [0, 100, 200, 300, 400]
    assert conn.execute("SELECT count(*), sum(i) FROM streamed").fetchone() == (500, sum(range(500)))

    # A bad request ends the stream with its error; the ones before it stay written.
    def then_bad():
        yield pb.ProduceRequest(table="streamed", json=json_lines([{"i": 1}]))
        yield pb.ProduceRequest(table="streamed", json=b'{"i": "not a number"}')
        yield pb.ProduceRequest(table="streamed", json=json_lines([{"i": 2}]))

    with pytest.raises(grpc.RpcError) as e:
        stub.ProduceStream(then_bad())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "request 2" in e.value.details()
    assert conn.execute("SELECT count(*) FROM streamed").fetchone()[0] == 501


def test_bad_requests(server, conn, api, stub):
    pb = api[0]
    conn.execute("CREATE TABLE strict (a BIGINT NOT NULL, b TEXT)")
    cases = [
        (pb.ProduceRequest(table="nope", json=b'{"a": 1}'), grpc.StatusCode.NOT_FOUND),
        (pb.ProduceRequest(table="strict"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ProduceRequest(table="strict", json=b'{"a": 1}\n{"a": '), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ProduceRequest(table="strict", json=b'{"a": 1, "typo": 2}'), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ProduceRequest(table="strict", json=b'{"b": "no a"}'), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ProduceRequest(table="strict", arrow_ipc=b"garbage bytes"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ProduceRequest(table="strict", arrow_ipc=ipc(pa.table({"zz": [1]}))), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, code in cases:
        with pytest.raises(grpc.RpcError) as e:
            stub.Produce(request)
        assert e.value.code() == code, (request, e.value.details())
    # Nothing of any refused request was written.
    assert conn.execute("SELECT count(*) FROM strict").fetchone()[0] == 0
    # The server is fine afterwards.
    assert stub.Produce(pb.ProduceRequest(table="strict", json=b'{"a": 7}')).rows == 1

    # A materialized view's table is written by its maintenance only.
    conn.execute("CREATE MATERIALIZED VIEW strict_copy AS SELECT a, b FROM strict")
    with pytest.raises(grpc.RpcError) as e:
        stub.Produce(pb.ProduceRequest(table="strict_copy", json=b'{"a": 1}'))
    assert e.value.code() != grpc.StatusCode.OK and "materialized" in e.value.details()

    # An unknown method is UNIMPLEMENTED, not a crash.
    channel = grpc.insecure_channel(server.grpc_addr)
    call = channel.unary_unary("/streamhouse.ingest.v1.Ingest/Nope", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        call(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()
