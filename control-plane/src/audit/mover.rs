//! The worker's audit job: moves records from the Redis stream into PostgreSQL. It reads batches
//! through a consumer group, stores each batch in one transaction (skipping ids already stored),
//! and acknowledges and deletes the entries only after the commit. A worker killed at any point
//! loses nothing (unacknowledged entries are read again, by itself on restart or by another worker
//! once they have been idle long enough) and duplicates nothing (ids are unique).

use std::time::Duration;

use asf_core::audit::{AuditRecord, STREAM_BATCH_FIELD, STREAM_FIELD};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use sqlx::PgPool;

use super::store;

/// The consumer group every worker reads through.
pub const GROUP: &str = "audit-writers";
/// Entries read per batch.
const BATCH: usize = 64;
/// How long one read waits for new entries.
const BLOCK_MS: u64 = 1_000;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Test instrumentation: `ASF_TEST_FAULT=audit-exit-after-commit` makes the worker exit right after
/// its first commit and before acknowledging it, the worst moment to die.
const FAULT_VARIABLE: &str = "ASF_TEST_FAULT";
const FAULT_EXIT_AFTER_COMMIT: &str = "audit-exit-after-commit";

pub struct AuditMover {
    pub redis: redis::Client,
    pub stream: String,
    pub consumer: String,
    pub db: PgPool,
    pub chain_key: [u8; 32],
    pub claim_idle: Duration,
}

/// Where the next batch comes from.
enum Source {
    /// Entries this consumer read before it restarted and never acknowledged.
    OwnPending,
    /// New entries; entries abandoned by other consumers are claimed on a timer.
    New,
}

impl AuditMover {
    /// Moves records until the process ends; Redis and PostgreSQL outages are waited out.
    pub async fn run(self) {
        let exit_after_commit = std::env::var(FAULT_VARIABLE).is_ok_and(|v| v == FAULT_EXIT_AFTER_COMMIT);
        let mut connection: Option<MultiplexedConnection> = None;
        let mut source = Source::OwnPending;
        let mut claim = Claim::new(self.claim_idle);
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = async {
                let conn = match &mut connection {
                    Some(conn) => conn,
                    None => connection.insert(self.connect().await?),
                };
                let entries = self.next_batch(conn, &mut source, &mut claim).await?;
                if entries.is_empty() {
                    return Ok::<_, String>(0);
                }
                let records: Vec<AuditRecord> = entries.iter().flat_map(parse_entry).collect();
                self.store(&records).await;
                if exit_after_commit {
                    tracing::warn!("{FAULT_VARIABLE}: exiting after commit, before acknowledging");
                    std::process::exit(3);
                }
                let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
                acknowledge(conn, &self.stream, &ids).await?;
                Ok(records.len())
            }
            .await;
            match result {
                Ok(moved) => {
                    backoff = Duration::from_millis(100);
                    if moved > 0 {
                        tracing::debug!(moved, "audit records stored");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit stream unavailable; retrying");
                    connection = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_millis(BLOCK_MS + 4_000)));
        let mut conn = self
            .redis
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        // From the start of the stream, so records written before the first worker are kept.
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.to_string()),
            _ => Ok(conn),
        }
    }

    async fn next_batch(
        &self,
        conn: &mut MultiplexedConnection,
        source: &mut Source,
        claim: &mut Claim,
    ) -> Result<Vec<StreamId>, String> {
        if let Source::OwnPending = source {
            let pending = self.read(conn, "0", None).await?;
            if !pending.is_empty() {
                return Ok(pending);
            }
            *source = Source::New;
        }
        // Entries a dead worker left behind are taken over on a timer, busy or not.
        if claim.due() {
            let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX))
                .arg(&claim.cursor)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(conn)
                .await
                .map_err(|e| e.to_string())?;
            claim.advance(claimed.next_stream_id);
            if !claimed.claimed.is_empty() {
                return Ok(claimed.claimed);
            }
        }
        self.read(conn, ">", Some(BLOCK_MS)).await
    }

    async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        from: &str,
        block_ms: Option<u64>,
    ) -> Result<Vec<StreamId>, String> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(BATCH);
        if let Some(ms) = block_ms {
            command.arg("BLOCK").arg(ms);
        }
        command.arg("STREAMS").arg(&self.stream).arg(from);
        let reply: Option<StreamReadReply> = command.query_async(conn).await.map_err(|e| e.to_string())?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Stores a batch, retrying until PostgreSQL takes it (the entries stay unacknowledged meanwhile).
    async fn store(&self, records: &[AuditRecord]) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match store::append(&self.db, &self.chain_key, records).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, records = records.len(), "storing audit records failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// When to look for abandoned entries next, and where the last look stopped.
