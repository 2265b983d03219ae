//! The Confluent Schema Registry REST API (the part its serializers, deserializers and
//! admin tools call), as an axum router mounted at the root of the HTTP listener.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{Level, Registry, RegistryError, SchemaType, VersionSpec, VersionedSchema};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Params = Query<HashMap<String, String>>;
type Reply = Result<Response, RegistryError>;

pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/schemas/types", get(|| async { ok(json!(["AVRO", "JSON"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(version_schema))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(referenced_by))
        .route("/compatibility/subjects/{subject}/versions", post(check_all))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(check_version))
        .route("/config", get(global_config).put(set_global_config).delete(delete_global_config))
        .route("/config/{subject}", get(subject_config).put(set_subject_config).delete(delete_subject_config))
        .route("/mode", get(|| async { ok(json!({"mode": "READWRITE"})) }))
        .with_state(registry)
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        if status.is_server_error() {
            tracing::warn!(error = %self, "schema registry request failed");
        }
        reply(status, json!({"error_code": code, "message": self.to_string()}))
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

fn ok(body: Value) -> Response {
    reply(StatusCode::OK, body)
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The body of register, lookup and compatibility requests.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    schema_type: Option<String>,
    references: Option<Vec<Value>>,
}

impl SchemaRequest {
    fn from_body(body: &[u8]) -> Result<(SchemaType, String), RegistryError> {
        let request: SchemaRequest = serde_json::from_slice(body).map_err(|e| RegistryError::BadRequest(e.to_string()))?;
        if request.references.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(RegistryError::InvalidSchema("schema references are not supported; register a self-contained schema".into()));
        }
        Ok((SchemaType::parse(request.schema_type.as_deref())?, request.schema))
    }
}

/// A version as Confluent returns it; `schemaType` is left out for Avro, as there.
fn version_body(v: &VersionedSchema) -> Value {
    let mut body = json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema.text});
    if v.schema.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(v.schema.schema_type.as_str());
    }
    body
}

fn parse_id(id: &str) -> Result<i64, RegistryError> {
    id.parse().map_err(|_| RegistryError::SchemaNotFound(id.to_string()))
}

async fn schema_by_id(State(r): State<Arc<Registry>>, Path(id): Path<String>) -> Reply {
    let schema = r.schema(parse_id(&id)?).await?;
    let mut body = json!({"schema": schema.text});
    if schema.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(schema.schema_type.as_str());
    }
    Ok(ok(body))
}

async fn raw_schema_by_id(State(r): State<Arc<Registry>>, Path(id): Path<String>) -> Reply {
    let schema = r.schema(parse_id(&id)?).await?;
    Ok(reply(StatusCode::OK, serde_json::from_str(&schema.text).unwrap_or(Value::Null)))
}

async fn subjects_by_id(State(r): State<Arc<Registry>>, Path(id): Path<String>) -> Reply {
    let mut subjects: Vec<String> = r.usages(parse_id(&id)?).await?.into_iter().map(|(s, _)| s).collect();
    subjects.dedup();
    Ok(ok(json!(subjects)))
}

async fn versions_by_id(State(r): State<Arc<Registry>>, Path(id): Path<String>) -> Reply {
    let usages: Vec<Value> = r.usages(parse_id(&id)?).await?.into_iter().map(|(s, v)| json!({"subject": s, "version": v})).collect();
    Ok(ok(json!(usages)))
}

async fn subjects(State(r): State<Arc<Registry>>, Query(params): Params) -> Reply {
    Ok(ok(json!(r.subjects(flag(&params, "deleted")).await?)))
}

async fn versions(State(r): State<Arc<Registry>>, Path(subject): Path<String>, Query(params): Params) -> Reply {
    Ok(ok(json!(r.versions(&subject, flag(&params, "deleted")).await?)))
}

async fn register(State(r): State<Arc<Registry>>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let (schema_type, text) = SchemaRequest::from_body(&body)?;
    let registered = r.register(&subject, schema_type, &text).await?;
    Ok(ok(version_body(&registered)))
}

async fn lookup(State(r): State<Arc<Registry>>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let (schema_type, text) = SchemaRequest::from_body(&body)?;
    Ok(ok(version_body(&r.lookup(&subject, schema_type, &text).await?)))
}

