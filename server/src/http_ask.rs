//! `POST /v1/ask` on the HTTP listener: ASK for clients that speak neither the Postgres
//! protocol nor Flight (scripts, dashboards, `curl`).
//!
//! The request is `{"question": "…", "sql_only": false}`; the answer is
//! `{"sql": "…", "notes": [...], "columns": [{"name", "type"}], "rows": [{…}, …]}` — the
//! same translation, read-only checks and row and time limits as `ASK` over the other
//! protocols, since it runs as an `ASK` statement in a session of its own. A refusal or
//! any other error is `{"error": "…", "sqlstate": "…"}` with 400 for what the request
//! asked, 504 for a timeout, 503 when out of resources or shutting down, 409 for a
//! conflict or an object not ready, 500 for the server's own failures.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use streamhouse_executor::{sql_type_name, Engine, Error, Output};

/// Longest request body: a question is at most a few hundred characters.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The notice that carries the SQL an answer ran.
const SQL_NOTICE: &str = "SQL: ";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskRequest {
    question: String,
    #[serde(default)]
    sql_only: bool,
}

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().route("/v1/ask", post(ask)).with_state(engine)
}

async fn ask(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    if body.len() > MAX_REQUEST_BYTES {
        return failure(StatusCode::PAYLOAD_TOO_LARGE, "54000", format!("the request is over {MAX_REQUEST_BYTES} bytes"));
    }
    let request: AskRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::BAD_REQUEST, "22P02", format!("expected {{\"question\": \"…\", \"sql_only\": false}}: {e}")),
    };
    let mut session = engine.session();
    // As SQL text, so every rule of the statement (length, emptiness) applies here too.
    let text = format!("ASK {}'{}'", if request.sql_only { "SQL " } else { "" }, request.question.replace('\'', "''"));
    let outcome = async {
        let statement = session.parse(&text)?.pop().ok_or_else(|| Error::Internal("ASK parsed to nothing".into()))?;
        let output = session.execute(&statement, None).await?;
        let Output::Rows(rows) = output else { return Err(Error::Internal("ASK returned no rows".into())) };
        let schema = rows.schema();
        let batches: Vec<_> = rows.try_collect().await.map_err(Error::Query)?;
        Ok((schema, batches))
    }
    .await;
    let notes = session.take_notices();
    match outcome {
        Ok((schema, batches)) => {
            let columns: Vec<Value> = schema.fields().iter().map(|f| json!({"name": f.name(), "type": sql_type_name(f.data_type())})).collect();
            let mut rows = Vec::new();
            {
                let mut writer = arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, arrow::json::writer::JsonArray>(&mut rows);
                for batch in &batches {
                    if let Err(e) = writer.write(batch) {
                        return failure(StatusCode::INTERNAL_SERVER_ERROR, "XX000", format!("encoding the rows as JSON: {e}"));
                    }
                }
                if let Err(e) = writer.finish() {
                    return failure(StatusCode::INTERNAL_SERVER_ERROR, "XX000", format!("encoding the rows as JSON: {e}"));
                }
            }
            let rows: Value = if rows.is_empty() { json!([]) } else { serde_json::from_slice(&rows).unwrap_or(json!([])) };
            // ASK SQL's one row is the SQL itself; ASK's SQL comes as a notice.
            let sql = match request.sql_only {
                true => rows.get(0).and_then(|r| r.as_object()).and_then(|r| r.values().next()).cloned().unwrap_or(Value::Null),
                false => notes.iter().find_map(|n| n.strip_prefix(SQL_NOTICE)).map_or(Value::Null, |s| json!(s)),
            };
            let notes: Vec<&String> = notes.iter().filter(|n| !n.starts_with(SQL_NOTICE)).collect();
            let body = match request.sql_only {
                true => json!({"sql": sql, "notes": notes}),
                false => json!({"sql": sql, "notes": notes, "columns": columns, "rows": rows}),
            };
            ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        Err(e) => {
            let status = match e.sqlstate() {
                "57014" => StatusCode::GATEWAY_TIMEOUT,
                // Out of resources, shutting down: try again later.
                code if code.starts_with("53") || code.starts_with("57") => StatusCode::SERVICE_UNAVAILABLE,
                // Not now: a conflict or an object not ready (a view still recovering).
                code if code.starts_with("40") || code == "55000" => StatusCode::CONFLICT,
                code if code.starts_with("XX") || code.starts_with("58") => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            failure(status, e.sqlstate(), e.to_string())
        }
    }
}

fn failure(status: StatusCode, sqlstate: &str, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({"error": message, "sqlstate": sqlstate}).to_string()).into_response()
}