struct Claim {
    every: Duration,
    next: tokio::time::Instant,
    cursor: String,
}

impl Claim {
    fn new(idle: Duration) -> Self {
        let every = (idle / 2).max(Duration::from_millis(100));
        Self {
            every,
            next: tokio::time::Instant::now() + every,
            cursor: "0-0".into(),
        }
    }

    fn due(&self) -> bool {
        tokio::time::Instant::now() >= self.next
    }

    /// After a look: continue from `cursor`, or wait a period once the whole stream was scanned.
    fn advance(&mut self, cursor: String) {
        if cursor == "0-0" || cursor.is_empty() {
            self.cursor = "0-0".into();
            self.next = tokio::time::Instant::now() + self.every;
        } else {
            self.cursor = cursor;
        }
    }
}

/// A stream entry's records: a batch (what sinks write) or a single record. Whatever cannot be
/// read is kept as a `malformed` record, never dropped: a batch element on its own (the rest of the
/// batch is stored as usual), or the whole entry when it is not a batch or a record at all.
fn parse_entry(entry: &StreamId) -> Vec<AuditRecord> {
    let batch: Option<String> = entry.get(STREAM_BATCH_FIELD);
    let single: Option<String> = entry.get(STREAM_FIELD);
    let parsed = match (&batch, &single) {
        (Some(raw), _) => serde_json::from_str::<Vec<serde_json::Value>>(raw)
            .ok()
            .map(|elements| {
                elements
                    .into_iter()
                    .enumerate()
                    .map(|(index, element)| {
                        serde_json::from_value::<AuditRecord>(element.clone()).unwrap_or_else(|_| {
                        tracing::error!(stream_id = %entry.id, index, "unreadable audit record; stored as malformed");
                        AuditRecord::malformed(&format!("{}:{index}", entry.id), &element.to_string())
                    })
                    })
                    .collect()
            }),
        (None, Some(raw)) => serde_json::from_str::<AuditRecord>(raw).ok().map(|record| vec![record]),
        (None, None) => None,
    };
    parsed.unwrap_or_else(|| {
        tracing::error!(stream_id = %entry.id, "unreadable audit entry; stored as malformed");
        vec![AuditRecord::malformed(
            &entry.id,
            batch.or(single).as_deref().unwrap_or(""),
        )]
    })
}

async fn acknowledge(conn: &mut MultiplexedConnection, stream: &str, ids: &[&str]) -> Result<(), String> {
    redis::pipe()
        .cmd("XACK")
        .arg(stream)
        .arg(GROUP)
        .arg(ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(ids)
        .ignore()
        .query_async::<()>(conn)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(field: &str, value: &str) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: [(field.to_owned(), redis::Value::BulkString(value.as_bytes().to_vec()))].into(),
            ..Default::default()
        }
    }

    fn record(status: i32) -> AuditRecord {
        AuditRecord::new(asf_core::audit::Kind::Request, "forwarded", status)
    }

    #[test]
    fn a_batch_entry_gives_its_records_in_order() {
        let records = vec![record(200), record(404)];
        let json = serde_json::to_string(&records).expect("json");
        assert_eq!(parse_entry(&entry(STREAM_BATCH_FIELD, &json)), records);
    }

    #[test]
    fn a_single_record_entry_is_still_read() {
        let one = record(201);
        let json = serde_json::to_string(&one).expect("json");
        assert_eq!(parse_entry(&entry(STREAM_FIELD, &json)), vec![one]);
    }

    #[test]
    fn an_unreadable_batch_element_is_kept_as_malformed_and_the_rest_stored() {
        let good = record(200);
        let json = format!(
            "[{},{{\"kind\":\"from-the-future\"}}]",
            serde_json::to_string(&good).expect("json")
        );
        let parsed = parse_entry(&entry(STREAM_BATCH_FIELD, &json));
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], good);
        assert_eq!(parsed[1].id, "malformed:1-0:1");
        assert!(
            parsed[1]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("from-the-future"))
        );
    }

    #[test]
    fn an_unreadable_entry_becomes_one_malformed_record() {
        for (field, raw) in [(STREAM_BATCH_FIELD, "[{\"nope\""), (STREAM_FIELD, "{}"), ("x", "?")] {
            let parsed = parse_entry(&entry(field, raw));
            assert_eq!(parsed.len(), 1, "{field}");
            assert_eq!(parsed[0].id, "malformed:1-0");
        }
    }
}
