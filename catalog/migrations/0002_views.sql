-- Views: a name for a query. The definition is the SQL text of the query, planned again
-- each time the view is used, so it follows the tables it reads.
CREATE TABLE sh_views (
    schema_name   TEXT   NOT NULL REFERENCES sh_schemas (name),
    name          TEXT   NOT NULL,
    definition    TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (schema_name, name)
);
