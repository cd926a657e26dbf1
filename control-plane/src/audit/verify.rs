//! `asf-control audit verify`: walks the chain from its anchor to its head and names the first
//! record that does not belong where it is.

use asf_core::audit::{BrokenLink, ChainLink};
use sqlx::{PgConnection, PgPool};

use super::store;

/// Rows read per query.
const PAGE: i64 = 2_000;

/// The outcome of a verification.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record from the anchor to the head verifies.
    Intact {
        records: u64,
        first_seq: i64,
        last_seq: i64,
    },
    /// The first record that does not verify.
    Broken {
        seq: i64,
        record_id: Option<String>,
        reason: String,
    },
}

/// Verifies the stored chain as one consistent snapshot (appends and prunes may run meanwhile).
pub async fn verify(db: &PgPool, key: &[u8; 32]) -> Result<Verdict, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("set transaction isolation level repeatable read read only")
        .execute(&mut *tx)
        .await?;
    let verdict = verify_snapshot(&mut tx, key).await;
    tx.rollback().await?;
    verdict
}

async fn verify_snapshot(conn: &mut PgConnection, key: &[u8; 32]) -> Result<Verdict, sqlx::Error> {
    let state = store::chain_state(conn).await?;
    if !state.is_sealed(key) {
        return Ok(Verdict::Broken {
            seq: state.head.seq,
            record_id: None,
            reason: "the chain's recorded head or anchor was rewritten (records cut from an end?)".into(),
        });
    }
    let mut link: ChainLink = state.anchor;
    let mut records = 0u64;
    'pages: loop {
        let rows = store::rows_after(conn, link.seq, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if row.seq > state.head.seq {
                break 'pages;
            }
            let broken = |reason: String| Verdict::Broken {
                seq: row.seq,
                record_id: Some(row.record_id.clone()),
                reason,
            };
            let record = match row.record() {
                Ok(record) => record,
                Err(reason) => return Ok(broken(format!("record {}: {reason}", row.seq))),
            };
            if let Err(e) = link.verify_next(key, row.seq, &record, &row.content_hash, &row.chain_hash) {
                return Ok(broken(e.to_string()));
            }
            records += 1;
        }
    }
    if link != state.head {
        let missing = BrokenLink::Gap {
            seq: state.head.seq,
            expected_previous: link.seq,
        };
        return Ok(Verdict::Broken {
            seq: link.seq + 1,
            record_id: None,
            reason: format!("the chain's head is record {}, but {missing}", state.head.seq),
        });
    }
    Ok(Verdict::Intact {
        records,
        first_seq: state.anchor.seq + 1,
        last_seq: state.head.seq,
    })
}
