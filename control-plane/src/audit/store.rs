//! The audit table: appending batches in chain order (idempotently: a record id already stored is
//! skipped), reading rows back as records, and pruning a prefix of the chain for retention while
//! keeping its last link as the anchor.

use std::collections::HashSet;

use asf_core::audit::{AuditRecord, ChainLink};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// A stored row: the record and its hashes.
#[derive(sqlx::FromRow)]
pub struct StoredRow {
    pub seq: i64,
    pub record_id: String,
    pub at_ms: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_ip: Option<String>,
    pub method: Option<String>,
    pub route: Option<String>,
    pub path: Option<String>,
    pub route_class: Option<String>,
    pub decision: String,
    pub status: i32,
    pub upstream_status: Option<i32>,
    pub queue_wait_ms: Option<i64>,
    pub latency_ms: Option<i64>,
    pub detail: Option<String>,
    pub content_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
}

impl StoredRow {
    /// The record as it was hashed, or why the row cannot be one (a tampered `kind`).
    pub fn record(&self) -> Result<AuditRecord, String> {
        Ok(AuditRecord {
            id: self.record_id.clone(),
            at_ms: self.at_ms,
            kind: self.kind.parse()?,
            user_id: self.user_id.clone(),
            tenant_id: self.tenant_id.clone(),
            client_ip: self.client_ip.clone(),
            method: self.method.clone(),
            route: self.route.clone(),
            path: self.path.clone(),
            class: self.route_class.clone(),
            decision: self.decision.clone(),
            status: self.status,
            upstream_status: self.upstream_status,
            queue_wait_ms: self.queue_wait_ms,
            latency_ms: self.latency_ms,
            detail: self.detail.clone(),
        })
    }
}

/// The chain's head and anchor, and their seal (none before the first record).
pub struct ChainState {
    pub head: ChainLink,
    pub anchor: ChainLink,
    pub seal: Option<Vec<u8>>,
}

impl ChainState {
    /// Whether the head and anchor are the ones last written by a holder of the key: their seal
    /// matches, or (no seal yet) the chain is still at genesis.
    pub fn is_sealed(&self, key: &[u8; 32]) -> bool {
        match &self.seal {
            Some(stored) => stored.as_slice() == asf_core::audit::seal(key, &self.head, &self.anchor).as_slice(),
            None => self.head == ChainLink::GENESIS && self.anchor == ChainLink::GENESIS,
        }
    }
}

fn link(seq: i64, hash: &[u8]) -> ChainLink {
    let mut bytes = [0u8; 32];
    if hash.len() == 32 {
        bytes.copy_from_slice(hash);
    }
    ChainLink { seq, hash: bytes }
}

const READ_CHAIN: &str = "select last_seq, last_hash, anchor_seq, anchor_hash, seal from audit_chain where singleton";
const LOCK_CHAIN: &str =
    "select last_seq, last_hash, anchor_seq, anchor_hash, seal from audit_chain where singleton for update";

type ChainRow = (i64, Vec<u8>, i64, Vec<u8>, Option<Vec<u8>>);

async fn read_chain(conn: &mut PgConnection, sql: &'static str) -> Result<ChainState, sqlx::Error> {
    let (last_seq, last_hash, anchor_seq, anchor_hash, seal): ChainRow = sqlx::query_as(sql).fetch_one(conn).await?;
    Ok(ChainState {
        head: link(last_seq, &last_hash),
        anchor: link(anchor_seq, &anchor_hash),
        seal,
    })
}

/// Stores a new head and anchor with their seal.
async fn store_chain(
    tx: &mut Transaction<'_, Postgres>,
    key: &[u8; 32],
    head: &ChainLink,
    anchor: &ChainLink,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update audit_chain set last_seq = $1, last_hash = $2, anchor_seq = $3, anchor_hash = $4, seal = $5, \
         updated_at = now() where singleton",
    )
    .bind(head.seq)
    .bind(head.hash.as_slice())
    .bind(anchor.seq)
    .bind(anchor.hash.as_slice())
    .bind(asf_core::audit::seal(key, head, anchor).as_slice())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks the chain for an append or a prune (held until the transaction ends). A head or anchor
/// someone rewrote is refused: writing on top of it would seal the rewrite (the records wait on the
/// stream, nothing is lost) until an operator has looked.
async fn lock_chain(tx: &mut Transaction<'_, Postgres>, key: &[u8; 32]) -> Result<ChainState, sqlx::Error> {
    let chain = read_chain(tx, LOCK_CHAIN).await?;
    if !chain.is_sealed(key) {
        tracing::error!(
            "the audit chain's head or anchor does not match its seal; not writing (run `asf-control audit verify`)"
        );
        return Err(sqlx::Error::Protocol("audit chain seal mismatch".into()));
    }
    Ok(chain)
}

/// Reads the chain's head and anchor.
pub async fn chain_state(conn: &mut PgConnection) -> Result<ChainState, sqlx::Error> {
    read_chain(conn, READ_CHAIN).await
}

