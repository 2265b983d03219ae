//! The SQL layer: a DataFusion session over stream tables, plus the statements that are
//! StreamHouse's own (CREATE TABLE ... WITH, INSERT into the log, COPY, transactions,
//! SET/SHOW). Front ends talk to [`Engine`] and [`Session`] only.

mod ask;
mod bytea;
mod cast;
mod catalog;
mod compacted;
pub mod copy;
mod comments;
mod create_as;
mod cursor;
mod ddl;
mod dml;
mod error;
mod functions;
mod hidden;
mod infer_schema;
mod information_schema;
mod materialized;
mod naming;
mod output;
pub mod pg_text;
mod provider;
mod relations;
mod session;
mod settings;
mod statement;
mod statement_timeout;
mod streaming_clauses;
mod streaming_functions;
mod subscribe;
mod system_tables;
mod transaction;
mod values_insert;
mod vectors;
mod views;
mod windows;

pub use ask::{Ask, AskCatalog, AskColumn, AskRelation, Refusal, Translation, Translator, MAX_ASK_ROWS};
pub use catalog::{DATABASE_NAME, DEFAULT_SCHEMA};
pub use copy::{encode_batch, encode_rows, CopyDecoder, CopyFormat, COPY_MAX_BUFFER_BYTES};
pub use ddl::PG_TYPE_METADATA;
pub use error::{Error, Result};
pub use output::{CommandTag, CopyIn, Output, TransactionEffect, TransactionStatus};
pub use cursor::MAX_OPEN_CURSORS;
pub use session::{Description, Engine, Session};
pub use statement::{Delivery, Fetch, StartAt, Statement, Subscribe, SubscribeSource, SubscribeStatement};
pub use subscribe::SUBSCRIBE_FUNCTION;
pub use settings::{sql_type_name, REPORTED_SETTINGS, SERVER_VERSION};
