-- Catalog schema v1.
--
-- One migration tree serves both SQLite and PostgreSQL, so only portable types are used
-- (BIGINT, INTEGER, TEXT) and no AUTOINCREMENT/SERIAL: ids come from sh_id_sequence,
-- bumped inside the creating transaction. Tables carry an `sh_` prefix so a catalog can
-- live in a PostgreSQL database that also holds other things.

-- One row; next_id is the next table id to hand out. Ids are never reused, so a dropped
-- table's leftover files (named by id) can never be mistaken for a new table's.
CREATE TABLE sh_id_sequence (
    id      INTEGER PRIMARY KEY,
    next_id BIGINT  NOT NULL
);
INSERT INTO sh_id_sequence (id, next_id) VALUES (1, 1);

-- Namespaces for tables (the SQL `schema`, not the Arrow schema).
CREATE TABLE sh_schemas (
    name TEXT PRIMARY KEY
);
-- The default schema exists from the start, like in PostgreSQL; it can be dropped.
INSERT INTO sh_schemas (name) VALUES ('public');

-- A stream table. arrow_schema and options are JSON (serde) so new column types and new
-- options need no migration.
CREATE TABLE sh_tables (
    id            BIGINT  PRIMARY KEY,
    schema_name   TEXT    NOT NULL REFERENCES sh_schemas (name),
    name          TEXT    NOT NULL,
    arrow_schema  TEXT    NOT NULL,
    options       TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    UNIQUE (schema_name, name)
);

-- Per-partition offsets. committed_offset: offsets below it are in committed segments;
-- start_offset: offsets below it were removed by retention.
CREATE TABLE sh_partitions (
    table_id         BIGINT  NOT NULL REFERENCES sh_tables (id),
    partition_id     INTEGER NOT NULL,
    committed_offset BIGINT  NOT NULL,
    start_offset     BIGINT  NOT NULL,
    PRIMARY KEY (table_id, partition_id)
);

-- Immutable Parquet segments covering [base_offset, end_offset) of one partition.
-- The primary key doubles as the index for "segments of a table in offset order".
CREATE TABLE sh_segments (
    table_id         BIGINT  NOT NULL,
    partition_id     INTEGER NOT NULL,
    base_offset      BIGINT  NOT NULL,
    end_offset       BIGINT  NOT NULL,
    row_count        BIGINT  NOT NULL,
    min_timestamp_ms BIGINT  NOT NULL,
    max_timestamp_ms BIGINT  NOT NULL,
    size_bytes       BIGINT  NOT NULL,
    path             TEXT    NOT NULL,
    created_at_ms    BIGINT  NOT NULL,
    PRIMARY KEY (table_id, partition_id, base_offset),
    FOREIGN KEY (table_id, partition_id) REFERENCES sh_partitions (table_id, partition_id)
);
