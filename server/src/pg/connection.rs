//! One client connection: startup (ParameterStatus, cancel key), the simple and extended
//! query protocols, and COPY FROM STDIN, all over this connection's [`Session`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, ServerParameterProvider,
    StartupHandler,
};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use streamhouse_executor::{
    CopyDecoder, CopyIn, Description, Engine, Error, Output, Session, Statement, COPY_MAX_BUFFER_BYTES, REPORTED_SETTINGS,
};
use tokio::sync::Mutex;
use tracing::{debug, warn};

use super::cancel::{CancelRegistry, CancelSignal, Canceller, Registration};
use super::socket::FlushNow;
use arrow::array::timezone::Tz;

use super::respond::{command, copy_out, error_response, fields, rows, user_error};

/// The pgwire handler set of one connection (pgwire asks for it per socket).
pub struct Handlers(Arc<Connection>);

impl Handlers {
    pub fn new(engine: Arc<Engine>, manager: Arc<ConnectionManager>, cancels: Arc<CancelRegistry>, flush_now: FlushNow) -> Self {
        let session = Arc::new(Mutex::new(engine.session()));
        let parser = Arc::new(StatementParser { session: session.clone() });
        Handlers(Arc::new(Connection {
            manager,
            cancels,
            cancel: std::sync::OnceLock::new(),
            session,
            parser,
            copy: Mutex::new(None),
            flush_now,
        }))
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.clone()
    }
    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.0.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.0.clone()
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(Canceller { manager: self.0.manager.clone(), registry: self.0.cancels.clone() })
    }
}

pub struct Connection {
    manager: Arc<ConnectionManager>,
    cancels: Arc<CancelRegistry>,
    /// Set at startup, once the cancel key exists; the registration ends with the connection.
    cancel: std::sync::OnceLock<(CancelSignal, Registration)>,
    session: Arc<Mutex<Session>>,
    parser: Arc<StatementParser>,
    /// A COPY FROM STDIN in progress.
    copy: Mutex<Option<CopyState>>,
    /// Makes the socket write at once (endless results, see `feed`).
    flush_now: FlushNow,
}

struct CopyState {
    target: CopyIn,
    decoder: CopyDecoder,
    /// The first error; later data is discarded until CopyDone/CopyFail.
    failed: Option<Error>,
}

/// A prepared statement: the parsed statement and what Describe reports about it.
#[derive(Clone)]
pub struct Prepared {
    statement: Option<Statement>,
    description: Description,
}

/// Startup parameters that are not settings: who connects, to what, how.
const NOT_SETTINGS: [&str; 4] = ["user", "database", "replication", "options"];

/// The settings a client gives at connect time, in the order PostgreSQL applies them:
/// startup parameters (`application_name`, JDBC's `TimeZone`, `DateStyle`,
/// `extra_float_digits`), then `options` (libpq's `PGOPTIONS`: `-c name=value`,
/// `-cname=value` or `--name=value`), each with whether the user asked for it outright.
fn startup_settings(parameters: &BTreeMap<String, String>) -> Vec<(String, String, bool)> {
    let mut settings: Vec<(String, String, bool)> =
        parameters.iter().filter(|(name, _)| !NOT_SETTINGS.contains(&name.as_str())).map(|(n, v)| (n.clone(), v.clone(), false)).collect();
    let mut words = parameters.get("options").map(|o| o.split_whitespace().collect::<Vec<_>>()).unwrap_or_default().into_iter();
    while let Some(word) = words.next() {
        let assignment = match word {
            "-c" => words.next(),
            _ => word.strip_prefix("-c").filter(|rest| !rest.is_empty()).or_else(|| word.strip_prefix("--")),
        };
        if let Some((name, value)) = assignment.and_then(|a| a.split_once('=')) {
            settings.push((name.replace('-', "_"), value.to_string(), true));
        }
    }
    settings
}

