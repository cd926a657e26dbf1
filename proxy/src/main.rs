//! `asf-proxy -c conf/proxy.yaml [-t] [-d] [-u]`: loads Pingora's server conf and the `app:` section
//! from one file, applies environment overrides, checks everything (`-t` stops there), then runs the
//! gateway, its metrics listener and the JWKS refresher.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use asf_core::audit::AuditSink;
use asf_core::catalogue::Catalogue;
use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};

use asf_core::ajax_client::AjaxClient;
use asf_core::keyspace::Keyspace;
use asf_core::throttle::Heartbeat;
use asf_proxy::admission::Admission;
use asf_proxy::auth::keys::JwksCache;
use asf_proxy::auth::{KeySource, Verifier};
use asf_proxy::config::{AuthMode, ProxyConfig, ProxyFileConfig};
use asf_proxy::heartbeat::{BudgetHeartbeat, HEARTBEAT_INTERVAL};
use asf_proxy::ip_guard::IpGuard;
use asf_proxy::metrics::{Metrics, MetricsApp};
use asf_proxy::pipeline::Gateway;
use asf_proxy::redis_link::RedisLink;
use asf_proxy::session_cache::SessionCache;
use asf_proxy::throttle::Throttle;
use asf_proxy::upstream::Upstream;
use asf_proxy::usage::UsageTally;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,pingora=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut opt = Opt::parse_args();
    let (server_conf, config) = match load(&opt) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("asf-proxy: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if opt.test {
        println!("asf-proxy: configuration OK");
        return ExitCode::SUCCESS;
    }
    opt.conf = None;
    match run(opt, server_conf, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asf-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// jemalloc instead of glibc's allocator: glibc's malloc was a fifth of the proxy's CPU under load,
/// much of it lock contention between the worker threads (measured in bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Reads and checks the configuration file and the environment.
fn load(opt: &Opt) -> anyhow::Result<(ServerConf, ProxyConfig)> {
    let (server_conf, file) = match &opt.conf {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            let server_conf = ServerConf::from_yaml(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            let file = ProxyFileConfig::from_yaml_str(&text).map_err(|e| anyhow::anyhow!("{path}: app: {e}"))?;
            (server_conf, file)
        }
        None => (
            ServerConf::new().context("default server conf")?,
            ProxyFileConfig::default(),
        ),
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = file.with_env(&env).check()?;
    Ok((server_conf, config))
}

fn run(opt: Opt, server_conf: ServerConf, config: ProxyConfig) -> anyhow::Result<()> {
    let config = Arc::new(config);
    tracing::info!(config = ?config, "starting asf-proxy");
    let metrics = Metrics::new().context("metrics")?;
    let keys = match &config.auth.mode {
        AuthMode::Hs256 { secret } => KeySource::Hs256(DecodingKey::from_secret(secret).context("HS256 secret")?),
        AuthMode::EdDsa { jwks_url } => KeySource::Jwks(Box::new(JwksCache::new(
            jwks_url.clone(),
            config.auth.jwks_min_refetch,
            metrics.clone(),
        ))),
    };
    let verifier = Arc::new(Verifier::new(keys, &config.auth));
    let keyspace = Keyspace::new(config.redis_prefix.clone());
    let keyspace_for_audit = keyspace.audit_stream();
    let redis = Arc::new(RedisLink::new(&config.redis_url, config.redis_timeout).context("REDIS_URL")?);
    let throttle = Arc::new(
        Throttle::new(
            keyspace.clone(),
            config.budget,
            config.tenant,
            config.instance_count,
            metrics.clone(),
        )
        .context("global budget")?,
    );
    let usage = Arc::new(UsageTally::new(keyspace.clone()));
    let admission = Admission {
        redis: redis.clone(),
        keys: keyspace.clone(),
        secrets: config.secrets_key.clone(),
        ajax: AjaxClient::new(&config.ajax.url(), &config.ajax_api_key, config.upstream_timeout)?,
        throttle: throttle.clone(),
        sessions: SessionCache::default(),
        entitlements: Default::default(),
        usage: usage.clone(),
        metrics: metrics.clone(),
    };
    let heartbeat = Arc::new(BudgetHeartbeat::new(
        Heartbeat::new(keyspace, HEARTBEAT_INTERVAL),
        config.instance_id.clone(),
        redis.clone(),
        throttle,
        usage,
    ));
    let audit = AuditSink::new(
        redis::Client::open(config.redis_url.as_str()).context("REDIS_URL")?,
        keyspace_for_audit,
        config.audit_buffer_records,
    );
    let gateway = Gateway {
        catalogue: Catalogue::builtin(),
        verifier: verifier.clone(),
        admission,
        ip_guard: IpGuard::new(config.ip_guard.clone()),
        heartbeat,
        ajax: Upstream::new(config.ajax.clone(), config.upstream_timeout),
        control_plane: Upstream::new(config.control_plane.clone(), config.upstream_timeout),
        metrics: metrics.clone(),
        audit: audit.clone(),
        config: config.clone(),
    };

    let mut server = Server::new_with_opt_and_conf(opt, server_conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "asf-proxy");
    // 4 KiB read buffers instead of Pingora's 64 KiB: Ajax requests are small, and with 10,000
    // connections waiting for budget slots the buffers were most of the proxy's memory.
    proxy.add_listener(ListenerConfig::tcp(&config.listen).l4_buffer(L4BufferSettings::new(4096, 1460)));
    let mut metrics_service =
        pingora::services::listening::Service::new("metrics".into(), MetricsApp(metrics, audit.clone()));
    metrics_service.add_tcp(&config.metrics_listen);
    let refresher = background_service(
        "jwks",
        JwksRefresher {
            verifier,
            interval: config.auth.jwks_refresh,
        },
    );
    server.add_service(proxy);
    server.add_service(metrics_service);
    server.add_service(refresher);
    server.add_service(background_service("audit-flush", AuditFlusher(audit)));
    println!(
        "asf-proxy listening on http://{} (metrics on http://{}/metrics)",
        config.listen, config.metrics_listen
    );
    server.run_forever();
}

/// At shutdown, keeps shipping the audit records of the requests still finishing, from a runtime
/// of its own, until the process ends.
struct AuditFlusher(AuditSink);

#[async_trait]
impl BackgroundService for AuditFlusher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let _ = shutdown.changed().await;
        loop {
            self.0.ship_remaining().await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Keeps the JWKS cache fresh in the background (EdDSA mode only).
struct JwksRefresher {
    verifier: Arc<Verifier>,
    interval: std::time::Duration,
}

#[async_trait]
impl BackgroundService for JwksRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let KeySource::Jwks(cache) = self.verifier.keys() else {
            return;
        };
        tokio::select! {
            () = cache.run_refresh_loop(self.interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
