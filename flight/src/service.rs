//! The `FlightSqlService` implementation: each Flight SQL command mapped onto a fresh
//! executor session (queries, updates, prepared statements), the metadata module, or
//! the ingest module.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
    ActionCancelQueryRequest, ActionCancelQueryResult,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor, FlightEndpoint,
    FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::Stream;
use prost::Message;
use streamhouse_executor::{Engine, Output, Session, Statement};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Tokens;
use crate::cancel::{Queries, StatementTicket};
use crate::metadata;
use crate::prepared::{parameter_sets, Prepared, Registry};
use crate::results::{self, result_schema, FlightDataStream};
use crate::status;

pub struct StreamHouseFlightSql {
    engine: Arc<Engine>,
    tokens: Tokens,
    prepared: Registry,
    queries: Arc<Queries>,
}

impl StreamHouseFlightSql {
    pub fn new(engine: Arc<Engine>) -> Self {
        StreamHouseFlightSql { engine, tokens: Tokens::default(), prepared: Registry::default(), queries: Arc::default() }
    }

    fn admit(&self, metadata: &MetadataMap) -> Result<(), Status> {
        self.tokens.check(metadata)
    }

    /// Parses SQL that must be exactly one statement.
    fn parse_one(&self, session: &Session, sql: &str) -> Result<Statement, Status> {
        let mut statements = session.parse(sql).map_err(|e| status::from_sql(&e))?;
        match statements.len() {
            1 => {
                let statement = statements.pop().expect("one statement");
                refuse_transaction_control(&statement)?;
                Ok(statement)
            }
            0 => Err(Status::invalid_argument("empty query")),
            n => Err(Status::invalid_argument(format!("one statement per Flight SQL command; got {n}"))),
        }
    }

    /// Runs one statement; a result set streams, a command yields an empty result.
    async fn run_query(&self, sql: &str, params: Option<&ParamValues>) -> Result<FlightDataStream, Status> {
        let mut session = self.engine.session();
        let statement = self.parse_one(&session, sql)?;
        match session.execute(&statement, params).await.map_err(|e| status::from_sql(&e))? {
            // A subscription streams for as long as the client reads.
            Output::Rows(rows) | Output::Feed { rows, copy: None } => Ok(results::stream_rows(rows)),
            Output::Command(_) => Ok(results::stream_empty(metadata::empty_schema())),
            Output::CopyIn(_) | Output::CopyOut { .. } | Output::Feed { copy: Some(_), .. } => Err(copy_refused()),
        }
    }

    /// Runs a prepared statement that returns no rows once per bound row; the total count.
    async fn run_prepared_update(&self, prepared: &Prepared, values: Option<&RecordBatch>) -> Result<i64, Status> {
        let mut session = self.engine.session();
        let statement = self.parse_one(&session, &prepared.sql)?;
        let mut total = 0i64;
        for params in parameter_sets(prepared, values)? {
            let rows = self.run_update(&mut session, &statement, params.as_ref()).await?;
            total = if rows < 0 || total < 0 { -1 } else { total + rows };
        }
        Ok(total)
    }

    /// Runs one statement that returns no rows; the affected row count or -1.
    async fn run_update(&self, session: &mut Session, statement: &Statement, params: Option<&ParamValues>) -> Result<i64, Status> {
        match session.execute(statement, params).await.map_err(|e| status::from_sql(&e))? {
            Output::Command(tag) => Ok(tag.rows.map(|r| r as i64).unwrap_or(-1)),
            Output::Rows(_) | Output::Feed { copy: None, .. } => {
                Err(Status::invalid_argument("the statement returns rows; run it as a query"))
            }
            Output::CopyIn(_) | Output::CopyOut { .. } | Output::Feed { copy: Some(_), .. } => Err(copy_refused()),
        }
    }
}

fn copy_refused() -> Status {
    Status::invalid_argument("COPY is for the Postgres protocol; over Flight SQL, use bulk ingest (CommandStatementIngest)")
}

fn refuse_transaction_control(statement: &Statement) -> Result<(), Status> {
    match statement.as_sql() {
        Some(
            SqlStatement::StartTransaction { .. }
            | SqlStatement::Commit { .. }
            | SqlStatement::Rollback { .. }
            | SqlStatement::Savepoint { .. }
            | SqlStatement::ReleaseSavepoint { .. }
            | SqlStatement::Declare { .. },
        ) => Err(Status::failed_precondition(
            "transactions are not available over Flight SQL: each statement commits on its own",
        )),
        _ => Ok(()),
    }
}

