//! Integration tests of the public catalog API.
//!
//! Every test body is written once and run against SQLite (a temporary file) and against
//! PostgreSQL when `STREAMHOUSE_TEST_PG_URL` is set (e.g. from `scripts/pg-tmp start DIR`);
//! each PostgreSQL test gets its own freshly created database so tests run in parallel.
//! Without the variable the PostgreSQL variants print that they were skipped.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, IntervalUnit, Schema, TimeUnit};
use sqlx::Connection;
use streamhouse_catalog::{Catalog, CommentEntry, Error, PartitionEntry, SegmentEntry, TableOptions};
use tempfile::TempDir;

const PG_URL_VAR: &str = "STREAMHOUSE_TEST_PG_URL";

/// A database for one test: its URL plus what must live (temp dir) or be cleaned up
/// (PostgreSQL database) with it.
struct TestDb {
    url: String,
    dir: Option<TempDir>,
    pg: Option<PgTestDb>,
}

struct PgTestDb {
    admin_url: String,
    name: String,
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        // A sub-directory that does not exist yet: connect must create it and the file.
        let path = dir.path().join("data").join("catalog.db");
        TestDb {
            url: format!("sqlite://{}", path.display()),
            dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let admin_url = std::env::var(PG_URL_VAR).ok().filter(|s| !s.is_empty())?;
        sqlx::any::install_default_drivers();
        let name = format!("sh_test_{test}_{}", std::process::id());
        let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(TestDb {
            url: with_database(&admin_url, &name),
            dir: None,
            pg: Some(PgTestDb { admin_url, name }),
        })
    }

    async fn open(&self) -> Catalog {
        Catalog::connect(&self.url).await.unwrap()
    }

    async fn cleanup(self) {
        if let Some(pg) = self.pg {
            let mut admin = sqlx::AnyConnection::connect(&pg.admin_url).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// `postgres://u@h:p/db?x` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Generates `<test>::sqlite` and `<test>::postgres` for each async test body
/// `async fn <test>(db: &TestDb)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = super::TestDb::sqlite();
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::TestDb::postgres(stringify!($name)).await {
                    Some(db) => {
                        super::$name(&db).await;
                        db.cleanup().await;
                    }
                    None => eprintln!(
                        "skipped {}::postgres: {} is not set",
                        stringify!($name),
                        super::PG_URL_VAR
                    ),
                }
            }
        }
    )*};
}

on_both_backends!(
    backend_and_default_schema,
    schemas_create_list_drop,
    tables_create_get_list_drop,
    arrow_schema_round_trip,
    partitions_created,
    commit_segment_and_conflicts,
    delete_segments_before_retention,
    reopen_persists,
    concurrent_commit_one_wins,
    concurrent_create_table_one_wins,
    views_create_replace_drop,
    schema_registry_store,
    comments_set_replace_and_drop_with_relation,
);

