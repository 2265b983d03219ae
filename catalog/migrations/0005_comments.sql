-- COMMENT ON TABLE / VIEW / COLUMN: descriptions in the users' words. ASK links questions
-- to them. A relation's own comment has column_name ''. Dropping the relation drops them.
CREATE TABLE sh_comments (
    schema_name TEXT NOT NULL,
    relation    TEXT NOT NULL,
    column_name TEXT NOT NULL,
    comment     TEXT NOT NULL,
    PRIMARY KEY (schema_name, relation, column_name)
);
