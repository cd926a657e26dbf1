//! The `ajax-sim` binary: it prints the one line tests parse, with the real port, and serves.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Ends the child this test started, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_its_bound_address_and_serves_there() {
    let child = Command::new(env!("CARGO_BIN_EXE_ajax-sim"))
        .args(["--listen", "127.0.0.1:0", "--api-key", "bin-key", "--rate", "100/60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ajax-sim");
    let mut child = Running(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let base = line
        .trim()
        .strip_prefix("ajax-sim listening on ")
        .expect("the listening line")
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    assert!(!base.ends_with(":0"), "the real port: {line}");

    let http = reqwest::Client::new();
    let stats: serde_json::Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["rate_limit"], 100);
    let refused = http
        .get(format!("{base}/api/user/0000A001/hubs"))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
}

#[test]
fn the_binary_refuses_a_malformed_rate() {
    let output = Command::new(env!("CARGO_BIN_EXE_ajax-sim"))
        .args(["--api-key", "k", "--rate", "lots"])
        .output()
        .expect("run ajax-sim");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}
