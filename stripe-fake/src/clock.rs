//! The wall clock, read in one place: handlers read it once per request and pass the time down,
//! so the billing rules are plain functions of `now`.

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
