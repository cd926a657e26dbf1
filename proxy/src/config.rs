//! The proxy's configuration: the `app:` section of the YAML file users write (`ProxyFileConfig`),
//! environment overrides, and the checked `ProxyConfig` the code runs on. Precedence: environment >
//! file > defaults. `Debug` never shows a secret.

use std::collections::HashMap;
use std::time::Duration;

use asf_core::claims::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use asf_core::client_ip::TrustedProxies;
use asf_core::secrets::SecretsKey;
use asf_core::throttle::BudgetConfig;
use serde::Deserialize;

use crate::ip_guard::IpGuardConfig;
use crate::throttle::TenantDefaults;
use crate::upstream::Origin;

/// The `app:` section as written in `conf/proxy.yaml`. Every field is optional. No `Debug`: it
/// holds secrets as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFileConfig {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub ajax_api_url: Option<String>,
    pub ajax_api_key: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: Option<String>,
    pub redis_timeout_ms: Option<u64>,
    pub control_plane_url: Option<String>,
    pub secrets_key: Option<String>,
    pub instance_id: Option<String>,
    /// Path prefix in front of `/api` (for a base URL like `https://gw.example/ajax`).
    pub base_path: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub upstream_timeout_ms: Option<u64>,
    /// Audit records held in memory while Redis is away; beyond this they are dropped (counted).
    pub audit_buffer_records: Option<usize>,
    /// Where a 402 tells users to upgrade their plan.
    pub upgrade_url: Option<String>,
    #[serde(default)]
    pub auth: AuthFileConfig,
    #[serde(default)]
    pub budget: BudgetFileConfig,
    #[serde(default)]
    pub shield: ShieldFileConfig,
}

/// The `app.shield:` section: the per-client-IP guard and header limits.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShieldFileConfig {
    /// Reverse proxies in front of this one whose `X-Forwarded-For` is believed (CIDRs).
    pub trusted_proxies: Option<Vec<String>>,
    pub allow_cidrs: Option<Vec<String>>,
    pub deny_cidrs: Option<Vec<String>>,
    pub per_ip_per_second: Option<u32>,
    pub auth_failures_per_minute: Option<u32>,
    pub max_headers: Option<usize>,
    pub max_header_bytes: Option<usize>,
}

/// The `app.budget:` section: the global upstream budget (every process sharing it must agree)
/// and the per-tenant defaults used until plans exist.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFileConfig {
    /// `ASF_GLOBAL_RATE`, e.g. `100/60s`.
    pub global_rate: Option<String>,
    pub global_burst: Option<String>,
    /// `ASF_QUEUE_MAX_WAIT`, e.g. `20s`.
    pub queue_max_wait: Option<String>,
    pub command_share_pct: Option<String>,
    pub account_share_pct: Option<String>,
    /// Requests per minute one tenant may make.
    pub tenant_rate_per_minute: Option<u32>,
    /// Requests one tenant may make at once before its rate applies.
    pub tenant_burst: Option<u32>,
    /// Queued slots one tenant may hold.
    pub tenant_max_queued: Option<u32>,
    /// Instances to divide the budget by while Redis is down, until heartbeats have been seen.
    pub instance_count: Option<u32>,
}

/// The `app.auth:` section. No `Debug`: it holds the HS256 secret as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFileConfig {
    /// `eddsa` (keys from the control plane's JWKS, the default) or `hs256` (shared secret).
    pub mode: Option<String>,
    pub jwks_url: Option<String>,
    pub hs256_secret: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_secs: Option<u64>,
    pub jwks_refresh_secs: Option<u64>,
    pub jwks_min_refetch_secs: Option<u64>,
}

/// The whole YAML file: Pingora's own keys are read by Pingora; this reads only `app:`.
#[derive(Default, Deserialize)]
struct FileWithApp {
    #[serde(default)]
    app: ProxyFileConfig,
}