/// Schema ids are shared across subjects, versions count up (past soft-deleted ones),
/// a stale compatibility check is fenced, deletes go soft then permanent, levels persist.
async fn schema_registry_store(db: &TestDb) {
    let c = db.open().await;
    let (a, v1) = c.register_subject_version("s1", "AVRO", "\"long\"", "\"long\"", "[]", None).await.unwrap();
    assert_eq!(v1, 1);
    // Same schema again: same id, no new version.
    assert_eq!(c.register_subject_version("s1", "AVRO", "\"long\"", "\"long\"", "[]", Some(1)).await.unwrap(), (a, 1));
    let (b, v2) = c.register_subject_version("s1", "AVRO", "\"double\"", "\"double\"", "[]", Some(1)).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(v2, 2);
    // The same canonical form sent as other text keeps the id (and the first text).
    assert_eq!(c.register_subject_version("s1", "AVRO", " \"long\" ", "\"long\"", "[]", Some(2)).await.unwrap().0, a);
    assert_eq!(c.stored_schema(a).await.unwrap().unwrap().text, "\"long\"");
    // Another subject reuses the id of an identical schema.
    assert_eq!(c.register_subject_version("s2", "AVRO", "\"long\"", "\"long\"", "[]", None).await.unwrap(), (a, 1));
    // A registration checked against version 1 while 2 exists is refused.
    assert!(matches!(c.register_subject_version("s1", "AVRO", "\"string\"", "\"string\"", "[]", Some(1)).await, Err(Error::Conflict(_))));
    assert_eq!(c.stored_schema(b).await.unwrap().unwrap().text, "\"double\"");
    assert!(c.stored_schema(999).await.unwrap().is_none());
    assert_eq!(c.stored_schemas().await.unwrap().len(), 2);

    assert_eq!(c.delete_subject_versions("s1", Some(2), false).await.unwrap(), vec![2]);
    let versions = c.subject_versions(Some("s1")).await.unwrap();
    assert_eq!(versions.iter().map(|v| (v.version, v.deleted)).collect::<Vec<_>>(), vec![(1, false), (2, true)]);
    // The next version number skips the soft-deleted one.
    let (_, v3) = c.register_subject_version("s1", "AVRO", "\"string\"", "\"string\"", "[]", Some(1)).await.unwrap();
    assert_eq!(v3, 3);
    assert_eq!(c.delete_subject_versions("s1", Some(2), true).await.unwrap(), vec![2]);
    assert_eq!(c.subject_versions(None).await.unwrap().len(), 3);

    assert_eq!(c.compatibility_level(None).await.unwrap(), None);
    c.set_compatibility_level(None, Some("FULL")).await.unwrap();
    c.set_compatibility_level(Some("s1"), Some("NONE")).await.unwrap();
    c.set_compatibility_level(Some("s1"), Some("FORWARD")).await.unwrap();
    assert_eq!(c.compatibility_level(None).await.unwrap().as_deref(), Some("FULL"));
    assert_eq!(c.compatibility_level(Some("s1")).await.unwrap().as_deref(), Some("FORWARD"));
    c.set_compatibility_level(Some("s1"), None).await.unwrap();
    assert_eq!(c.compatibility_level(Some("s1")).await.unwrap(), None);
    c.close().await;
}

/// Views share the relation namespace with tables, survive reopening, keep a schema
/// from being dropped, and are replaced only when asked.
async fn views_create_replace_drop(db: &TestDb) {
    let cat = db.open().await;
    let schema = arrow_schema::Schema::new(vec![arrow_schema::Field::new("a", arrow_schema::DataType::Int64, true)]);
    cat.create_table("public", "t", &schema, &TableOptions::default(), false).await.unwrap();
    cat.create_view("public", "v", "SELECT a FROM t", false).await.unwrap();
    assert!(matches!(cat.create_view("public", "v", "SELECT 1", false).await, Err(Error::AlreadyExists(_))));
    assert!(matches!(cat.create_view("public", "t", "SELECT 1", true).await, Err(Error::AlreadyExists(_))));
    assert!(matches!(
        cat.create_table("public", "v", &schema, &TableOptions::default(), false).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(cat.create_view("nosuch", "v", "SELECT 1", false).await, Err(Error::SchemaNotFound(_))));
    cat.create_view("public", "v", "SELECT a + 1 FROM t", true).await.unwrap();

    cat.create_schema("other", false).await.unwrap();
    cat.create_view("other", "w", "SELECT 2", false).await.unwrap();
    assert!(matches!(cat.drop_schema("other", false).await, Err(Error::NotEmpty(_))));

    drop(cat);
    let cat = db.open().await;
    let mut views: Vec<_> = cat.list_views().await.unwrap().into_iter().map(|v| (v.schema, v.name, v.definition)).collect();
    views.sort();
    assert_eq!(
        views,
        vec![
            ("other".into(), "w".into(), "SELECT 2".into()),
            ("public".into(), "v".into(), "SELECT a + 1 FROM t".into())
        ]
    );
    assert!(cat.drop_view("other", "w").await.unwrap());
    assert!(!cat.drop_view("other", "w").await.unwrap());
    assert!(cat.drop_schema("other", false).await.unwrap());
}

/// Comments replace each other per object, `None` removes one, and dropping the table or
/// view removes all of its own (a new relation under the old name starts without any).
async fn comments_set_replace_and_drop_with_relation(db: &TestDb) {
    let cat = db.open().await;
    let schema = arrow_schema::Schema::new(vec![arrow_schema::Field::new("a", arrow_schema::DataType::Int64, true)]);
    cat.create_table("public", "t", &schema, &TableOptions::default(), false).await.unwrap();
    cat.create_view("public", "v", "SELECT a FROM t", false).await.unwrap();
    cat.set_comment("public", "t", None, Some("first")).await.unwrap();
    cat.set_comment("public", "t", None, Some("page views")).await.unwrap();
    cat.set_comment("public", "t", Some("a"), Some("load time in ms")).await.unwrap();
    cat.set_comment("public", "v", None, Some("a view")).await.unwrap();
    cat.set_comment("public", "v", None, None).await.unwrap();
    cat.set_comment("public", "v", Some("a"), Some("")).await.unwrap();
    let listed = |c: Vec<CommentEntry>| c.into_iter().map(|c| (c.relation, c.column, c.comment)).collect::<Vec<_>>();
    assert_eq!(
        listed(cat.list_comments().await.unwrap()),
        vec![
            ("t".to_string(), None, "page views".to_string()),
            ("t".to_string(), Some("a".to_string()), "load time in ms".to_string()),
        ]
    );
    // DROP VIEW of a table's name drops nothing, its comments included.
    assert!(!cat.drop_view("public", "t").await.unwrap());
    assert_eq!(cat.list_comments().await.unwrap().len(), 2);
    cat.set_comment("public", "v", None, Some("kept until dropped")).await.unwrap();
    assert!(cat.drop_view("public", "v").await.unwrap());
    cat.drop_table("public", "t").await.unwrap();
    assert!(cat.list_comments().await.unwrap().is_empty());
}

fn simple_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ])
}