/// Appends the records not stored yet, in order, in one transaction. Returns how many were new.
pub async fn append(db: &PgPool, key: &[u8; 32], records: &[AuditRecord]) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut chain = lock_chain(&mut tx, key).await?;
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let stored: Vec<String> = sqlx::query_scalar("select record_id from audit_log where record_id = any($1)")
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    let mut seen: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let mut columns = Columns::default();
    for record in records {
        if !seen.insert(record.id.as_str()) {
            continue;
        }
        let (next, content) = chain.head.append(key, record);
        columns.push(next, content, record);
    }
    let inserted = columns.seq.len();
    if inserted > 0 {
        columns.insert(&mut tx).await?;
        store_chain(&mut tx, key, &chain.head, &chain.anchor).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

/// Column arrays for one multi-row insert through `unnest`.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    record_id: Vec<String>,
    at_ms: Vec<i64>,
    kind: Vec<String>,
    user_id: Vec<Option<String>>,
    tenant_id: Vec<Option<String>>,
    client_ip: Vec<Option<String>>,
    method: Vec<Option<String>>,
    route: Vec<Option<String>>,
    path: Vec<Option<String>>,
    route_class: Vec<Option<String>>,
    decision: Vec<String>,
    status: Vec<i32>,
    upstream_status: Vec<Option<i32>>,
    queue_wait_ms: Vec<Option<i64>>,
    latency_ms: Vec<Option<i64>>,
    detail: Vec<Option<String>>,
    content_hash: Vec<Vec<u8>>,
    chain_hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, link: ChainLink, content: [u8; 32], r: &AuditRecord) {
        self.seq.push(link.seq);
        self.record_id.push(r.id.clone());
        self.at_ms.push(r.at_ms);
        self.kind.push(r.kind.as_str().to_owned());
        self.user_id.push(r.user_id.clone());
        self.tenant_id.push(r.tenant_id.clone());
        self.client_ip.push(r.client_ip.clone());
        self.method.push(r.method.clone());
        self.route.push(r.route.clone());
        self.path.push(r.path.clone());
        self.route_class.push(r.class.clone());
        self.decision.push(r.decision.clone());
        self.status.push(r.status);
        self.upstream_status.push(r.upstream_status);
        self.queue_wait_ms.push(r.queue_wait_ms);
        self.latency_ms.push(r.latency_ms);
        self.detail.push(r.detail.clone());
        self.content_hash.push(content.to_vec());
        self.chain_hash.push(link.hash.to_vec());
    }

    async fn insert(self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "insert into audit_log (",
            audit_columns!(),
            ") select * from unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], ",
            "$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::int[], ",
            "$15::bigint[], $16::bigint[], $17::text[], $18::bytea[], $19::bytea[])"
        ))
        .bind(self.seq)
        .bind(self.record_id)
        .bind(self.at_ms)
        .bind(self.kind)
        .bind(self.user_id)
        .bind(self.tenant_id)
        .bind(self.client_ip)
        .bind(self.method)
        .bind(self.route)
        .bind(self.path)
        .bind(self.route_class)
        .bind(self.decision)
        .bind(self.status)
        .bind(self.upstream_status)
        .bind(self.queue_wait_ms)
        .bind(self.latency_ms)
        .bind(self.detail)
        .bind(self.content_hash)
        .bind(self.chain_hash)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Rows after `after_seq`, in chain order, at most `limit`.
pub async fn rows_after(conn: &mut PgConnection, after_seq: i64, limit: i64) -> Result<Vec<StoredRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        audit_columns!(),
        " from audit_log where seq > $1 order by seq limit $2"
    ))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Most rows removed by one pruning transaction.
const PRUNE_STEP: i64 = 10_000;

/// Removes the oldest records: the longest prefix of the chain whose records all happened before
/// `cutoff_ms`. Each step moves the anchor to the last removed record, so what remains still
/// verifies. Returns how many rows were removed.
pub async fn prune(db: &PgPool, key: &[u8; 32], cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let mut removed = 0;
    loop {
        let mut tx = db.begin().await?;
        let chain = lock_chain(&mut tx, key).await?;
        let first_kept: Option<i64> = sqlx::query_scalar("select min(seq) from audit_log where at_ms >= $1")
            .bind(cutoff_ms)
            .fetch_one(&mut *tx)
            .await?;
        let last_removable = first_kept.map_or(chain.head.seq, |seq| seq - 1);
        let target = last_removable.min(chain.anchor.seq + PRUNE_STEP);
        if target <= chain.anchor.seq {
            tx.commit().await?;
            return Ok(removed);
        }
        let hash: Vec<u8> = sqlx::query_scalar("select chain_hash from audit_log where seq = $1")
            .bind(target)
            .fetch_one(&mut *tx)
            .await?;
        let deleted = sqlx::query("delete from audit_log where seq <= $1")
            .bind(target)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let anchor = link(target, &hash);
        store_chain(&mut tx, key, &chain.head, &anchor).await?;
        tx.commit().await?;
        removed += deleted;
    }
}