struct Parameters(HashMap<String, String>);

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.clone())
    }
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, key) = RandomPidSecretKeyGenerator::default().generate(client);
            client.set_pid_and_secret_key(pid, key.clone());
            let _ = self.cancel.set(self.cancels.register(pid, &key));
            let (handle, guard) = self.manager.register(pid, key);
            client.session_extensions().insert(handle);
            client.session_extensions().insert(guard);
            let mut session = self.session.lock().await;
            for (name, value, asked) in startup_settings(&startup.parameters) {
                match session.set_at_startup(&name, &value) {
                    Ok(()) => {}
                    // `-c name=value` the user wrote: refused as PostgreSQL refuses it.
                    Err(e) if asked => {
                        let mut info = super::respond::error_info(&e);
                        info.severity = "FATAL".to_string();
                        return Err(PgWireError::UserError(Box::new(info)));
                    }
                    // What a driver sends on its own (a locale's encoding, a zone name we
                    // cannot read) keeps our default rather than refusing the connection.
                    Err(e) => warn!(setting = %name, value = %value, error = %e, "startup parameter ignored"),
                }
            }
            let user = client.metadata().get(pgwire::api::METADATA_USER).cloned().unwrap_or_default();
            session.set_setting("session_authorization", &user);
            let params = REPORTED_SETTINGS
                .iter()
                .filter_map(|name| session.reported_setting(name).map(|v| (name.to_string(), v.to_string())))
                .collect();
            drop(session);
            finish_authentication(client, &Parameters(params)).await?;
        }
        Ok(())
    }
}

