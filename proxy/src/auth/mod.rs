//! Authentication of the project's own access tokens: where the token is found in a request
//! (`credentials`), where verification keys come from (`keys`), and verification with a cache of
//! tokens already checked (`verifier`).

pub mod credentials;
pub mod keys;
pub mod verifier;

pub use credentials::{CredentialError, find_token};
pub use keys::{KeyLookup, KeySource};
pub use verifier::{AuthFailure, Verifier};