/// How access tokens are verified.
#[derive(Clone)]
pub enum AuthMode {
    /// Ed25519 keys published by the control plane at this URL.
    EdDsa { jwks_url: String },
    /// One shared HMAC secret (small deployments).
    Hs256 { secret: Vec<u8> },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EdDsa { jwks_url } => f.debug_struct("EdDsa").field("jwks_url", jwks_url).finish(),
            Self::Hs256 { .. } => f.write_str("Hs256(<redacted>)"),
        }
    }
}

/// Checked token-verification settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub issuer: String,
    pub audience: String,
    pub leeway: Duration,
    pub jwks_refresh: Duration,
    pub jwks_min_refetch: Duration,
}

/// The checked configuration the proxy runs on.
#[derive(Clone)]
pub struct ProxyConfig {
    pub listen: String,
    pub metrics_listen: String,
    pub ajax: Origin,
    pub ajax_api_key: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub redis_timeout: Duration,
    pub control_plane: Origin,
    pub secrets_key: SecretsKey,
    pub instance_id: String,
    pub base_path: String,
    pub max_body_bytes: usize,
    pub upstream_timeout: Duration,
    pub auth: AuthConfig,
    pub budget: BudgetConfig,
    pub tenant: TenantDefaults,
    pub instance_count: u32,
    pub ip_guard: IpGuardConfig,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub audit_buffer_records: usize,
    pub upgrade_url: String,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("ajax", &self.ajax)
            .field("ajax_api_key", &"<redacted>")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("control_plane", &self.control_plane)
            .field("instance_id", &self.instance_id)
            .field("base_path", &self.base_path)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot run, with the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid YAML in {path}: {reason}")]
    Yaml { path: String, reason: String },
    #[error("{setting} is required")]
    Missing { setting: &'static str },
    #[error("{setting} is invalid: {reason}")]
    Invalid { setting: &'static str, reason: String },
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<redacted>{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl ProxyFileConfig {
    /// Reads the `app:` section of a YAML file.
    pub fn from_yaml_file(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_yaml_str(&text).map_err(|reason| ConfigError::Yaml {
            path: path.to_owned(),
            reason,
        })
    }

    /// Reads the `app:` section of a YAML document.
    pub fn from_yaml_str(text: &str) -> Result<Self, String> {
        serde_yaml::from_str::<FileWithApp>(text)
            .map(|f| f.app)
            .map_err(|e| e.to_string())
    }

    /// Applies environment overrides (`ASF_PROXY_LISTEN`, `AJAX_API_KEY`, ...) from `env`.
    pub fn with_env(mut self, env: &HashMap<String, String>) -> Self {
        let take = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let overrides: [(&str, &mut Option<String>); 12] = [
            ("ASF_PROXY_LISTEN", &mut self.listen),
            ("ASF_PROXY_METRICS_LISTEN", &mut self.metrics_listen),
            ("AJAX_API_URL", &mut self.ajax_api_url),
            ("AJAX_API_KEY", &mut self.ajax_api_key),
            ("REDIS_URL", &mut self.redis_url),
            ("ASF_REDIS_PREFIX", &mut self.redis_prefix),
            ("ASF_CONTROL_PLANE_URL", &mut self.control_plane_url),
            ("ASF_SECRETS_KEY", &mut self.secrets_key),
            ("ASF_INSTANCE_ID", &mut self.instance_id),
            ("ASF_BASE_PATH", &mut self.base_path),
            ("ASF_JWT_MODE", &mut self.auth.mode),
            ("ASF_JWT_HS256_SECRET", &mut self.auth.hs256_secret),
        ];
        for (name, slot) in overrides {
            if let Some(value) = take(name) {
                *slot = Some(value);
            }
        }
        if let Some(value) = take("ASF_JWKS_URL") {
            self.auth.jwks_url = Some(value);
        }
        if let Some(value) = take("ASF_REDIS_TIMEOUT_MS").and_then(|v| v.parse().ok()) {
            self.redis_timeout_ms = Some(value);
        }
        let list = |v: String| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        if let Some(value) = take("ASF_TRUSTED_PROXIES") {
            self.shield.trusted_proxies = Some(list(value));
        }
        if let Some(value) = take("ASF_ALLOW_CIDRS") {
            self.shield.allow_cidrs = Some(list(value));
        }
        if let Some(value) = take("ASF_DENY_CIDRS") {
            self.shield.deny_cidrs = Some(list(value));
        }
        if let Some(value) = take("ASF_UPGRADE_URL") {
            self.upgrade_url = Some(value);
        }
        if let Some(value) = take("ASF_AUDIT_BUFFER_RECORDS").and_then(|v| v.parse().ok()) {
            self.audit_buffer_records = Some(value);
        }
        if let Some(value) = take("ASF_PER_IP_PER_SECOND").and_then(|v| v.parse().ok()) {
            self.shield.per_ip_per_second = Some(value);
        }
        if let Some(value) = take("ASF_AUTH_FAILURES_PER_MINUTE").and_then(|v| v.parse().ok()) {
            self.shield.auth_failures_per_minute = Some(value);
        }
        let budget = &mut self.budget;
        for (name, slot) in [
            ("ASF_GLOBAL_RATE", &mut budget.global_rate),
            ("ASF_GLOBAL_BURST", &mut budget.global_burst),
            ("ASF_QUEUE_MAX_WAIT", &mut budget.queue_max_wait),
            ("ASF_COMMAND_SHARE_PCT", &mut budget.command_share_pct),
            ("ASF_ACCOUNT_SHARE_PCT", &mut budget.account_share_pct),
        ] {
            if let Some(value) = take(name) {
                *slot = Some(value);
            }
        }
        for (name, slot) in [
            ("ASF_TENANT_RATE_PER_MINUTE", &mut budget.tenant_rate_per_minute),
            ("ASF_TENANT_BURST", &mut budget.tenant_burst),
            ("ASF_TENANT_MAX_QUEUED", &mut budget.tenant_max_queued),
            ("ASF_INSTANCE_COUNT", &mut budget.instance_count),
        ] {
            if let Some(value) = take(name).and_then(|v| v.parse().ok()) {
                *slot = Some(value);
            }
        }
        self
    }

    /// Checks every setting and fills defaults.
    pub fn check(self) -> Result<ProxyConfig, ConfigError> {
        let control_plane_url = self.control_plane_url.unwrap_or_else(|| "http://127.0.0.1:8000".into());
        let control_plane = Origin::parse(&control_plane_url).map_err(|reason| ConfigError::Invalid {
            setting: "ASF_CONTROL_PLANE_URL",
            reason,
        })?;
        let ajax =
            Origin::parse(self.ajax_api_url.as_deref().unwrap_or("https://api.ajax.systems")).map_err(|reason| {
                ConfigError::Invalid {
                    setting: "AJAX_API_URL",
                    reason,
                }
            })?;
        let ajax_api_key = self.ajax_api_key.ok_or(ConfigError::Missing {
            setting: "AJAX_API_KEY",
        })?;
        let secrets_key = SecretsKey::from_base64(self.secrets_key.as_deref().ok_or(ConfigError::Missing {
            setting: "ASF_SECRETS_KEY",
        })?)
        .map_err(|e| ConfigError::Invalid {
            setting: "ASF_SECRETS_KEY",
            reason: e.to_string(),
        })?;
        let base_path = normalise_base_path(self.base_path.as_deref().unwrap_or(""))?;
        let listen = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        check_socket_addr("ASF_PROXY_LISTEN", &listen)?;
        let metrics_listen = self.metrics_listen.unwrap_or_else(|| "127.0.0.1:9090".into());
        check_socket_addr("ASF_PROXY_METRICS_LISTEN", &metrics_listen)?;
        let auth = check_auth(self.auth, &control_plane_url)?;
        let cidrs = |setting: &'static str, items: &Option<Vec<String>>| {
            TrustedProxies::parse(items.as_deref().unwrap_or_default())
                .map_err(|reason| ConfigError::Invalid { setting, reason })
        };
        let ip_guard = IpGuardConfig {
            trusted_proxies: cidrs("ASF_TRUSTED_PROXIES", &self.shield.trusted_proxies)?,
            allow: cidrs("ASF_ALLOW_CIDRS", &self.shield.allow_cidrs)?,
            deny: cidrs("ASF_DENY_CIDRS", &self.shield.deny_cidrs)?,
            per_ip_per_second: self.shield.per_ip_per_second.unwrap_or(100),
            auth_failures_per_minute: self.shield.auth_failures_per_minute.unwrap_or(30),
        };
        let file_budget = &self.budget;
        let budget = BudgetConfig::from_env(|name| match name {
            "ASF_GLOBAL_RATE" => file_budget.global_rate.clone(),
            "ASF_GLOBAL_BURST" => file_budget.global_burst.clone(),
            "ASF_QUEUE_MAX_WAIT" => file_budget.queue_max_wait.clone(),
            "ASF_COMMAND_SHARE_PCT" => file_budget.command_share_pct.clone(),
            "ASF_ACCOUNT_SHARE_PCT" => file_budget.account_share_pct.clone(),
            _ => None,
        })
        .map_err(|reason| ConfigError::Invalid {
            setting: "app.budget",
            reason,
        })?;
        Ok(ProxyConfig {
            listen,
            metrics_listen,
            ajax,
            ajax_api_key,
            redis_url: self.redis_url.unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: self.redis_prefix.unwrap_or_else(|| "asf".into()),
            redis_timeout: Duration::from_millis(self.redis_timeout_ms.unwrap_or(50)),
            control_plane,
            secrets_key,
            instance_id: self
                .instance_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            base_path,
            max_body_bytes: self.max_body_bytes.unwrap_or(256 * 1024),
            upstream_timeout: Duration::from_millis(self.upstream_timeout_ms.unwrap_or(25_000)),
            auth,
            budget,
            tenant: TenantDefaults {
                per_minute: self.budget.tenant_rate_per_minute.unwrap_or(600),
                burst: self.budget.tenant_burst.unwrap_or(10),
                max_queued: self.budget.tenant_max_queued.unwrap_or(10).max(1),
            },
            instance_count: self.budget.instance_count.unwrap_or(1).max(1),
            ip_guard,
            max_headers: self.shield.max_headers.unwrap_or(64),
            max_header_bytes: self.shield.max_header_bytes.unwrap_or(16 * 1024),
            audit_buffer_records: self.audit_buffer_records.unwrap_or(100_000).max(1),
            upgrade_url: self.upgrade_url.unwrap_or_else(|| "/v1/billing".into()),
        })
    }
}

fn check_socket_addr(setting: &'static str, value: &str) -> Result<(), ConfigError> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|e| ConfigError::Invalid {
            setting,
            reason: format!("{value:?}: {e}"),
        })
}

fn normalise_base_path(path: &str) -> Result<String, ConfigError> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') || trimmed.contains("..") || trimmed.contains('?') {
        return Err(ConfigError::Invalid {
            setting: "ASF_BASE_PATH",
            reason: "must be an absolute path such as /ajax".into(),
        });
    }
    Ok(trimmed.to_owned())
}

