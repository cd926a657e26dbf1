//! The hand-off of audit records from a producer to the Redis stream. `record` only pushes onto a
//! bounded in-memory buffer (never awaits, never fails the request); a task ships the buffer to
//! Redis, up to [`RECORDS_PER_ENTRY`] records per stream entry, several entries per pipeline. While Redis is unreachable the buffer holds the records
//! and the task retries with backoff; a record is dropped only when the buffer is full, and every
//! drop is counted and logged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

use super::{AuditRecord, STREAM_BATCH_FIELD};

/// Most records sent in one pipeline.
const BATCH: usize = 512;
/// Most records in one stream entry (a JSON array). Under load one entry carries many records,
/// which costs Redis one `XADD` instead of one per record (measured in bench/RESULTS.md).
pub const RECORDS_PER_ENTRY: usize = 64;
/// Bytes of JSON after which an entry takes no more records (a record's text fields are bounded by
/// `scrub`, so an entry stays near this size).
pub const ENTRY_BYTES: usize = 256 * 1024;
/// Bound on one Redis call of the shipper.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Counters of a sink, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShipperStats {
    /// Records waiting to be shipped.
    pub buffered: u64,
    /// Records on the stream.
    pub shipped: u64,
    /// Records lost because the buffer was full.
    pub dropped: u64,
}

/// Where producers put audit records. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    buffer: Mutex<VecDeque<AuditRecord>>,
    capacity: usize,
    wake: Notify,
    started: AtomicBool,
    /// Records out of the buffer and on their way to Redis.
    in_flight: AtomicU64,
    shipped: AtomicU64,
    dropped: AtomicU64,
    last_drop_log: AtomicI64,
    stream_key: String,
    redis: redis::Client,
}

impl AuditSink {
    /// A sink shipping to `stream_key` on `redis`, holding at most `capacity` records while Redis
    /// is away. Nothing is shipped until [`AuditSink::ensure_started`] runs inside a runtime.
    pub fn new(redis: redis::Client, stream_key: String, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                buffer: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                wake: Notify::new(),
                started: AtomicBool::new(false),
                in_flight: AtomicU64::new(0),
                shipped: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                last_drop_log: AtomicI64::new(0),
                stream_key,
                redis,
            }),
        }
    }

    /// Hands a record off; never blocks on I/O.
    pub fn record(&self, mut record: AuditRecord) {
        record.scrub();
        let mut buffer = self.inner.lock();
        if buffer.len() >= self.inner.capacity {
            drop(buffer);
            self.inner.count_drop(&record);
            return;
        }
        let was_empty = buffer.is_empty();
        buffer.push_back(record);
        drop(buffer);
        if was_empty {
            self.inner.wake.notify_one();
        }
    }

    /// Starts the shipping task on the current runtime, once.
    pub fn ensure_started(&self) {
        if self.inner.started.load(Ordering::Relaxed) || self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.ship_forever().await });
    }

    pub fn stats(&self) -> ShipperStats {
        ShipperStats {
            buffered: self.inner.lock().len() as u64 + self.inner.in_flight.load(Ordering::Acquire),
            shipped: self.inner.shipped.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
        }
    }

    /// Ships what is buffered from the calling task (for shutdown, when the shipping task's
    /// runtime may be going away); `true` when the buffer was emptied.
    pub async fn ship_remaining(&self) -> bool {
        let mut connection = None;
        loop {
            let batch: Vec<AuditRecord> = {
                let mut buffer = self.inner.lock();
                let take = buffer.len().min(BATCH);
                buffer.drain(..take).collect()
            };
            if batch.is_empty() {
                return true;
            }
            if let Err(e) = self.inner.ship(&mut connection, &batch).await {
                tracing::error!(error = %e, records = batch.len(), "audit records not shipped at shutdown");
                let mut buffer = self.inner.lock();
                for record in batch.into_iter().rev() {
                    buffer.push_front(record);
                }
                return false;
            }
            self.inner.shipped.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }

    /// Waits until the buffer is empty or `within` has passed; `true` when everything was shipped.
    pub async fn flush(&self, within: Duration) -> bool {
        self.ensure_started();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.inner.lock().is_empty() && self.inner.in_flight_done() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, VecDeque<AuditRecord>> {
        // A panic while holding this lock cannot leave the queue inconsistent: keep using it.
        self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// No batch is between the buffer and the stream.
    fn in_flight_done(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn count_drop(&self, record: &AuditRecord) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = super::record::unix_millis() / 1000;
        let last = self.last_drop_log.load(Ordering::Relaxed);
        if now > last
            && self
                .last_drop_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                record_id = %record.id,
                dropped_total = total,
                capacity = self.capacity,
                "audit buffer full: record dropped"
            );
        }
    }

    async fn ship_forever(self: Arc<Self>) {
        let mut connection: Option<MultiplexedConnection> = None;
        let mut backoff = Duration::from_millis(50);
        loop {
            let batch: Vec<AuditRecord> = {
                let mut buffer = self.lock();
                let take = buffer.len().min(BATCH);
                self.in_flight.store(take as u64, Ordering::Release);
                buffer.drain(..take).collect()
            };
            if batch.is_empty() {
                // A missed notification only delays shipping by the timeout.
                let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                continue;
            }
            match self.ship(&mut connection, &batch).await {
                Ok(()) => {
                    self.shipped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.in_flight.store(0, Ordering::Release);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = batch.len(), "audit records not shipped yet; retrying");
                    connection = None;
                    {
                        let mut buffer = self.lock();
                        for record in batch.into_iter().rev() {
                            buffer.push_front(record);
                        }
                    }
                    self.in_flight.store(0, Ordering::Release);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn ship(&self, connection: &mut Option<MultiplexedConnection>, batch: &[AuditRecord]) -> Result<(), String> {
        if connection.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CALL_TIMEOUT))
                .set_response_timeout(Some(CALL_TIMEOUT));
            let made = self
                .redis
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| e.to_string())?;
            *connection = Some(made);
        }
        let Some(conn) = connection.as_mut() else {
            return Err("no connection".into());
        };
        let mut pipe = redis::pipe();
        for entry in entries(batch) {
            pipe.cmd("XADD")
                .arg(&self.stream_key)
                .arg("*")
                .arg(STREAM_BATCH_FIELD)
                .arg(entry)
                .ignore();
        }
        tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(conn))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())
    }
}