/// A FlightInfo whose one endpoint's ticket is `ticket` (an encoded command).
fn flight_info(schema: &Schema, ticket: impl ProstMessageExt, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(status::from_arrow)?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// The answer to GetFlightInfo for a statement that returns no rows. It has already run
/// (a client's `execute` returns after it took effect, without a DoGet): no endpoints, no
/// columns, and the affected row count as `total_records`.
fn command_info(rows: i64, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(&Schema::empty())
        .map_err(status::from_arrow)?
        .with_descriptor(descriptor)
        .with_total_records(rows);
    Ok(Response::new(info))
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into().map_err(status::from_arrow)?;
    Ok(message.0)
}

fn parameter_schema(types: &[Option<DataType>]) -> Schema {
    Schema::new(
        types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("${}", i + 1), t.clone().unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    )
}

/// All batches of a DoPut's data, as one batch (None when it carried no rows).
async fn bound_values(data: PeekableFlightDataStream) -> Result<Option<RecordBatch>, Status> {
    let (Some(schema), batches) = crate::upload::receive(data).await? else { return Ok(None) };
    let batch = arrow::compute::concat_batches(&schema, &batches).map_err(status::from_arrow)?;
    Ok((batch.num_rows() > 0).then_some(batch))
}

/// The action type of the core Flight protocol's cancellation.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// The query id in a statement ticket (None for other tickets).
fn statement_id(ticket: &Ticket) -> Option<u64> {
    let any = arrow_flight::sql::Any::decode(ticket.ticket.clone()).ok()?;
    let statement = any.unpack::<TicketStatementQuery>().ok()??;
    StatementTicket::decode(&statement.statement_handle).ok().map(|t| t.id)
}

#[tonic::async_trait]
impl FlightSqlService for StreamHouseFlightSql {
    type FlightService = StreamHouseFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        let token = self.tokens.handshake(request.metadata())?;
        let reply = HandshakeResponse { protocol_version: 0, payload: token.clone().into_bytes().into() };
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> =
            Response::new(Box::pin(futures::stream::once(async move { Ok(reply) })));
        let header = format!("Bearer {token}").parse().map_err(|_| Status::internal("token is not a header value"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    // ---- cancellation

    async fn do_action_fallback(&self, request: Request<Action>) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        self.admit(request.metadata())?;
        let action = request.into_inner();
        if action.r#type != CANCEL_FLIGHT_INFO {
            return Err(Status::invalid_argument(format!("unknown action \"{}\"", action.r#type)));
        }
        let cancel = CancelFlightInfoRequest::decode(action.body)
            .map_err(|e| Status::invalid_argument(format!("malformed CancelFlightInfoRequest: {e}")))?;
        let info = cancel.info.ok_or_else(|| Status::invalid_argument("CancelFlightInfoRequest without a FlightInfo"))?;
        let result = CancelFlightInfoResult::new(self.queries.cancel(&info, statement_id));
        let body = arrow_flight::Result { body: result.encode_to_vec().into() };
        Ok(Response::new(Box::pin(futures::stream::once(async move { Ok(body) }))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.into(),
            description: "Cancel a query: the request holds the FlightInfo GetFlightInfo returned".into(),
        })])
    }

    /// Flight SQL's older spelling of CancelFlightInfo.
    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        self.admit(request.metadata())?;
        let info = FlightInfo::decode(query.info).map_err(|e| Status::invalid_argument(format!("malformed FlightInfo: {e}")))?;
        // ActionCancelQueryResult.CancelResult shares CancelStatus's numbering
        // (arrow-flight does not export that nested enum).
        let result = match self.queries.cancel(&info, statement_id) {
            status @ (CancelStatus::Cancelled | CancelStatus::Cancelling) => status,
            _ => CancelStatus::NotCancellable,
        };
        Ok(ActionCancelQueryResult { result: result as i32 })
    }

    // ---- statements

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        if query.transaction_id.is_some() {
            return Err(Status::unimplemented("Flight SQL transactions are not supported"));
        }
        let mut session = self.engine.session();
        let statement = self.parse_one(&session, &query.query)?;
        let description = session.describe(&statement).await.map_err(|e| status::from_sql(&e))?;
        match description.columns {
            Some(columns) => {
                let handle = StatementTicket { id: self.queries.new_id(), sql: query.query }.encode();
                let ticket = TicketStatementQuery { statement_handle: handle.into() };
                flight_info(&result_schema(&columns), ticket, request.into_inner())
            }
            None => {
                let rows = self.run_update(&mut session, &statement, None).await?;
                command_info(rows, request.into_inner())
            }
        }
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        let ticket = StatementTicket::decode(&ticket.statement_handle)?;
        let rows = self.run_query(&ticket.sql, None).await?;
        Ok(Response::new(self.queries.track(ticket.id, rows)?))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.admit(request.metadata())?;
        if command.transaction_id.is_some() {
            return Err(Status::unimplemented("Flight SQL transactions are not supported"));
        }
        let mut session = self.engine.session();
        let statement = self.parse_one(&session, &command.query)?;
        self.run_update(&mut session, &statement, None).await
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.admit(request.metadata())?;
        crate::ingest::ingest(&self.engine, command, request.into_inner()).await
    }

    // ---- prepared statements

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.admit(request.metadata())?;
        if query.transaction_id.is_some() {
            return Err(Status::unimplemented("Flight SQL transactions are not supported"));
        }
        let mut session = self.engine.session();
        let statement = self.parse_one(&session, &query.query)?;
        let description = session.describe(&statement).await.map_err(|e| status::from_sql(&e))?;
        let columns = description.columns.map(|c| result_schema(&c));
        let dataset_schema = schema_bytes(columns.as_deref().unwrap_or(&Schema::empty()))?;
        let parameter_schema = schema_bytes(&parameter_schema(&description.parameters))?;
        let handle = self.prepared.insert(Prepared {
            sql: query.query,
            parameter_types: description.parameters,
            columns,
            bound: None,
        })?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.admit(request.metadata())?;
        self.prepared.close(&query.prepared_statement_handle)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.admit(request.metadata())?;
        let handle = query.prepared_statement_handle;
        self.prepared.get(&handle)?;
        if let Some(values) = bound_values(request.into_inner()).await? {
            self.prepared.bind(&handle, values)?;
        }
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(handle) })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        let prepared = self.prepared.get(&query.prepared_statement_handle)?;
        match &prepared.columns {
            Some(columns) => flight_info(columns, query, request.into_inner()),
            None => {
                let rows = self.run_prepared_update(&prepared, prepared.bound.as_ref()).await?;
                command_info(rows, request.into_inner())
            }
        }
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        let prepared = self.prepared.get(&query.prepared_statement_handle)?;
        let mut sets = parameter_sets(&prepared, prepared.bound.as_ref())?;
        if sets.len() != 1 {
            return Err(Status::invalid_argument(format!(
                "a prepared query runs with one row of parameters; {} rows were bound",
                sets.len()
            )));
        }
        let params = sets.pop().expect("one parameter set");
        Ok(Response::new(self.run_query(&prepared.sql, params.as_ref()).await?))
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.admit(request.metadata())?;
        let prepared = self.prepared.get(&query.prepared_statement_handle)?;
        let values = match bound_values(request.into_inner()).await? {
            Some(values) => Some(values),
            None => prepared.bound.clone(),
        };
        self.run_prepared_update(&prepared, values.as_ref()).await
    }

    // ---- metadata

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&query.into_builder().schema(), query, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_batch(metadata::catalogs()?)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&query.clone().into_builder().schema(), query, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_batch(metadata::schemas(&self.engine, query)?)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&query.clone().into_builder().schema(), query, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_batch(metadata::tables(&self.engine, query).await?)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&query.into_builder().schema(), query, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_batch(metadata::table_types()?)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&metadata::sql_info().schema(), query, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        let batch = query.into_builder(metadata::sql_info()).build().map_err(Status::from)?;
        Ok(Response::new(results::stream_batch(batch)))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&metadata::xdbc_types().schema(), query, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        let batch = query.into_builder(metadata::xdbc_types()).build().map_err(Status::from)?;
        Ok(Response::new(results::stream_batch(batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&metadata::primary_keys_schema(), query, request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_empty(metadata::primary_keys_schema())))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&metadata::foreign_keys_schema(), query, request.into_inner())
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_empty(metadata::foreign_keys_schema())))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&metadata::foreign_keys_schema(), query, request.into_inner())
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_empty(metadata::foreign_keys_schema())))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(request.metadata())?;
        flight_info(&metadata::foreign_keys_schema(), query, request.into_inner())
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.admit(request.metadata())?;
        Ok(Response::new(results::stream_empty(metadata::foreign_keys_schema())))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