impl ErrorHandler for Connection {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        debug!(error = %error, "error sent to client");
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        let statements = match session.parse(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![error_response(&e)]),
        };
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let result = session.execute(&statement, None).await;
            send_notices(client, session.take_notices()).await?;
            match result {
                Ok(output) => {
                    let copy_in = matches!(output, Output::CopyIn(_));
                    let feed = matches!(output, Output::Feed { .. });
                    let mut response = self.respond(output, &Format::UnifiedText, session.time_zone()).await?;
                    if feed {
                        // A feed is always the only statement of its query (the parser sees to it).
                        response = super::feed::send(client, response, true, &self.flush_now).await?;
                    }
                    responses.push(response);
                    if copy_in {
                        break;
                    }
                }
                Err(e) => {
                    // Like PostgreSQL, the rest of a multi-statement query is skipped.
                    responses.push(error_response(&e));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

impl Connection {
    fn cancel_signal(&self) -> CancelSignal {
        self.cancel.get().map(|(signal, _)| signal.clone()).expect("registered at startup")
    }

    /// `zone`: the session's TimeZone, for timestamptz text.
    async fn respond(&self, output: Output, format: &Format, zone: Tz) -> PgWireResult<Response> {
        Ok(match output {
            Output::Rows(stream) => rows(stream, format, zone, &self.cancel_signal())?,
            Output::Command(tag) => command(tag),
            Output::CopyOut { rows, format } | Output::Feed { rows, copy: Some(format) } => {
                copy_out(rows, format, zone, &self.cancel_signal())?
            }
            Output::Feed { rows: stream, copy: None } => rows(stream, format, zone, &self.cancel_signal())?,
            Output::CopyIn(target) => {
                let columns = target.columns.len();
                let decoder = CopyDecoder::new(target.format.clone(), target.data_schema());
                *self.copy.lock().await = Some(CopyState { target, decoder, failed: None });
                Response::CopyIn(CopyResponse::new(0, columns, futures::stream::empty()))
            }
        })
    }
}

/// Parses and plans statements for the extended protocol, on the connection's session.
pub struct StatementParser {
    session: Arc<Mutex<Session>>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut session = self.session.lock().await;
        let mut statements = session.parse(sql).map_err(|e| user_error(&e))?;
        if statements.len() > 1 {
            return Err(user_error(&Error::Syntax {
                message: "cannot insert multiple commands into a prepared statement".into(),
                position: None,
            }));
        }
        let Some(statement) = statements.pop() else { return Ok(None) };
        let description = session.describe(&statement).await.map_err(|e| user_error(&e))?;
        Ok(Some(Prepared { statement: Some(statement), description }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        stmt.description
            .parameters
            .iter()
            .map(|t| match t {
                Some(t) => arrow_pg::datatypes::into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(&self, stmt: &Prepared, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.unwrap_or(&Format::UnifiedText);
        match &stmt.description.columns {
            Some(schema) => Ok(fields(schema, format)?.as_ref().clone()),
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// A SQL cursor (DECLARE) is also a portal of the same name, as in PostgreSQL:
    /// drivers describe it before fetching (psycopg's server-side cursors do).
    async fn on_describe<C>(&self, client: &mut C, message: pgwire::messages::extendedquery::Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_PORTAL {
            let name = message.name.clone().unwrap_or_default();
            if !name.is_empty() && client.portal_store().get_portal(&name).is_none() {
                let schema = self.session.lock().await.cursor_schema(&name);
                if let Ok(schema) = schema {
                    let fields = fields(&schema, &Format::UnifiedText)?.as_ref().clone();
                    let response = pgwire::api::results::DescribePortalResponse::new(fields);
                    return pgwire::api::query::send_describe_response(client, &response).await;
                }
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let Some(statement) = &prepared.statement else { return Ok(Response::EmptyQuery) };
        let inferred: Vec<Option<&arrow::datatypes::DataType>> =
            prepared.description.parameters.iter().map(Option::as_ref).collect();
        let params: Option<ParamValues> = if portal.parameter_len() > 0 {
            Some(arrow_pg::datatypes::df::deserialize_parameters(portal, &inferred)?)
        } else {
            None
        };
        let mut session = self.session.lock().await;
        let result = session.execute(statement, params.as_ref()).await;
        send_notices(client, session.take_notices()).await?;
        match result {
            Ok(output) => {
                let feed = matches!(output, Output::Feed { .. });
                let response = self.respond(output, &portal.result_column_format, session.time_zone()).await?;
                if feed {
                    return super::feed::send(client, response, false, &self.flush_now).await;
                }
                Ok(response)
            }
            Err(e) => Ok(error_response(&e)),
        }
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut copy = self.copy.lock().await;
        let Some(state) = copy.as_mut() else { return Ok(()) };
        if state.failed.is_some() {
            return Ok(());
        }
        if let Err(e) = state.decoder.feed(&data.data) {
            state.failed = Some(e);
        } else if state.decoder.buffered_bytes() > COPY_MAX_BUFFER_BYTES {
            state.failed = Some(Error::InvalidParameter(format!(
                "COPY holds more than {COPY_MAX_BUFFER_BYTES} bytes; split it into several COPY statements"
            )));
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let Some(state) = self.copy.lock().await.take() else { return Ok(()) };
        if let Some(e) = state.failed {
            return Err(user_error(&e));
        }
        let batches = state.decoder.finish().map_err(|e| user_error(&e))?;
        let rows = self.session.lock().await.copy_in(&state.target, batches).await.map_err(|e| user_error(&e))?;
        client
            .send(PgWireBackendMessage::CommandComplete(Tag::new("COPY").with_rows(rows as usize).into()))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy.lock().await.take();
        self.session.lock().await.abort_transaction();
        PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
            "ERROR".to_owned(),
            "57014".to_owned(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}

/// Sends notices (`ASK`'s SQL and notes) ahead of the statement's result, as PostgreSQL
/// sends `RAISE NOTICE` output.
async fn send_notices<C>(client: &mut C, notices: Vec<String>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for notice in notices {
        let info = ErrorInfo::new("NOTICE".to_string(), "00000".to_string(), notice);
        client.feed(PgWireBackendMessage::NoticeResponse(info.into())).await?;
    }
    Ok(())
}
