//! The messages of `proto/streamhouse/ingest/v1/ingest.proto`, written out with prost's
//! derive macros (what prost-build would generate), so building needs no `protoc`. The
//! black-box tests compile the .proto file with grpcio-tools and call the server with the
//! result, which keeps the two in step.

/// The service's full name, the prefix of its method paths.
pub const SERVICE_NAME: &str = "streamhouse.ingest.v1.Ingest";

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProduceRequest {
    #[prost(string, tag = "1")]
    pub table: String,
    #[prost(oneof = "Rows", tags = "2, 3")]
    pub rows: Option<Rows>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Rows {
    #[prost(bytes = "bytes", tag = "2")]
    Json(bytes::Bytes),
    #[prost(bytes = "bytes", tag = "3")]
    ArrowIpc(bytes::Bytes),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PartitionOffsets {
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    #[prost(int64, tag = "2")]
    pub base_offset: i64,
    #[prost(uint64, tag = "3")]
    pub rows: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProduceResponse {
    #[prost(uint64, tag = "1")]
    pub rows: u64,
    #[prost(message, repeated, tag = "2")]
    pub partitions: Vec<PartitionOffsets>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProduceStreamResponse {
    #[prost(uint64, tag = "1")]
    pub rows: u64,
    #[prost(message, repeated, tag = "2")]
    pub requests: Vec<ProduceResponse>,
}
