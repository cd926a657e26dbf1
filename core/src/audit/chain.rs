//! The hash chain that makes the audit trail tamper-evident. Each stored record carries the
//! SHA-256 of its content and a chain hash: HMAC-SHA256, under a key derived from the secrets key,
//! of the previous record's chain hash, its own sequence number and its content hash. Editing,
//! deleting, inserting or reordering rows breaks the chain at that point, and someone with only
//! database access cannot forge a consistent chain (they lack the key).
//!
//! Pruning for retention removes a prefix of the chain and keeps its last link as the anchor the
//! remaining records are verified from.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AuditRecord;
use crate::secrets::SecretsKey;

/// The chain hash "before" the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The chain key, derived from the secrets key.
pub fn chain_key(secrets: &SecretsKey) -> [u8; 32] {
    secrets.subkey("audit-chain-v1")
}

/// The chain hash of the record at `seq` with `content_hash`, following `previous`.
pub fn chain_hash(key: &[u8; 32], previous: &[u8; 32], seq: i64, content_hash: &[u8; 32]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(previous);
    mac.update(&seq.to_be_bytes());
    mac.update(content_hash);
    mac.finalize().into_bytes().into()
}

/// The seal of a chain's head and anchor: HMAC-SHA256 of both under the chain key. Stored with
/// them, it makes cutting records from either end (and rewriting the head or anchor to match)
/// detectable without the key.
pub fn seal(key: &[u8; 32], head: &ChainLink, anchor: &ChainLink) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"asf-audit-seal");
    mac.update(&head.seq.to_be_bytes());
    mac.update(&head.hash);
    mac.update(&anchor.seq.to_be_bytes());
    mac.update(&anchor.hash);
    mac.finalize().into_bytes().into()
}

/// The end of a chain: the last record's sequence number and chain hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// Why a stored record does not belong where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenLink {
    #[error("record {seq} follows {expected_previous}: records are missing or out of order")]
    Gap { seq: i64, expected_previous: i64 },
    #[error("record {seq}: its content does not match its stored hash (the row was altered)")]
    ContentAltered { seq: i64 },
    #[error("record {seq}: its chain hash does not follow the previous record (altered, inserted or forged)")]
    ChainBroken { seq: i64 },
}

impl ChainLink {
    pub const GENESIS: ChainLink = ChainLink {
        seq: 0,
        hash: GENESIS_HASH,
    };

    /// Appends `record` as the next link and returns (new link, content hash).
    pub fn append(&mut self, key: &[u8; 32], record: &AuditRecord) -> (ChainLink, [u8; 32]) {
        let content = record.content_hash();
        let seq = self.seq + 1;
        *self = ChainLink {
            seq,
            hash: chain_hash(key, &self.hash, seq, &content),
        };
        (*self, content)
    }

    /// Checks that a stored row is the next link, then advances to it.
    pub fn verify_next(
        &mut self,
        key: &[u8; 32],
        seq: i64,
        record: &AuditRecord,
        stored_content: &[u8],
        stored_chain: &[u8],
    ) -> Result<(), BrokenLink> {
        if seq != self.seq + 1 {
            return Err(BrokenLink::Gap {
                seq,
                expected_previous: self.seq,
            });
        }
        let content = record.content_hash();
        if stored_content != content.as_slice() {
            return Err(BrokenLink::ContentAltered { seq });
        }
        let hash = chain_hash(key, &self.hash, seq, &content);
        if stored_chain != hash.as_slice() {
            return Err(BrokenLink::ChainBroken { seq });
        }
        *self = ChainLink { seq, hash };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Kind;

    struct Row {
        seq: i64,
        record: AuditRecord,
        content: [u8; 32],
        chain: [u8; 32],
    }

    fn chain_of(key: &[u8; 32], count: i64) -> Vec<Row> {
        let mut link = ChainLink::GENESIS;
        (0..count)
            .map(|i| {
                let record = AuditRecord::new(Kind::Request, "forwarded", 200 + i32::try_from(i).unwrap_or(0));
                let (next, content) = link.append(key, &record);
                Row {
                    seq: next.seq,
                    record,
                    content,
                    chain: next.hash,
                }
            })
            .collect()
    }

    fn verify(key: &[u8; 32], start: ChainLink, rows: &[Row]) -> Result<ChainLink, BrokenLink> {
        let mut link = start;
        for row in rows {
            link.verify_next(key, row.seq, &row.record, &row.content, &row.chain)?;
        }
        Ok(link)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let key = [7; 32];
        let rows = chain_of(&key, 10);
        assert_eq!(verify(&key, ChainLink::GENESIS, &rows).map(|l| l.seq), Ok(10));
    }

    #[test]
    fn an_edited_row_is_named() {
        let key = [7; 32];
        let mut rows = chain_of(&key, 10);
        rows[4].record.status = 599;
        assert_eq!(
            verify(&key, ChainLink::GENESIS, &rows),
            Err(BrokenLink::ContentAltered { seq: 5 })
        );
    }

    #[test]
    fn a_rehashed_edit_without_the_key_breaks_the_chain() {
        let key = [7; 32];
        let mut rows = chain_of(&key, 10);
        rows[4].record.decision = "refused_auth".into();
        rows[4].content = rows[4].record.content_hash();
        rows[4].chain = chain_hash(&[0; 32], &rows[3].chain, 5, &rows[4].content);
        assert_eq!(
            verify(&key, ChainLink::GENESIS, &rows),
            Err(BrokenLink::ChainBroken { seq: 5 })
        );
    }

    #[test]
    fn deleted_and_reordered_rows_are_found() {
        let key = [7; 32];
        let mut rows = chain_of(&key, 10);
        rows.remove(6);
        assert_eq!(
            verify(&key, ChainLink::GENESIS, &rows),
            Err(BrokenLink::Gap {
                seq: 8,
                expected_previous: 6
            })
        );
        let mut rows = chain_of(&key, 10);
        rows.swap(2, 3);
        assert!(verify(&key, ChainLink::GENESIS, &rows).is_err());
    }

    #[test]
    fn a_pruned_prefix_verifies_from_its_anchor() {
        let key = [7; 32];
        let rows = chain_of(&key, 10);
        let anchor = ChainLink {
            seq: rows[3].seq,
            hash: rows[3].chain,
        };
        assert_eq!(verify(&key, anchor, &rows[4..]).map(|l| l.seq), Ok(10));
        assert!(verify(&key, ChainLink::GENESIS, &rows[4..]).is_err());
    }
}
