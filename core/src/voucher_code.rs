//! Voucher codes: generated from a CSPRNG, easy to read aloud and type, and checked for typos.
//!
//! A code is 12 random symbols and one check symbol from a 32-symbol alphabet without `0`, `O`, `1`
//! and `I`, shown as `ABCD-EFGH-JKLMN` (4-4-5: no group of one that looks like a stray character).
//! The 12 random symbols carry 60 bits.
//!
//! The check symbol makes the weighted sum `Σ s_i · α^(13-i)` zero in GF(32), where `s_i` is the
//! symbol's index in the alphabet and `α` a primitive element (of order 31). That detects every
//! substitution of a single symbol (`e · α^k ≠ 0`) and every transposition of two different symbols,
//! adjacent or not (`(a - b) · α^k · (α^d - 1) ≠ 0` since the distance `d ≤ 12 < 31`). Luhn mod 32
//! would miss the transposition of the first and last symbols of the alphabet; a decimal-style Damm
//! table has no convenient order-32 form. Other errors go undetected with probability 1/32.

use std::fmt;
use std::str::FromStr;

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// The symbols of a code, in the order of their values 0..32.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Symbols in a code, check symbol included.
pub const LEN: usize = DATA_LEN + 1;
const DATA_LEN: usize = 12;
/// Group sizes of the displayed form.
const GROUPS: [usize; 3] = [4, 4, 5];
/// GF(32) is GF(2)[x] / (x^5 + x^2 + 1); that polynomial is primitive, so `x` has order 31.
const MODULUS: u8 = 0b10_0101;

/// A well-formed voucher code (which says nothing about whether it was ever issued).
///
/// `Debug` is redacted and there is no `Display`, so that a code is not logged by accident; use
/// [`VoucherCode::display`] to show it to its owner.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VoucherCode(String);

/// Why a string is not a voucher code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a voucher code has {LEN} symbols, not counting dashes and spaces")]
    WrongLength,
    #[error("{0:?} does not occur in voucher codes, which use 2-9 and the letters A-Z except I and O")]
    InvalidCharacter(char),
    /// Well-formed, but the check symbol does not match: the code was mistyped.
    #[error("the voucher code is mistyped: please check each symbol")]
    CheckFailed,
}

impl VoucherCode {
    /// The code without separators, in upper case: the form that is hashed for storage and lookup.
    pub fn canonical(&self) -> &str {
        &self.0
    }

    /// The code in groups separated by dashes, e.g. `ABCD-EFGH-JKLMN`.
    pub fn display(&self) -> String {
        let mut out = String::with_capacity(LEN + GROUPS.len() - 1);
        let mut rest = self.0.as_str();
        for (i, size) in GROUPS.into_iter().enumerate() {
            if i > 0 {
                out.push('-');
            }
            let (group, tail) = rest.split_at(size);
            out.push_str(group);
            rest = tail;
        }
        out
    }

    /// SHA-256 of the canonical form: what the database stores and looks codes up by, so that a read
    /// of the table does not reveal redeemable codes.
    pub fn lookup_hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VoucherCode(<redacted>)")
    }
}

