//! Test harness for end-to-end tests: real processes (ajax-sim, asf-proxy) on free ports, the local
//! Redis under a per-test key prefix, a stand-in JWKS endpoint, and tokens minted with a test key
//! the way the control plane mints them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asf_core::claims::{AccessClaims, Role};
use asf_core::jwk::{Jwk, JwkSet};
use asf_core::keyspace::Keyspace;
use asf_core::secrets::SecretsKey;
use asf_core::session::AjaxSession;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use sha2::Digest;

pub const API_KEY: &str = "test-company-key-5f1c";
/// Every gated route class.
pub const PREMIUM_CLASSES: [&str; 5] = ["hub_read", "read", "command", "panic", "settings"];
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A budget so large it never throttles: for tests of everything but the throttle (a test of the
/// throttle passes its own values, which win).
pub const GENEROUS_BUDGET: &[(&str, &str)] = &[
    ("ASF_GLOBAL_RATE", "600000/60s"),
    ("ASF_TENANT_RATE_PER_MINUTE", "600000"),
    ("ASF_TENANT_BURST", "1000"),
    ("ASF_TENANT_MAX_QUEUED", "1000"),
    // Tests run many processes on two cores: a Redis call may wait for a CPU longer than the
    // production bound, which would send the instance to its fallback in tests about other things.
    ("ASF_REDIS_TIMEOUT_MS", "500"),
];

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Path of a workspace binary (built next to this test's own binaries).
pub fn binary(name: &str) -> PathBuf {
    let proxy = PathBuf::from(env!("CARGO_BIN_EXE_asf-proxy"));
    proxy.with_file_name(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Waits until something accepts TCP connections on `addr`.
pub async fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listening on {addr}");
}

/// A running ajax-sim.
pub struct Sim {
    pub url: String,
    _proc: Proc,
}

impl Sim {
    pub async fn start(extra: &[&str]) -> Sim {
        let mut child = Command::new(binary("ajax-sim"))
            .args(["--listen", "127.0.0.1:0", "--api-key", API_KEY])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ajax-sim (build the workspace first)");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read");
            line
        })
        .await
        .expect("join");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("url")
            .trim_end_matches('/')
            .to_owned();
        assert!(url.starts_with("http://"), "unexpected ajax-sim banner: {line}");
        Sim {
            url,
            _proc: Proc(child),
        }
    }

    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.url))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    pub async fn reset(&self) {
        reqwest::Client::new()
            .post(format!("{}/_sim/reset", self.url))
            .send()
            .await
            .expect("reset");
    }

    /// Logs in to the sim directly, as the control plane does.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/login", self.url))
            .header("x-api-key", API_KEY)
            .json(&serde_json::json!({"login": email, "passwordHash": sha256_hex(password)}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200, "sim login");
        response.json().await.expect("json")
    }
}

/// A stand-in for the control plane's JWKS endpoint, serving one or more Ed25519 keys.
pub struct Issuer {
    pub kid: String,
    signing: ed25519_dalek::SigningKey,
}

impl Issuer {
    pub fn new(kid: &str) -> Issuer {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
        Issuer {
            kid: kid.to_owned(),
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    pub fn jwk(&self) -> Jwk {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes());
        Jwk::ed25519(self.kid.clone(), x)
    }

    pub fn claims(&self, sub: &str, uid: &str) -> AccessClaims {
        let now = now();
        AccessClaims {
            sub: sub.into(),
            uid: uid.into(),
            tid: format!("tenant-{sub}"),
            role: Role::User,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: now + 900,
            iss: "ajaxsecurflow".into(),
            aud: "ajax-api".into(),
            sid: None,
        }
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let der = self.signing.to_pkcs8_der().expect("der");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).expect("sign")
    }
}

