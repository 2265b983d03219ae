-- Kafka consumer-group offsets (OffsetCommit / OffsetFetch): the next offset a group will
-- read from each partition of a table. Keyed by table id, which is never reused, so a
-- topic dropped and created again under the same name starts without committed offsets,
-- as in Kafka.
CREATE TABLE sh_consumer_offsets (
    group_id        TEXT    NOT NULL,
    table_id        BIGINT  NOT NULL,
    partition_index INTEGER NOT NULL,
    next_offset     BIGINT  NOT NULL,
    metadata        TEXT,
    committed_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (group_id, table_id, partition_index)
);