fn opts(partitions: u32) -> TableOptions {
    TableOptions {
        partitions,
        ..TableOptions::default()
    }
}

fn seg(table_id: i64, partition: i32, base: i64, end: i64) -> SegmentEntry {
    SegmentEntry {
        table_id,
        partition,
        base_offset: base,
        end_offset: end,
        row_count: end - base,
        min_timestamp_ms: 1_700_000_000_000 + base,
        max_timestamp_ms: 1_700_000_000_000 + end - 1,
        size_bytes: 1000 * (end - base),
        path: format!("tables/{table_id}/{partition}/{base:020}.parquet"),
        created_at_ms: 1_700_000_000_123,
    }
}

async fn backend_and_default_schema(db: &TestDb) {
    let c = db.open().await;
    let expected = if db.pg.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(c.backend(), expected);
    assert_eq!(c.list_schemas().await.unwrap(), vec!["public".to_string()]);
    assert!(c.list_tables().await.unwrap().is_empty());
}

async fn schemas_create_list_drop(db: &TestDb) {
    let c = db.open().await;
    assert!(c.create_schema("analytics", false).await.unwrap());
    assert!(!c.create_schema("analytics", true).await.unwrap());
    assert!(matches!(
        c.create_schema("analytics", false).await,
        Err(Error::AlreadyExists(n)) if n == "analytics"
    ));
    // Case-sensitive as stored: the SQL layer does the lowercasing.
    assert!(c.create_schema("Analytics", false).await.unwrap());
    assert_eq!(
        c.list_schemas().await.unwrap(),
        vec!["Analytics", "analytics", "public"]
    );

    assert!(!c.drop_schema("nope", true).await.unwrap());
    assert!(matches!(
        c.drop_schema("nope", false).await,
        Err(Error::SchemaNotFound(n)) if n == "nope"
    ));

    c.create_table("analytics", "t", &simple_schema(), &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        c.drop_schema("analytics", false).await,
        Err(Error::NotEmpty(n)) if n == "analytics"
    ));
    assert!(matches!(
        c.drop_schema("analytics", true).await,
        Err(Error::NotEmpty(_))
    ));
    c.drop_table("analytics", "t").await.unwrap().unwrap();
    assert!(c.drop_schema("analytics", false).await.unwrap());
    assert!(c.drop_schema("Analytics", true).await.unwrap());
    assert_eq!(c.list_schemas().await.unwrap(), vec!["public"]);
    // The default schema is an ordinary schema: it can be dropped and recreated.
    assert!(c.drop_schema("public", false).await.unwrap());
    assert!(c.list_schemas().await.unwrap().is_empty());
    assert!(c.create_schema("public", false).await.unwrap());
}