/// Serves `{"keys": [...]}` at `/.well-known/jwks.json` on `port` until dropped.
pub struct JwksServer {
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(port: u16, keys: Vec<Jwk>) -> JwksServer {
        let set = JwkSet { keys };
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let set = set.clone();
                async move { axum::Json(set) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind jwks");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer { task }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running asf-proxy and what it was started with.
pub struct Proxy {
    pub url: String,
    pub metrics_url: String,
    pub keys: Keyspace,
    pub secrets: SecretsKey,
    pub redis_url: String,
    _proc: Proc,
}

pub struct ProxyOptions<'a> {
    pub ajax_url: &'a str,
    pub jwks_port: u16,
    pub extra_env: Vec<(&'a str, String)>,
}

/// What the proxy and the control plane of one test share: a Redis key prefix and a secrets key.
#[derive(Clone)]
pub struct Shared {
    pub prefix: String,
    pub secrets_b64: String,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
            secrets_b64: SecretsKey::generate_base64(),
        }
    }
}

/// Creates an empty database for one test and returns its URL.
pub fn fresh_database() -> String {
    let name = format!("asf_test_{}", uuid::Uuid::new_v4().simple());
    let status = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            &format!("create database {name}"),
        ])
        .status()
        .expect("psql");
    assert!(status.success(), "creating database {name}");
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// A running asf-control.
pub struct ControlPlane {
    pub url: String,
    pub database_url: String,
    _proc: Proc,
}

impl ControlPlane {
    pub async fn start(ajax_url: &str, shared: &Shared, port: u16) -> ControlPlane {
        Self::start_with(ajax_url, shared, port, &[]).await
    }

