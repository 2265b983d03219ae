-- The Confluent-compatible schema registry (served on the HTTP listener).
-- A schema has one id however many subjects use it; a subject is a list of versions,
-- each pointing at a schema id. Deleting a version first marks it deleted (soft), as the
-- Confluent registry does; a permanent delete removes the row.
CREATE TABLE sh_registry_schemas (
    schema_id   BIGINT PRIMARY KEY,
    schema_type TEXT   NOT NULL,  -- AVRO or JSON
    schema_text TEXT   NOT NULL,  -- as the client sent it
    canonical   TEXT   NOT NULL,  -- compacted JSON, keys sorted: what makes two schemas the same
    refs        TEXT   NOT NULL   -- the schema's references, a JSON array
);

CREATE TABLE sh_registry_versions (
    subject   TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    schema_id BIGINT  NOT NULL REFERENCES sh_registry_schemas (schema_id),
    deleted   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);

-- Compatibility level per subject; the row with subject '' is the global default.
CREATE TABLE sh_registry_config (
    subject       TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL
);