async fn tables_create_get_list_drop(db: &TestDb) {
    let c = db.open().await;
    let schema = simple_schema();
    let options = TableOptions {
        partitions: 3,
        key: Some("id".into()),
        retention_ms: Some(7 * 24 * 3600 * 1000),
        retention_bytes: Some(1 << 30),
        materialized: None,
        watermark: None,
        compact: false,
    };
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = c
        .create_table("public", "events", &schema, &options, false)
        .await
        .unwrap()
        .expect("created");
    assert_eq!((t.schema.as_str(), t.name.as_str()), ("public", "events"));
    assert_eq!(*t.arrow_schema, schema);
    assert_eq!(t.options, options);
    assert!(t.created_at_ms >= before, "{} < {before}", t.created_at_ms);

    let got = c.get_table("public", "events").await.unwrap().unwrap();
    assert_eq!(got.id, t.id);
    assert_eq!(got.arrow_schema, t.arrow_schema);
    assert_eq!(got.options, options);
    assert_eq!(got.created_at_ms, t.created_at_ms);
    assert!(c.get_table("public", "Events").await.unwrap().is_none());
    assert!(c.get_table("other", "events").await.unwrap().is_none());

    // if_not_exists → None, otherwise AlreadyExists; nothing changes either way.
    assert!(c
        .create_table("public", "events", &schema, &opts(1), true)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        c.create_table("public", "events", &schema, &opts(1), false).await,
        Err(Error::AlreadyExists(n)) if n == "public.events"
    ));
    assert_eq!(c.partitions(t.id).await.unwrap().len(), 3);

    assert!(matches!(
        c.create_table("missing", "events", &schema, &opts(1), false).await,
        Err(Error::SchemaNotFound(n)) if n == "missing"
    ));
    assert!(matches!(
        c.create_table("missing", "events", &schema, &opts(1), true)
            .await,
        Err(Error::SchemaNotFound(_))
    ));
    assert!(matches!(
        c.create_table("public", "zero", &schema, &opts(0), false)
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(c.get_table("public", "zero").await.unwrap().is_none());

    // Same name in another schema is a different table.
    c.create_schema("s2", false).await.unwrap();
    let t2 = c
        .create_table("s2", "events", &schema, &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(t2.id, t.id);
    let t3 = c
        .create_table("public", "a_first", &schema, &opts(2), false)
        .await
        .unwrap()
        .unwrap();
    let listed: Vec<(String, String, i64)> = c
        .list_tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.schema, t.name, t.id))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("public".into(), "a_first".into(), t3.id),
            ("public".into(), "events".into(), t.id),
            ("s2".into(), "events".into(), t2.id),
        ]
    );

    // Drop removes table, partitions and segments, and returns the entry.
    c.commit_segment(&seg(t.id, 1, 0, 10)).await.unwrap();
    let dropped = c.drop_table("public", "events").await.unwrap().unwrap();
    assert_eq!(dropped.id, t.id);
    assert_eq!(dropped.options, options);
    assert_eq!(*dropped.arrow_schema, schema);
    assert!(c.get_table("public", "events").await.unwrap().is_none());
    assert!(c.partitions(t.id).await.unwrap().is_empty());
    assert!(c.segments(t.id).await.unwrap().is_empty());
    assert!(c.drop_table("public", "events").await.unwrap().is_none());
    assert!(c.drop_table("nope", "events").await.unwrap().is_none());
    // The other tables are untouched.
    assert_eq!(c.list_tables().await.unwrap().len(), 2);
    assert_eq!(c.partitions(t3.id).await.unwrap().len(), 2);

    // Ids are never reused, so old segment paths cannot collide with a new table's.
    let again = c
        .create_table("public", "events", &schema, &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    assert!(again.id > t3.id && again.id != t.id);
}