/// The batch as stream entries: JSON arrays of the records' canonical JSON, each of at most
/// [`RECORDS_PER_ENTRY`] records and closed once it passes [`ENTRY_BYTES`].
fn entries(batch: &[AuditRecord]) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut count = 0;
    for record in batch {
        current.push(if count == 0 { b'[' } else { b',' });
        current.extend_from_slice(&record.canonical_bytes());
        count += 1;
        if count == RECORDS_PER_ENTRY || current.len() >= ENTRY_BYTES {
            current.push(b']');
            entries.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if count > 0 {
        current.push(b']');
        entries.push(current);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Kind;

    fn parse(entry: &[u8]) -> Vec<AuditRecord> {
        serde_json::from_slice(entry).expect("an entry is a JSON array of records")
    }

    #[test]
    fn a_batch_becomes_entries_of_at_most_the_record_limit_in_order() {
        let batch: Vec<AuditRecord> = (0..130)
            .map(|i| AuditRecord::new(Kind::Request, "forwarded", 200 + i))
            .collect();
        let entries = entries(&batch);
        let sizes: Vec<usize> = entries.iter().map(|e| parse(e).len()).collect();
        assert_eq!(sizes, vec![64, 64, 2]);
        let back: Vec<AuditRecord> = entries.iter().flat_map(|e| parse(e)).collect();
        assert_eq!(back, batch);
        assert!(super::entries(&[]).is_empty());
    }

    #[test]
    fn large_records_close_an_entry_by_size() {
        let batch: Vec<AuditRecord> = (0..10)
            .map(|_| {
                let mut record = AuditRecord::new(Kind::Request, "forwarded", 200);
                record.detail = Some("x".repeat(100_000));
                record
            })
            .collect();
        let entries = entries(&batch);
        assert_eq!(entries.len(), 4, "three records pass 256 KiB");
        assert!(entries.iter().all(|e| e.len() < ENTRY_BYTES + 110_000));
        assert_eq!(entries.iter().map(|e| parse(e).len()).sum::<usize>(), 10);
    }
}