    /// Starts asf-control on a fresh database of the shared PostgreSQL, or on `DATABASE_URL` when
    /// `env` names one.
    pub async fn start_with(ajax_url: &str, shared: &Shared, port: u16, env: &[(&str, &str)]) -> ControlPlane {
        let database_url = env
            .iter()
            .find(|(name, _)| *name == "DATABASE_URL")
            .map_or_else(fresh_database, |(_, url)| (*url).to_owned());
        let child = Command::new(binary("asf-control"))
            .envs(GENEROUS_BUDGET.iter().copied())
            // Every tenant may call everything, unless a test of plans says otherwise.
            .env("ASF_BASELINE_PLAN", "premium")
            .args([
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/control-plane.yaml"),
                "serve",
            ])
            .env("ASF_CONTROL_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &database_url)
            .env("REDIS_URL", REDIS_URL)
            .env("ASF_REDIS_PREFIX", &shared.prefix)
            .env("ASF_SECRETS_KEY", &shared.secrets_b64)
            .env("AJAX_API_URL", ajax_url)
            .env("AJAX_API_KEY", API_KEY)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn asf-control");
        let proc = Proc(child);
        wait_for_port(format!("127.0.0.1:{port}").parse().expect("addr")).await;
        ControlPlane {
            url: format!("http://127.0.0.1:{port}"),
            database_url,
            _proc: proc,
        }
    }

    /// Runs one SQL statement against this control plane's database and returns psql's output.
    pub fn sql(&self, statement: &str) -> String {
        let out = Command::new("psql")
            .args([self.database_url.as_str(), "-tAc", statement])
            .output()
            .expect("psql");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Proxy {
    pub async fn start(options: ProxyOptions<'_>) -> Proxy {
        Self::start_shared(options, Shared::new()).await
    }

    pub async fn start_shared(options: ProxyOptions<'_>, shared: Shared) -> Proxy {
        let port = free_port();
        let metrics_port = free_port();
        let Shared { prefix, secrets_b64 } = shared;
        let mut command = Command::new(binary("asf-proxy"));
        command
            .args(["-c", concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/proxy.yaml")])
            .env("ASF_PROXY_LISTEN", format!("127.0.0.1:{port}"))
            .env("ASF_PROXY_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
            .env("AJAX_API_URL", options.ajax_url)
            .env("AJAX_API_KEY", API_KEY)
            .env("REDIS_URL", REDIS_URL)
            .env("ASF_REDIS_PREFIX", &prefix)
            .env("ASF_SECRETS_KEY", &secrets_b64)
            .env(
                "ASF_CONTROL_PLANE_URL",
                format!("http://127.0.0.1:{}", options.jwks_port),
            )
            .envs(GENEROUS_BUDGET.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in &options.extra_env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn asf-proxy");
        let proc = Proc(child);
        wait_for_port(format!("127.0.0.1:{port}").parse().expect("addr")).await;
        let redis_url = options
            .extra_env
            .iter()
            .find(|(name, _)| *name == "REDIS_URL")
            .map_or(REDIS_URL.to_owned(), |(_, v)| v.clone());
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            keys: Keyspace::new(prefix),
            secrets: SecretsKey::from_base64(&secrets_b64).expect("key"),
            redis_url,
            _proc: proc,
        }
    }

    /// Publishes an entitlement for `tenant` as the control plane does.
    pub async fn grant_plan(&self, tenant: &str, plan: &str, classes: &[&str]) {
        let entitlement = asf_core::entitlement::Entitlement {
            plan: plan.into(),
            per_minute: 1_000_000,
            classes: classes.iter().map(|c| (*c).to_owned()).collect(),
            upgrades: vec![],
        };
        let key = self.keys.entitlement(tenant);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        for (field, value) in entitlement.fields() {
            pipe.cmd("HSET").arg(&key).arg(field).arg(value).ignore();
        }
        let mut redis = redis_connection_to(&self.redis_url).await;
        pipe.query_async::<()>(&mut redis).await.expect("entitlement");
    }

    /// Stores a user's Ajax session in Redis exactly as the control plane does, and gives the
    /// user's tenant (as [`Issuer::claims`] names it) every class, so tests of other things are
    /// not refused by a plan.
    pub async fn store_session(&self, sub: &str, login: &Value) {
        self.grant_plan(&format!("tenant-{sub}"), "premium", &PREMIUM_CLASSES)
            .await;
        let session = AjaxSession {
            session_token: login["sessionToken"].as_str().expect("token").to_owned(),
            refresh_token: login["refreshToken"].as_str().expect("refresh").to_owned(),
            ajax_user_id: login["userId"].as_str().expect("uid").to_owned(),
            session_expires_at: now() + 900,
            refresh_expires_at: now() + 7 * 86400,
        };
        let key = self.keys.ajax_session(sub);
        let sealed = session.seal(&self.secrets, &key);
        let mut redis = redis_connection_to(&self.redis_url).await;
        redis::cmd("SET")
            .arg(&key)
            .arg(sealed)
            .arg("EX")
            .arg(3600)
            .query_async::<()>(&mut redis)
            .await
            .expect("set");
    }
}

pub async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis_connection_to(REDIS_URL).await
}

pub async fn redis_connection_to(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis must be running (see .ci/run)")
}

/// A client that never follows redirects and times out rather than hanging a test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Sends one HTTP/1.1 request exactly as written (no client-side path normalisation) and returns
/// the status code and body.
pub async fn raw_request(base_url: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The whole system of one test: ajax-sim, asf-control on a fresh database, and asf-proxy.
pub struct System {
    pub sim: Sim,
    pub control: ControlPlane,
    pub proxy: Proxy,
    pub shared: Shared,
}

impl System {
    /// Starts everything; `control_env` adds environment variables for asf-control.
    pub async fn start(control_env: &[(&str, &str)]) -> System {
        Self::start_with(&[], control_env, &[]).await
    }

    /// Starts everything with extra ajax-sim arguments and extra environment for asf-control and
    /// asf-proxy (`both_env` goes to both).
    pub async fn start_with(sim_args: &[&str], control_env: &[(&str, &str)], both_env: &[(&str, &str)]) -> System {
        let sim = Sim::start(sim_args).await;
        let shared = Shared::new();
        let control_port = free_port();
        let control_env: Vec<(&str, &str)> = both_env.iter().chain(control_env).copied().collect();
        let control = ControlPlane::start_with(&sim.url, &shared, control_port, &control_env).await;
        let extra_env = both_env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let options = ProxyOptions {
            ajax_url: &sim.url,
            jwks_port: control_port,
            extra_env,
        };
        let proxy = Proxy::start_shared(options, shared.clone()).await;
        System {
            sim,
            control,
            proxy,
            shared,
        }
    }

    /// An asf-control command line against this system's database, Redis prefix and simulator.
    pub fn control(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("asf-control"));
        command
            .envs(GENEROUS_BUDGET.iter().copied())
            .env("ASF_BASELINE_PLAN", "premium")
            .args([
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/control-plane.yaml"),
            ])
            .args(args)
            .env("DATABASE_URL", &self.control.database_url)
            .env("REDIS_URL", REDIS_URL)
            .env("ASF_REDIS_PREFIX", &self.shared.prefix)
            .env("ASF_SECRETS_KEY", &self.shared.secrets_b64)
            .env("AJAX_API_URL", &self.sim.url)
            .env("AJAX_API_KEY", API_KEY);
        command
    }

    /// Starts `asf-control worker` (session upkeep, audit mover) with extra environment.
    pub fn start_worker(&self, env: &[(&str, &str)]) -> Proc {
        let child = self
            .control(&["worker"])
            .env("ASF_WORKER_NAME", "test-worker")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn asf-control worker");
        Proc(child)
    }

    /// Runs an asf-control command line to completion.
    pub fn control_command(&self, args: &[&str]) -> std::process::Output {
        self.control(args).output().expect("asf-control")
    }
}

/// Logs in through the proxy.
pub async fn login(system: &System, email: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/api/login", system.proxy.url))
        .json(&serde_json::json!({"login": email, "passwordHash": sha256_hex(password)}))
        .send()
        .await
        .expect("login")
}

/// Logs in through the proxy and returns our access token and the Ajax user id.
pub async fn logged_in(system: &System, email: &str) -> (String, String) {
    let response = login(system, email, "demo").await;
    assert_eq!(response.status(), 200, "login of {email}");
    let pair: Value = response.json().await.expect("json");
    (
        pair["sessionToken"].as_str().expect("token").to_owned(),
        pair["userId"].as_str().expect("uid").to_owned(),
    )
}

/// A Redis server of one test's own, on a free port, that the test may stop and start again.
pub struct OwnRedis {
    pub port: u16,
    proc: Option<Proc>,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            proc: None,
        };
        redis.resume().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port.
    pub async fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.proc = Some(Proc(child));
        wait_for_port(format!("127.0.0.1:{}", self.port).parse().expect("addr")).await;
    }

    /// Kills the server, as a crash would.
    pub fn stop(&mut self) {
        self.proc = None;
    }
}

/// A PostgreSQL server of one test's own (its own cluster, on a free port), that the test may
/// stop and start again.
pub struct OwnPostgres {
    pub port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

fn postgres_bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL is installed");
    let mut dirs: Vec<PathBuf> = versions.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    dirs.last().expect("a PostgreSQL version").join("bin").join(name)
}

/// A command run as the `postgres` user (PostgreSQL refuses to run as root).
fn as_postgres(program: PathBuf) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"])
        .arg(program);
    command
}

impl OwnPostgres {
    pub async fn start() -> OwnPostgres {
        let dir = std::env::temp_dir().join(format!("asf-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("data dir");
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(chown.success());
        let init = as_postgres(postgres_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb");
        assert!(init.success(), "initdb");
        let mut pg = OwnPostgres {
            port: free_port(),
            dir,
            proc: None,
        };
        pg.resume().await;
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on the same port.
    pub async fn resume(&mut self) {
        let child = as_postgres(postgres_bin("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .arg("-k")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        self.proc = Some(Proc(child));
        wait_for_port(format!("127.0.0.1:{}", self.port).parse().expect("addr")).await;
    }

    /// Stops the server (fast shutdown: open connections are cut) and waits until it is down.
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            let _ = Command::new("kill").arg("-INT").arg(proc.0.id().to_string()).status();
            let _ = proc.0.wait();
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET url` with our access token in `X-Session-Token`, as Ajax clients send it.
pub async fn session_get(url: impl reqwest::IntoUrl, token: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("x-session-token", token)
        .send()
        .await
        .expect("request")
}

/// `GET url` with a bearer token, read as JSON.
pub async fn bearer_json(url: impl reqwest::IntoUrl, token: &str) -> Value {
    client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// The proxy's Prometheus text.
pub async fn metrics_text(url: &str) -> String {
    reqwest::get(url).await.expect("metrics").text().await.expect("text")
}

/// The proxy's Prometheus text once it contains every one of `needles` (metrics of a request are
/// counted in its logging phase, just after the client has its answer), or after 5 s.
pub async fn metrics_containing(url: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(url).await;
        if needles.iter().all(|n| text.contains(n)) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An administrator's access token: demo2 logs in, is granted the role from the command line, and
/// logs in again.
pub async fn admin_token(system: &System) -> String {
    let _ = logged_in(system, "demo2@example.com").await;
    let granted = system.control_command(&["admin", "grant", "demo2@example.com"]);
    assert!(granted.status.success(), "{}", String::from_utf8_lossy(&granted.stderr));
    logged_in(system, "demo2@example.com").await.0
}

/// Disarms the demo user's first hub through the proxy (a `command` call).
pub async fn disarm(system: &System, token: &str, uid: &str) -> reqwest::Response {
    client()
        .put(format!(
            "{}/api/user/{uid}/hubs/0001A001/commands/arming",
            system.proxy.url
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({"command": "DISARM", "ignoreProblems": true}))
        .send()
        .await
        .expect("disarm")
}