async fn arrow_schema_round_trip(db: &TestDb) {
    let c = db.open().await;
    let item = Arc::new(Field::new("item", DataType::Utf8, true));
    let mut field_meta = HashMap::new();
    field_meta.insert("comment".to_string(), "ingest time, UTC".to_string());
    let mut schema_meta = HashMap::new();
    schema_meta.insert(
        "watermark".to_string(),
        "ts - INTERVAL '5 seconds'".to_string(),
    );
    let schema = Schema::new_with_metadata(
        vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            )
            .with_metadata(field_meta),
            Field::new(
                "ts_local",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new(
                "ts_tz",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+05:30".into())),
                true,
            ),
            Field::new("price", DataType::Decimal128(38, 10), true),
            Field::new("big", DataType::Decimal256(76, 20), true),
            Field::new("tags", DataType::List(item.clone()), true),
            Field::new("large_tags", DataType::LargeList(item.clone()), true),
            Field::new("pair", DataType::FixedSizeList(item, 2), true),
            Field::new(
                "nested",
                DataType::Struct(Fields::from(vec![
                    Field::new("a", DataType::Int32, false),
                    Field::new(
                        "b",
                        DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                        true,
                    ),
                ])),
                true,
            ),
            Field::new(
                "attrs",
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(Fields::from(vec![
                            Field::new("key", DataType::Utf8, false),
                            Field::new("value", DataType::Int64, true),
                        ])),
                        false,
                    )),
                    false,
                ),
                true,
            ),
            Field::new(
                "country",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("payload", DataType::Binary, true),
            Field::new("hash", DataType::FixedSizeBinary(32), true),
            Field::new("day", DataType::Date32, true),
            Field::new("tod", DataType::Time64(TimeUnit::Microsecond), true),
            Field::new("ival", DataType::Interval(IntervalUnit::MonthDayNano), true),
            Field::new("dur", DataType::Duration(TimeUnit::Second), true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("text", DataType::LargeUtf8, true),
            Field::new("view", DataType::Utf8View, true),
            Field::new("Quoted Name \"x\" ü", DataType::UInt64, true),
        ],
        schema_meta,
    );
    let t = c
        .create_table("public", "wide", &schema, &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*t.arrow_schema, schema);
    let got = c.get_table("public", "wide").await.unwrap().unwrap();
    assert_eq!(*got.arrow_schema, schema);
    let listed = c.list_tables().await.unwrap();
    assert_eq!(*listed[0].arrow_schema, schema);
    // Reopening reads it from the database, not from any cache.
    drop(c);
    let c = db.open().await;
    assert_eq!(
        *c.get_table("public", "wide")
            .await
            .unwrap()
            .unwrap()
            .arrow_schema,
        schema
    );
}

async fn partitions_created(db: &TestDb) {
    let c = db.open().await;
    let t = c
        .create_table("public", "p", &simple_schema(), &opts(4), false)
        .await
        .unwrap()
        .unwrap();
    let parts = c.partitions(t.id).await.unwrap();
    let expected: Vec<PartitionEntry> = (0..4)
        .map(|p| PartitionEntry {
            table_id: t.id,
            partition: p,
            committed_offset: 0,
            start_offset: 0,
        })
        .collect();
    assert_eq!(parts, expected);
    assert!(c.partitions(t.id + 1000).await.unwrap().is_empty());
    assert!(c.segments(t.id).await.unwrap().is_empty());
}

async fn commit_segment_and_conflicts(db: &TestDb) {
    let c = db.open().await;
    let t = c
        .create_table("public", "s", &simple_schema(), &opts(2), false)
        .await
        .unwrap()
        .unwrap();
    let (a, b, p1) = (
        seg(t.id, 0, 0, 100),
        seg(t.id, 0, 100, 250),
        seg(t.id, 1, 0, 10),
    );
    // Out of order insertion; listing is ordered by (partition, base_offset).
    c.commit_segment(&a).await.unwrap();
    c.commit_segment(&p1).await.unwrap();
    c.commit_segment(&b).await.unwrap();
    assert_eq!(
        c.segments(t.id).await.unwrap(),
        vec![a.clone(), b.clone(), p1.clone()]
    );
    let parts = c.partitions(t.id).await.unwrap();
    assert_eq!((parts[0].committed_offset, parts[0].start_offset), (250, 0));
    assert_eq!((parts[1].committed_offset, parts[1].start_offset), (10, 0));

    // Fencing: wrong base offset (gap, overlap, stale duplicate) → Conflict, no change.
    for stale in [
        seg(t.id, 0, 300, 400),
        seg(t.id, 0, 200, 300),
        b.clone(),
        a.clone(),
    ] {
        assert!(
            matches!(c.commit_segment(&stale).await, Err(Error::Conflict(_))),
            "{stale:?}"
        );
    }
    assert_eq!(c.segments(t.id).await.unwrap().len(), 3);
    assert_eq!(c.partitions(t.id).await.unwrap()[0].committed_offset, 250);

    // Impossible ranges are refused before touching the database.
    assert!(matches!(
        c.commit_segment(&seg(t.id, 0, 250, 250)).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        c.commit_segment(&seg(t.id, 0, 250, 10)).await,
        Err(Error::Invalid(_))
    ));

    // Unknown partition / table.
    assert!(matches!(
        c.commit_segment(&seg(t.id, 2, 0, 10)).await,
        Err(Error::TableNotFound(_))
    ));
    assert!(matches!(
        c.commit_segment(&seg(t.id + 1000, 0, 0, 10)).await,
        Err(Error::TableNotFound(_))
    ));
    // A flush that finishes after DROP TABLE must not resurrect anything.
    c.drop_table("public", "s").await.unwrap().unwrap();
    assert!(matches!(
        c.commit_segment(&seg(t.id, 0, 250, 300)).await,
        Err(Error::TableNotFound(_))
    ));
    assert!(c.segments(t.id).await.unwrap().is_empty());
}