fn check_auth(file: AuthFileConfig, control_plane_url: &str) -> Result<AuthConfig, ConfigError> {
    let mode = match file.mode.as_deref().unwrap_or("eddsa") {
        "eddsa" => AuthMode::EdDsa {
            jwks_url: file
                .jwks_url
                .unwrap_or_else(|| format!("{}/.well-known/jwks.json", control_plane_url.trim_end_matches('/'))),
        },
        "hs256" => {
            let secret = file.hs256_secret.ok_or(ConfigError::Missing {
                setting: "ASF_JWT_HS256_SECRET",
            })?;
            if secret.len() < 32 {
                return Err(ConfigError::Invalid {
                    setting: "ASF_JWT_HS256_SECRET",
                    reason: "must be at least 32 bytes".into(),
                });
            }
            AuthMode::Hs256 {
                secret: secret.into_bytes(),
            }
        }
        other => {
            return Err(ConfigError::Invalid {
                setting: "ASF_JWT_MODE",
                reason: format!("{other:?} is neither eddsa nor hs256"),
            });
        }
    };
    Ok(AuthConfig {
        mode,
        issuer: file.issuer.unwrap_or_else(|| DEFAULT_ISSUER.into()),
        audience: file.audience.unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
        leeway: Duration::from_secs(file.leeway_secs.unwrap_or(30)),
        jwks_refresh: Duration::from_secs(file.jwks_refresh_secs.unwrap_or(300)),
        jwks_min_refetch: Duration::from_secs(file.jwks_min_refetch_secs.unwrap_or(5)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn minimal_env() -> HashMap<String, String> {
        env(&[
            ("AJAX_API_KEY", "company-key"),
            ("ASF_SECRETS_KEY", &SecretsKey::generate_base64()),
        ])
    }

    #[test]
    fn defaults_apply_when_only_secrets_are_given() {
        let config = ProxyFileConfig::default()
            .with_env(&minimal_env())
            .check()
            .expect("valid");
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert_eq!(config.metrics_listen, "127.0.0.1:9090");
        assert_eq!(config.ajax.host, "api.ajax.systems");
        assert!(config.ajax.tls);
        assert!(
            matches!(config.auth.mode, AuthMode::EdDsa { ref jwks_url } if jwks_url == "http://127.0.0.1:8000/.well-known/jwks.json")
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let file =
            ProxyFileConfig::from_yaml_str("app:\n  listen: 127.0.0.1:1111\n  base_path: /ajax/\n").expect("yaml");
        let mut vars = minimal_env();
        vars.insert("ASF_PROXY_LISTEN".into(), "127.0.0.1:2222".into());
        let config = file.with_env(&vars).check().expect("valid");
        assert_eq!(config.listen, "127.0.0.1:2222");
        assert_eq!(config.base_path, "/ajax");
    }

    #[test]
    fn missing_key_and_bad_values_are_named() {
        let err = ProxyFileConfig::default().check().expect_err("error");
        assert!(err.to_string().contains("AJAX_API_KEY"), "{err}");
        let mut vars = minimal_env();
        vars.insert("ASF_SECRETS_KEY".into(), "short".into());
        let err = ProxyFileConfig::default().with_env(&vars).check().expect_err("error");
        assert!(err.to_string().contains("ASF_SECRETS_KEY"), "{err}");
        let mut vars = minimal_env();
        vars.insert("ASF_JWT_MODE".into(), "hs256".into());
        vars.insert("ASF_JWT_HS256_SECRET".into(), "too-short".into());
        let err = ProxyFileConfig::default().with_env(&vars).check().expect_err("error");
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn unknown_app_keys_are_refused() {
        assert!(ProxyFileConfig::from_yaml_str("app:\n  lisen: x\n").is_err());
        assert!(ProxyFileConfig::from_yaml_str("threads: 2\napp: {}\n").is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let mut vars = minimal_env();
        vars.insert("REDIS_URL".into(), "redis://user:pa55word@127.0.0.1:6379".into());
        let config = ProxyFileConfig::default().with_env(&vars).check().expect("valid");
        let shown = format!("{config:?}");
        assert!(!shown.contains("company-key") && !shown.contains("pa55word"), "{shown}");
    }
}