async fn version(State(r): State<Arc<Registry>>, Path((subject, version)): Path<(String, String)>) -> Reply {
    Ok(ok(version_body(&r.version(&subject, VersionSpec::parse(&version)?).await?)))
}

async fn version_schema(State(r): State<Arc<Registry>>, Path((subject, version)): Path<(String, String)>) -> Reply {
    let v = r.version(&subject, VersionSpec::parse(&version)?).await?;
    Ok(ok(serde_json::from_str(&v.schema.text).unwrap_or(Value::Null)))
}

async fn referenced_by(State(r): State<Arc<Registry>>, Path((subject, version)): Path<(String, String)>) -> Reply {
    // References are not supported, so no schema refers to another.
    r.version(&subject, VersionSpec::parse(&version)?).await?;
    Ok(ok(json!([])))
}

async fn delete_subject(State(r): State<Arc<Registry>>, Path(subject): Path<String>, Query(params): Params) -> Reply {
    Ok(ok(json!(r.delete_subject(&subject, flag(&params, "permanent")).await?)))
}

async fn delete_version(State(r): State<Arc<Registry>>, Path((subject, version)): Path<(String, String)>, Query(params): Params) -> Reply {
    Ok(ok(json!(r.delete_version(&subject, VersionSpec::parse(&version)?, flag(&params, "permanent")).await?)))
}

fn compatibility_body(problems: Vec<String>, params: &HashMap<String, String>) -> Response {
    let mut body = json!({"is_compatible": problems.is_empty()});
    if flag(params, "verbose") {
        body["messages"] = json!(problems);
    }
    ok(body)
}

async fn check_all(State(r): State<Arc<Registry>>, Path(subject): Path<String>, Query(params): Params, body: Bytes) -> Reply {
    let (schema_type, text) = SchemaRequest::from_body(&body)?;
    Ok(compatibility_body(r.check(&subject, None, schema_type, &text).await?, &params))
}

async fn check_version(
    State(r): State<Arc<Registry>>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    body: Bytes,
) -> Reply {
    let (schema_type, text) = SchemaRequest::from_body(&body)?;
    Ok(compatibility_body(r.check(&subject, Some(VersionSpec::parse(&version)?), schema_type, &text).await?, &params))
}

/// `{"compatibility": "FULL"}` (also accepted: `compatibilityLevel`).
fn level_from_body(body: &[u8]) -> Result<Level, RegistryError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RegistryError::BadRequest(e.to_string()))?;
    let name = value.get("compatibility").or_else(|| value.get("compatibilityLevel")).and_then(Value::as_str);
    Level::parse(name.ok_or(RegistryError::InvalidCompatibilityLevel)?)
}

async fn global_config(State(r): State<Arc<Registry>>) -> Reply {
    Ok(ok(json!({"compatibilityLevel": r.level(None).await?.as_str()})))
}

async fn set_global_config(State(r): State<Arc<Registry>>, body: Bytes) -> Reply {
    let level = level_from_body(&body)?;
    r.set_level(None, Some(level)).await?;
    Ok(ok(json!({"compatibility": level.as_str()})))
}

async fn delete_global_config(State(r): State<Arc<Registry>>) -> Reply {
    let previous = r.level(None).await?;
    r.set_level(None, None).await?;
    Ok(ok(json!({"compatibilityLevel": previous.as_str()})))
}

async fn subject_config(State(r): State<Arc<Registry>>, Path(subject): Path<String>, Query(params): Params) -> Reply {
    let level = match r.configured_level(Some(&subject)).await? {
        Some(level) => level,
        None if flag(&params, "defaultToGlobal") => r.level(None).await?,
        None => return Err(RegistryError::SubjectConfigNotFound(subject)),
    };
    Ok(ok(json!({"compatibilityLevel": level.as_str()})))
}

async fn set_subject_config(State(r): State<Arc<Registry>>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let level = level_from_body(&body)?;
    r.set_level(Some(&subject), Some(level)).await?;
    Ok(ok(json!({"compatibility": level.as_str()})))
}

async fn delete_subject_config(State(r): State<Arc<Registry>>, Path(subject): Path<String>) -> Reply {
    let previous = r.configured_level(Some(&subject)).await?.ok_or_else(|| RegistryError::SubjectConfigNotFound(subject.clone()))?;
    r.set_level(Some(&subject), None).await?;
    Ok(ok(json!({"compatibilityLevel": previous.as_str()})))
}
