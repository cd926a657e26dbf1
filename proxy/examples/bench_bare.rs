//! Benchmark reference: the least a Pingora proxy can do, built with the same Pingora, the same
//! listener settings and the same thread count as asf-proxy, so `bench/run.py` can show in the same
//! run how much of the distance to nginx is Pingora's own and how much is the gateway's work.
//!
//! `BARE_MODE` picks what every request gets:
//! - `proxy`: forwarded to `BARE_UPSTREAM` (host:port) over a kept-alive connection, untouched;
//! - `redis`: the same, after one `EVALSHA` of a one-line script on `REDIS_URL` (the round-trip cost
//!   alone, without the budget's work);
//! - `refuse`: a fixed 401 with keep-alive, written from the request filter;
//! - `hold`: held in the request filter until its slot, then a fixed 200: the n-th request's slot is
//!   `n × BARE_SLOT_US` after the first one arrived, as a budget would hand them out (the memory of
//!   waiting requests with nothing of the gateway's in them).
//!
//! Listens on `BARE_LISTEN` with `BARE_THREADS` threads (2, as asf-proxy), on the same allocator as
//! asf-proxy.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use asf_proxy::redis_link::RedisLink;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::listeners::ListenerConfig;
use pingora::prelude::*;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Proxy,
    Redis,
    Refuse,
    Hold,
}

struct Bare {
    mode: Mode,
    upstream: String,
    slot: Duration,
    first_arrival: OnceLock<Instant>,
    arrivals: AtomicU64,
    redis: RedisLink,
    script: redis::Script,
}

const REFUSAL: &[u8] = br#"{"error":"token_invalid","message":"Session token is invalid"}"#;

async fn answer(session: &mut Session, status: u16, body: &'static [u8]) -> Result<bool> {
    let mut header = pingora::http::ResponseHeader::build(status, Some(2))?;
    header.insert_header("content-type", "application/json")?;
    header.insert_header("content-length", body.len().to_string())?;
    session.write_response_header(Box::new(header), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body)), true)
        .await?;
    Ok(true)
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        match self.mode {
            Mode::Proxy => Ok(false),
            Mode::Redis => {
                let mut redis = self
                    .redis
                    .connection()
                    .await
                    .map_err(|e| Error::because(ErrorType::InternalError, "redis", e))?;
                let granted: i64 = self
                    .script
                    .key("bench-bare")
                    .invoke_async(&mut redis)
                    .await
                    .map_err(|e| Error::because(ErrorType::InternalError, "redis", e))?;
                if granted != 1 {
                    return answer(session, 503, b"{}").await;
                }
                Ok(false)
            }
            Mode::Refuse => answer(session, 401, REFUSAL).await,
            Mode::Hold => {
                let first = *self.first_arrival.get_or_init(Instant::now);
                let n = u32::try_from(self.arrivals.fetch_add(1, Ordering::Relaxed)).unwrap_or(u32::MAX);
                tokio::time::sleep_until((first + self.slot * n).into()).await;
                answer(session, 200, b"{}").await
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream.as_str(), false, String::new())))
    }
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    let mode = match var("BARE_MODE", "proxy").as_str() {
        "proxy" => Mode::Proxy,
        "redis" => Mode::Redis,
        "refuse" => Mode::Refuse,
        "hold" => Mode::Hold,
        other => panic!("BARE_MODE {other:?}: one of proxy, redis, refuse, hold"),
    };
    let redis =
        RedisLink::new(&var("REDIS_URL", "redis://127.0.0.1:6379"), Duration::from_millis(50)).expect("REDIS_URL");
    let bare = Bare {
        mode,
        upstream: var("BARE_UPSTREAM", "127.0.0.1:8081"),
        slot: Duration::from_micros(var("BARE_SLOT_US", "2000").parse().expect("BARE_SLOT_US")),
        first_arrival: OnceLock::new(),
        arrivals: AtomicU64::new(0),
        redis,
        script: redis::Script::new("return 1"),
    };
    let conf = ServerConf {
        threads: var("BARE_THREADS", "2").parse().expect("BARE_THREADS"),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(&server.configuration, bare, "bare");
    proxy.add_listener(
        ListenerConfig::tcp(var("BARE_LISTEN", "127.0.0.1:8090")).l4_buffer(L4BufferSettings::new(4096, 1460)),
    );
    server.add_service(proxy);
    server.run_forever();
}
