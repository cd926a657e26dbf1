//! The audit trail's shared parts: the record every component writes, how records are hashed into
//! a tamper-evident chain, and the buffered hand-off that ships them to a Redis stream without
//! ever blocking the request that produced them.
//!
//! Path of a record: producer (proxy `logging` phase, control-plane middleware) → [`AuditSink`]
//! (bounded in-memory buffer) → `XADD` of a batch to the stream [`crate::keyspace::Keyspace::audit_stream`] →
//! the worker, which moves batches into PostgreSQL, chains them, and acknowledges only after commit.

mod chain;
mod record;
mod shipper;

pub use chain::{BrokenLink, ChainLink, GENESIS_HASH, chain_hash, chain_key, seal};
pub use record::{AuditRecord, Kind, unix_millis};
pub use shipper::{AuditSink, ShipperStats};

/// The stream field holding one record's JSON.
pub const STREAM_FIELD: &str = "r";
/// The stream field holding a JSON array of records (what [`AuditSink`] writes: one entry per
/// batch, not per record, so a busy proxy costs Redis one `XADD` per batch).
pub const STREAM_BATCH_FIELD: &str = "b";
