"""Schema registry on the HTTP listener, black-box: the Confluent REST API through plain
HTTP and through confluent-kafka's SchemaRegistryClient, and Avro / JSON Schema values
produced with confluent-kafka's serializers into typed tables, then read with SQL."""

import datetime
import json
import struct

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def avro_record(*fields):
    return json.dumps({"type": "record", "name": "Order", "fields": list(fields)})


ID = {"name": "id", "type": "long"}
ITEM = {"name": "item", "type": "string"}
AMOUNT_DEFAULT = {"name": "amount", "type": "double", "default": 0.0}
AMOUNT = {"name": "amount", "type": "double"}


def call(server, method, path, body=None):
    r = requests.request(method, server.registry_url + path, headers=CT,
                         data=None if body is None else json.dumps(body), timeout=10)
    assert r.headers["Content-Type"].startswith("application/vnd.schemaregistry.v1+json"), r.headers
    return r.status_code, r.json()


def test_rest_api_subjects_versions_and_errors(server):
    status, body = call(server, "POST", "/subjects/orders-value/versions", {"schema": avro_record(ID, ITEM)})
    assert status == 200, body
    first = body["id"]
    # The same schema with other spacing and key order keeps its id and adds no version;
    # the text stays as first registered.
    reordered = json.dumps({"fields": [ID, ITEM], "name": "Order", "type": "record"}, indent=2)
    status, body = call(server, "POST", "/subjects/orders-value/versions", {"schema": reordered})
    assert (status, body["id"], body["version"], body["schema"]) == (200, first, 1, avro_record(ID, ITEM))
    # A new field with a default is BACKWARD compatible (the default level).
    status, body = call(server, "POST", "/subjects/orders-value/versions", {"schema": avro_record(ID, ITEM, AMOUNT_DEFAULT)})
    assert status == 200 and body["version"] == 2 and body["id"] != first
    second = body["id"]
    # One without a default cannot read version 2's data written without it: refused, 409.
    status, body = call(server, "POST", "/subjects/orders-value/versions", {"schema": avro_record(ID, ITEM, {"name": "x", "type": "int"})})
    assert status == 409 and body["error_code"] == 409, body

    assert call(server, "GET", "/subjects") == (200, ["orders-value"])
    assert call(server, "GET", "/subjects/orders-value/versions") == (200, [1, 2])
    status, body = call(server, "GET", "/subjects/orders-value/versions/latest")
    assert (status, body["version"], body["id"], body["subject"]) == (200, 2, second, "orders-value")
    assert "schemaType" not in body, "Avro is the default type and is left out, as Confluent does"
    status, body = call(server, "GET", f"/schemas/ids/{first}")
    assert status == 200 and json.loads(body["schema"]) == json.loads(avro_record(ID, ITEM))
    assert call(server, "GET", f"/schemas/ids/{second}/versions") == (200, [{"subject": "orders-value", "version": 2}])
    status, body = call(server, "POST", "/subjects/orders-value", {"schema": avro_record(ID, ITEM)})
    assert (status, body["version"], body["id"]) == (200, 1, first)
    assert call(server, "GET", "/schemas/types") == (200, ["AVRO", "JSON"])

    # Errors carry Confluent's codes.
    assert call(server, "GET", "/subjects/nope/versions")[1]["error_code"] == 40401
    assert call(server, "GET", "/subjects/orders-value/versions/9")[1]["error_code"] == 40402
    assert call(server, "GET", "/schemas/ids/999")[1]["error_code"] == 40403
    assert call(server, "POST", "/subjects/orders-value", {"schema": avro_record(ID)})[1]["error_code"] == 40403
    status, body = call(server, "POST", "/subjects/bad-value/versions", {"schema": '{"type": "recrod"}'})
    assert (status, body["error_code"]) == (422, 42201)
    assert call(server, "POST", "/subjects/bad-value/versions", {"schema": "not json"})[1]["error_code"] == 42201
    assert call(server, "GET", "/subjects/orders-value/versions/zero")[1]["error_code"] == 42202
    assert call(server, "PUT", "/config", {"compatibility": "SIDEWAYS"})[1]["error_code"] == 42203
    status, body = call(server, "POST", "/subjects/p-value/versions", {"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"})
    assert status == 422 and "Protobuf" in body["message"]