async fn delete_segments_before_retention(db: &TestDb) {
    let c = db.open().await;
    let t = c
        .create_table("public", "r", &simple_schema(), &opts(2), false)
        .await
        .unwrap()
        .unwrap();
    let s: Vec<SegmentEntry> = (0..3)
        .map(|i| seg(t.id, 0, i * 100, (i + 1) * 100))
        .collect();
    for x in &s {
        c.commit_segment(x).await.unwrap();
    }
    let other = seg(t.id, 1, 0, 50);
    c.commit_segment(&other).await.unwrap();

    // Nothing ends at or before 50.
    assert!(c
        .delete_segments_before(t.id, 0, 50)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.partitions(t.id).await.unwrap()[0].start_offset, 50);

    let deleted = c.delete_segments_before(t.id, 0, 200).await.unwrap();
    assert_eq!(deleted, s[..2].to_vec());
    let parts = c.partitions(t.id).await.unwrap();
    assert_eq!(
        (parts[0].start_offset, parts[0].committed_offset),
        (200, 300)
    );
    assert_eq!(
        c.segments(t.id).await.unwrap(),
        vec![s[2].clone(), other.clone()]
    );

    // start_offset never moves backwards.
    assert!(c
        .delete_segments_before(t.id, 0, 150)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.partitions(t.id).await.unwrap()[0].start_offset, 200);

    // Beyond the committed offset: everything committed goes, start stops at committed.
    assert_eq!(
        c.delete_segments_before(t.id, 0, 1000).await.unwrap(),
        vec![s[2].clone()]
    );
    let parts = c.partitions(t.id).await.unwrap();
    assert_eq!(
        (parts[0].start_offset, parts[0].committed_offset),
        (300, 300)
    );
    // The other partition is untouched; commits continue after retention.
    assert_eq!((parts[1].start_offset, parts[1].committed_offset), (0, 50));
    assert_eq!(c.segments(t.id).await.unwrap(), vec![other]);
    c.commit_segment(&seg(t.id, 0, 300, 310)).await.unwrap();
    assert_eq!(c.partitions(t.id).await.unwrap()[0].committed_offset, 310);

    assert!(matches!(
        c.delete_segments_before(t.id, 7, 10).await,
        Err(Error::TableNotFound(_))
    ));
    assert!(matches!(
        c.delete_segments_before(t.id + 1000, 0, 10).await,
        Err(Error::TableNotFound(_))
    ));
}