impl FromStr for VoucherCode {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// A new random code, from the thread's CSPRNG.
pub fn generate() -> VoucherCode {
    generate_with(&mut rand::thread_rng())
}

/// A new random code from `rng`.
pub fn generate_with<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> VoucherCode {
    let mut values = [0u8; LEN];
    rng.fill_bytes(&mut values[..DATA_LEN]);
    for value in &mut values[..DATA_LEN] {
        // 32 divides 256, so masking keeps the symbols uniform.
        *value &= 0b1_1111;
    }
    values[DATA_LEN] = check_symbol(&values[..DATA_LEN]);
    VoucherCode(values.iter().map(|&v| char::from(ALPHABET[usize::from(v)])).collect())
}

/// Reads a code as a user typed it: case, spaces and dashes do not matter.
///
/// Fails with [`CodeError::InvalidCharacter`] on the first character outside the alphabet (`0`, `O`,
/// `1` and `I` included: they are not mapped to anything, since the alphabet has no lookalike for
/// them), then [`CodeError::WrongLength`], then [`CodeError::CheckFailed`] when the check symbol
/// does not match.
pub fn parse(input: &str) -> Result<VoucherCode, CodeError> {
    let mut values = Vec::with_capacity(LEN);
    for ch in input.chars().filter(|&ch| ch != '-' && !ch.is_whitespace()) {
        let upper = ch.to_ascii_uppercase();
        let value = ALPHABET
            .iter()
            .position(|&symbol| char::from(symbol) == upper)
            .ok_or(CodeError::InvalidCharacter(ch))?;
        values.push(value as u8);
    }
    if values.len() != LEN {
        return Err(CodeError::WrongLength);
    }
    if weighted_sum(&values) != 0 {
        return Err(CodeError::CheckFailed);
    }
    Ok(VoucherCode(
        values.iter().map(|&v| char::from(ALPHABET[usize::from(v)])).collect(),
    ))
}

/// The symbol that makes the weighted sum of `data` followed by it zero.
fn check_symbol(data: &[u8]) -> u8 {
    // Appending c gives α·sum(data) + c, and -y = y in characteristic 2.
    times_alpha(weighted_sum(data))
}

/// `Σ s_i · α^(n-1-i)` by Horner's rule.
fn weighted_sum(values: &[u8]) -> u8 {
    values.iter().fold(0, |acc, &v| times_alpha(acc) ^ v)
}

fn times_alpha(v: u8) -> u8 {
    let shifted = v << 1;
    if shifted & 0b10_0000 != 0 {
        shifted ^ MODULUS
    } else {
        shifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn with_symbol(code: &str, at: usize, symbol: u8) -> String {
        let mut bytes = code.as_bytes().to_vec();
        bytes[at] = symbol;
        String::from_utf8(bytes).expect("ascii")
    }

    #[test]
    fn alphabet_has_32_distinct_symbols_and_no_lookalikes() {
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 32);
        for lookalike in *b"0O1I" {
            assert!(!ALPHABET.contains(&lookalike), "{}", char::from(lookalike));
        }
        assert!(ALPHABET.iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }

    #[test]
    fn alpha_is_primitive() {
        let mut power = 1u8;
        for k in 1..=31 {
            power = times_alpha(power);
            assert!(power < 32);
            assert_eq!(power == 1, k == 31, "α^{k}");
        }
    }

    #[test]
    fn generated_codes_parse_back_in_every_form() {
        for _ in 0..200 {
            let code = generate();
            let canonical = code.canonical();
            assert_eq!(canonical.len(), LEN);
            assert_eq!(parse(canonical), Ok(code.clone()));
            assert_eq!(parse(&code.display()), Ok(code.clone()));
            let typed = format!("  {} ", code.display().to_lowercase().replace('-', " - "));
            assert_eq!(parse(&typed), Ok(code.clone()));
        }
    }

    #[test]
    fn display_groups_four_four_five() {
        let code = parse("ABCDEFGHJKLMR").expect("valid");
        assert_eq!(code.display(), "ABCD-EFGH-JKLMR");
    }

    #[test]
    fn check_symbol_is_pinned() {
        // Stored hashes cover the check symbol: changing the scheme would orphan every issued code.
        assert_eq!(
            parse("2222-2222-22222").map(|c| c.display()),
            Ok("2222-2222-22222".to_owned())
        );
        assert_eq!(
            parse("abcd-efgh-jklmR").map(|c| c.display()),
            Ok("ABCD-EFGH-JKLMR".to_owned())
        );
        assert_eq!(
            parse("ZZZZ-ZZZZ-ZZZZS").map(|c| c.display()),
            Ok("ZZZZ-ZZZZ-ZZZZS".to_owned())
        );
    }

    #[test]
    fn malformed_input_is_refused_with_its_reason() {
        let cases: &[(&str, CodeError)] = &[
            ("", CodeError::WrongLength),
            ("ABCD-EFGH-JKLM", CodeError::WrongLength),
            ("ABCD-EFGH-JKLMR7", CodeError::WrongLength),
            ("ABCD-EFGH-JKLM0", CodeError::InvalidCharacter('0')),
            ("ABCD-EFGH-JKLMO", CodeError::InvalidCharacter('O')),
            ("ABCD-EFGH-JKLM1", CodeError::InvalidCharacter('1')),
            ("ABCD-EFGH-JKLMi", CodeError::InvalidCharacter('i')),
            ("ABCD_EFGH_JKLMR", CodeError::InvalidCharacter('_')),
            ("ABCD-EFGH-JKLMé", CodeError::InvalidCharacter('é')),
            ("ABCD-EFGH-JKLMS", CodeError::CheckFailed),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn every_single_substitution_is_caught() {
        let mut rng = StdRng::seed_from_u64(0xc0de);
        for _ in 0..2_000 {
            let code = generate_with(&mut rng);
            let code = code.canonical();
            for at in 0..LEN {
                for &symbol in ALPHABET.iter().filter(|&&s| s != code.as_bytes()[at]) {
                    let typo = with_symbol(code, at, symbol);
                    assert_eq!(parse(&typo), Err(CodeError::CheckFailed), "{code} -> {typo}");
                }
            }
        }
    }

    #[test]
    fn every_transposition_is_caught_adjacent_or_not() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..5_000 {
            let code = generate_with(&mut rng);
            let code = code.canonical().as_bytes();
            for i in 0..LEN {
                for j in (i + 1..LEN).filter(|&j| code[i] != code[j]) {
                    let mut swapped = code.to_vec();
                    swapped.swap(i, j);
                    let swapped = String::from_utf8(swapped).expect("ascii");
                    assert_eq!(
                        parse(&swapped),
                        Err(CodeError::CheckFailed),
                        "swap {i},{j} of {swapped}"
                    );
                }
            }
        }
    }

    #[test]
    fn lookup_hash_is_sha256_of_the_canonical_form() {
        let code = parse("abcd efgh jklmR").expect("valid");
        assert_eq!(code.lookup_hash(), <[u8; 32]>::from(Sha256::digest(b"ABCDEFGHJKLMR")));
        assert_eq!(
            code.lookup_hash(),
            parse("ABCD-EFGH-JKLMR").expect("valid").lookup_hash()
        );
    }

    #[test]
    fn debug_does_not_reveal_the_code() {
        let code = generate();
        assert!(!format!("{code:?}").contains(code.canonical()));
    }
}
