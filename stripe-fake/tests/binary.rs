//! The `stripe-fake` binary: prints its one "listening" line and serves.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_prints_its_address_and_serves_the_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stripe-fake"))
        .args(["--listen", "127.0.0.1:0", "--price", "price_x=x:100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("stripe-fake listening on ")
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let form = "mode=subscription&line_items[0][price]=price_x";
    let response = http
        .post(format!("{base}/v1/checkout/sessions"))
        .bearer_auth("sk_test_1")
        .body(form);
    let session: serde_json::Value = response.send().await.unwrap().json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(session["amount_total"], 100);
    assert_eq!(
        session["url"],
        format!("{base}/checkout/{}", session["id"].as_str().unwrap())
    );
}