async fn reopen_persists(db: &TestDb) {
    let c = db.open().await;
    c.create_schema("keep", false).await.unwrap();
    let t = c
        .create_table("keep", "t", &simple_schema(), &opts(2), false)
        .await
        .unwrap()
        .unwrap();
    let s = seg(t.id, 1, 0, 42);
    c.commit_segment(&s).await.unwrap();
    if let Some(dir) = &db.dir {
        // SQLite runs in WAL mode: the -wal file exists while the catalog is open.
        assert!(dir.path().join("data/catalog.db-wal").exists());
    }
    c.close().await;
    drop(c);

    // Migrations are re-checked (no-op) on every connect.
    let c = db.open().await;
    assert_eq!(c.list_schemas().await.unwrap(), vec!["keep", "public"]);
    let got = c.get_table("keep", "t").await.unwrap().unwrap();
    assert_eq!(got.id, t.id);
    assert_eq!(got.options, t.options);
    assert_eq!(got.created_at_ms, t.created_at_ms);
    assert_eq!(c.segments(t.id).await.unwrap(), vec![s]);
    assert_eq!(c.partitions(t.id).await.unwrap()[1].committed_offset, 42);
    // The id counter survived too.
    let t2 = c
        .create_table("keep", "t2", &simple_schema(), &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    assert!(t2.id > t.id);
}

async fn concurrent_commit_one_wins(db: &TestDb) {
    // Two independent handles (separate pools, like two processes or two nodes) plus a
    // clone sharing the first pool.
    let c1 = db.open().await;
    let c2 = db.open().await;
    let t = c1
        .create_table("public", "race", &simple_schema(), &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    let rounds = 20;
    let mut committed = 0;
    for round in 0..rounds {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let contenders = [
            c1.clone(),
            if round % 2 == 0 {
                c2.clone()
            } else {
                c1.clone()
            },
        ];
        let mut handles = Vec::new();
        for (i, c) in contenders.into_iter().enumerate() {
            let barrier = barrier.clone();
            // Different ends and paths, so we can tell which one won.
            let mut s = seg(t.id, 0, committed, committed + 10 + i as i64);
            s.path = format!("race/{round}/{i}.parquet");
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                (s.clone(), c.commit_segment(&s).await)
            }));
        }
        let mut winners = Vec::new();
        for h in handles {
            let (s, r) = h.await.unwrap();
            match r {
                Ok(()) => winners.push(s),
                Err(Error::Conflict(_)) => {}
                Err(e) => panic!("round {round}: unexpected error {e:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one commit must win"
        );
        committed = winners[0].end_offset;
        assert_eq!(
            c2.partitions(t.id).await.unwrap()[0].committed_offset,
            committed
        );
        assert_eq!(c2.segments(t.id).await.unwrap().last(), Some(&winners[0]));
    }
    let segs = c1.segments(t.id).await.unwrap();
    assert_eq!(segs.len(), rounds);
    // The committed segments tile the offset range without gaps or overlaps.
    for w in segs.windows(2) {
        assert_eq!(w[0].end_offset, w[1].base_offset);
    }
}

async fn concurrent_create_table_one_wins(db: &TestDb) {
    let c1 = db.open().await;
    let c2 = db.open().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut handles = Vec::new();
    for c in [c1.clone(), c2.clone()] {
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            c.create_table("public", "dup", &simple_schema(), &opts(3), false)
                .await
        }));
    }
    let mut created = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(Some(_)) => created += 1,
            Err(Error::AlreadyExists(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    let t = c1.get_table("public", "dup").await.unwrap().unwrap();
    assert_eq!(c1.partitions(t.id).await.unwrap().len(), 3);
    assert_eq!(c1.list_tables().await.unwrap().len(), 1);
}

// --- SQLite-only behaviour (URL forms) ---

#[tokio::test]
async fn sqlite_memory_url() {
    let c = Catalog::connect("sqlite::memory:").await.unwrap();
    assert_eq!(c.backend(), "sqlite");
    let t = c
        .create_table("public", "m", &simple_schema(), &opts(1), false)
        .await
        .unwrap()
        .unwrap();
    c.commit_segment(&seg(t.id, 0, 0, 5)).await.unwrap();
    // The single pooled connection keeps the in-memory database alive across calls.
    assert_eq!(c.segments(t.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_relative_and_absolute_urls() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("abs.db");
    let c = Catalog::connect(&format!("sqlite://{}", abs.display()))
        .await
        .unwrap();
    c.create_schema("x", false).await.unwrap();
    c.close().await;
    assert!(abs.exists());

    // sqlite://relative.db is relative to the working directory; build a relative path
    // from the cwd to the temp dir so the test creates nothing in the repository.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let rel_path = format!(
        "{up}{}",
        dir.path()
            .join("rel.db")
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    let c = Catalog::connect(&format!("sqlite://{rel_path}"))
        .await
        .unwrap();
    c.create_schema("y", false).await.unwrap();
    c.close().await;
    assert!(dir.path().join("rel.db").exists());

    // Spaces and URL metacharacters in the path, percent-encoded in the URL.
    let odd = dir.path().join("with space").join("a?b#c.db");
    let url = format!(
        "sqlite://{}/with%20space/a%3Fb%23c.db",
        dir.path().display()
    );
    let c = Catalog::connect(&url).await.unwrap();
    c.create_schema("z", false).await.unwrap();
    c.close().await;
    assert!(odd.exists(), "{}", odd.display());
}

#[tokio::test]
async fn invalid_urls() {
    for url in [
        "mysql://root@localhost/db",
        "/tmp/catalog.db",
        "",
        "sqlite://",
    ] {
        assert!(
            matches!(Catalog::connect(url).await, Err(Error::InvalidUrl(_))),
            "{url}"
        );
    }
}