def test_compatibility_levels_and_checks(server):
    call(server, "POST", "/subjects/c-value/versions", {"schema": avro_record(ID, ITEM)})
    call(server, "POST", "/subjects/c-value/versions", {"schema": avro_record(ID, ITEM, AMOUNT_DEFAULT)})
    # AMOUNT without default reads version 2's data but not version 1's.
    latest_only = call(server, "POST", "/compatibility/subjects/c-value/versions/latest?verbose=true", {"schema": avro_record(ID, ITEM, AMOUNT)})
    assert latest_only == (200, {"is_compatible": True, "messages": []})
    assert call(server, "POST", "/compatibility/subjects/c-value/versions/1", {"schema": avro_record(ID, ITEM, AMOUNT)}) == (200, {"is_compatible": False})

    # Against "latest" of a subject with no versions, anything is compatible.
    assert call(server, "POST", "/compatibility/subjects/new-value/versions/latest", {"schema": avro_record(ID)}) == (200, {"is_compatible": True})
    assert call(server, "POST", "/compatibility/subjects/new-value/versions/3", {"schema": avro_record(ID)})[1]["error_code"] == 40402
    assert call(server, "GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert call(server, "GET", "/config/c-value")[1]["error_code"] == 40408
    assert call(server, "GET", "/config/c-value?defaultToGlobal=true") == (200, {"compatibilityLevel": "BACKWARD"})
    assert call(server, "PUT", "/config/c-value", {"compatibility": "BACKWARD_TRANSITIVE"}) == (200, {"compatibility": "BACKWARD_TRANSITIVE"})
    status, body = call(server, "POST", "/compatibility/subjects/c-value/versions?verbose=true", {"schema": avro_record(ID, ITEM, AMOUNT)})
    assert status == 200 and body["is_compatible"] is False and body["messages"], body
    assert call(server, "POST", "/subjects/c-value/versions", {"schema": avro_record(ID, ITEM, AMOUNT)})[0] == 409

    # FORWARD: old readers must read new data; dropping a field without default breaks them.
    assert call(server, "PUT", "/config/c-value", {"compatibility": "FORWARD"})[0] == 200
    assert call(server, "POST", "/subjects/c-value/versions", {"schema": avro_record(ID, AMOUNT_DEFAULT)})[0] == 409
    assert call(server, "PUT", "/config/c-value", {"compatibility": "NONE"})[0] == 200
    assert call(server, "POST", "/subjects/c-value/versions", {"schema": avro_record(ID, AMOUNT_DEFAULT)})[0] == 200
    assert call(server, "DELETE", "/config/c-value") == (200, {"compatibilityLevel": "NONE"})
    assert call(server, "PUT", "/config", {"compatibility": "FULL"}) == (200, {"compatibility": "FULL"})
    assert call(server, "GET", "/config") == (200, {"compatibilityLevel": "FULL"})

    # JSON Schema: adding an optional property to a closed model is BACKWARD compatible
    # (the new schema reads old documents) but not FORWARD (the old, closed schema refuses
    # documents carrying the new property), so the global FULL refuses it.
    closed = lambda props: json.dumps({"type": "object", "properties": props, "additionalProperties": False})
    s1 = {"schema": closed({"id": {"type": "integer"}}), "schemaType": "JSON"}
    s2 = {"schema": closed({"id": {"type": "integer"}, "note": {"type": "string"}}), "schemaType": "JSON"}
    assert call(server, "POST", "/subjects/j-value/versions", s1)[0] == 200
    status, body = call(server, "POST", "/subjects/j-value/versions", s2)
    assert status == 409 and "closed content model" in body["message"], body
    assert call(server, "PUT", "/config/j-value", {"compatibility": "BACKWARD"})[0] == 200
    status, body = call(server, "POST", "/subjects/j-value/versions", s2)
    assert status == 200 and body["schemaType"] == "JSON", body
    # Changing the id's type from integer to string breaks BACKWARD.
    s3 = {"schema": closed({"id": {"type": "string"}, "note": {"type": "string"}}), "schemaType": "JSON"}
    assert call(server, "POST", "/subjects/j-value/versions", s3)[0] == 409
    # A change inside $defs, reached through $ref, is seen.
    nested = lambda t: {"schemaType": "JSON", "schema": json.dumps({
        "type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "additionalProperties": False,
        "$defs": {"A": {"type": "object", "properties": {"n": {"type": t}}, "additionalProperties": False}}})}
    assert call(server, "POST", "/subjects/n-value/versions", nested("integer"))[0] == 200
    status, body = call(server, "POST", "/subjects/n-value/versions", nested("string"))
    assert status == 409 and "#/properties/a/properties/n" in body["message"], body


def test_delete_and_restart(server):
    for fields in [(ID,), (ID, AMOUNT_DEFAULT)]:
        call(server, "POST", "/subjects/d-value/versions", {"schema": avro_record(*fields)})
    assert call(server, "DELETE", "/subjects/d-value/versions/1?permanent=true")[1]["error_code"] == 40407
    assert call(server, "DELETE", "/subjects/d-value/versions/1") == (200, 1)
    assert call(server, "DELETE", "/subjects/d-value/versions/1")[1]["error_code"] == 40406
    assert call(server, "GET", "/subjects/d-value/versions") == (200, [2])
    assert call(server, "GET", "/subjects/d-value/versions?deleted=true") == (200, [1, 2])
    assert call(server, "DELETE", "/subjects/d-value/versions/1?permanent=true") == (200, 1)
    call(server, "POST", "/subjects/kept-value/versions", {"schema": avro_record(ID, ITEM)})
    assert call(server, "DELETE", "/subjects/d-value?permanent=true")[1]["error_code"] == 40405
    assert call(server, "DELETE", "/subjects/d-value") == (200, [2])
    assert call(server, "DELETE", "/subjects/d-value")[1]["error_code"] == 40404
    assert call(server, "GET", "/subjects") == (200, ["kept-value"])
    assert call(server, "DELETE", "/subjects/d-value?permanent=true") == (200, [2])
    assert call(server, "GET", "/subjects?deleted=true") == (200, ["kept-value"])

    server.restart()
    status, body = call(server, "GET", "/subjects/kept-value/versions/1")
    assert status == 200 and body["schema"] == avro_record(ID, ITEM), "the text as registered, after a restart"


def test_avro_producer_into_typed_table(server, conn):
    conn.execute("CREATE TABLE orders (id BIGINT, item TEXT, amount DOUBLE PRECISION, at TIMESTAMPTZ, note TEXT)")
    schema = json.dumps({"type": "record", "name": "Order", "fields": [
        ID, ITEM, {"name": "amount", "type": "double"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None}]})
    registry = SchemaRegistryClient({"url": server.registry_url})
    serialize = AvroSerializer(registry, schema)
    ctx = SerializationContext("orders", MessageField.VALUE)
    p = Producer({"bootstrap.servers": server.kafka_addr, "acks": "all", "linger.ms": 5})
    errors = []
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
    for i in range(50):
        value = {"id": i, "item": f"item-{i % 5}", "amount": i * 1.5, "at": start + datetime.timedelta(seconds=i),
                 "note": None if i % 2 else f"n{i}"}
        p.produce("orders", key=str(i).encode(), value=serialize(value, ctx), on_delivery=lambda e, m: errors.append(e))
    assert p.flush(20) == 0
    assert len(errors) == 50 and all(e is None for e in errors), errors[:3]

    rows = conn.execute("SELECT id, item, amount, at, note, _key FROM orders ORDER BY id").fetchall()
    assert len(rows) == 50
    assert rows[3] == (3, "item-3", 4.5, start + datetime.timedelta(seconds=3), None, "3")
    assert rows[4][4] == "n4"
    # The subject the serializer registered (topic-value) is in the registry.
    assert "orders-value" in registry.get_subjects()

    # A framed value naming a schema that does not exist is refused; nothing is written.
    bad = Producer({"bootstrap.servers": server.kafka_addr, "acks": "all", "retries": 0})
    outcome = []
    bad.produce("orders", value=b"\x00" + struct.pack(">I", 4242) + b"\x02", on_delivery=lambda e, m: outcome.append(e))
    bad.flush(10)
    assert outcome and outcome[0] is not None and outcome[0].name() == "INVALID_RECORD", outcome
    # Avro bytes that do not fit the schema are refused too.
    good_id = registry.get_latest_version("orders-value").schema_id
    bad.produce("orders", value=b"\x00" + struct.pack(">I", good_id) + b"\xff\xff", on_delivery=lambda e, m: outcome.append(e))
    bad.flush(10)
    assert outcome[1] is not None and outcome[1].name() == "INVALID_RECORD", outcome
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 50


def test_json_schema_producer_into_typed_table(server, conn):
    conn.execute("CREATE TABLE readings (sensor TEXT, celsius DOUBLE PRECISION)")
    schema = json.dumps({"type": "object", "properties": {"sensor": {"type": "string"}, "celsius": {"type": "number"}},
                         "required": ["sensor", "celsius"]})
    registry = SchemaRegistryClient({"url": server.registry_url})
    serialize = JSONSerializer(schema, registry)
    ctx = SerializationContext("readings", MessageField.VALUE)
    p = Producer({"bootstrap.servers": server.kafka_addr, "acks": "all"})
    for i in range(10):
        p.produce("readings", value=serialize({"sensor": f"s{i}", "celsius": 20 + i / 10}, ctx))
    # Plain JSON values still work beside framed ones.
    p.produce("readings", value=json.dumps({"sensor": "plain", "celsius": -1.0}).encode())
    assert p.flush(20) == 0
    rows = conn.execute("SELECT sensor, celsius FROM readings ORDER BY sensor").fetchall()
    assert len(rows) == 11 and ("s3", 20.3) in rows and ("plain", -1.0) in rows
    version = registry.get_latest_version("readings-value")
    assert version.schema.schema_type == "JSON" and version.version == 1


def test_registry_client_errors(server):
    registry = SchemaRegistryClient({"url": server.registry_url})
    with pytest.raises(SchemaRegistryError) as e:
        registry.get_schema(12345)
    assert e.value.error_code == 40403
    assert registry.test_compatibility("x-value", Schema(avro_record(ID), "AVRO")) is True, "no versions yet"
    schema_id = registry.register_schema("x-value", Schema(avro_record(ID), "AVRO"))
    assert registry.get_schema(schema_id).schema_str == avro_record(ID) and registry.get_versions("x-value") == [1]
    registry.set_compatibility("x-value", "FULL_TRANSITIVE")
    assert registry.get_compatibility("x-value") == "FULL_TRANSITIVE"
    assert registry.test_compatibility("x-value", Schema(avro_record(ID, AMOUNT_DEFAULT), "AVRO")) is True
    assert registry.test_compatibility("x-value", Schema(avro_record(ID, AMOUNT), "AVRO")) is False
