//! Control-plane settings: `conf/control-plane.yaml` (or `--config`), overridden by environment
//! (`DATABASE_URL`, `REDIS_URL`, `AJAX_API_URL`, `AJAX_API_KEY`, `ASF_SECRETS_KEY`, ...).
//! `Debug` never shows a secret.

use std::collections::HashMap;
use std::time::Duration;

use asf_core::claims::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use asf_core::client_ip::TrustedProxies;
use asf_core::secrets::SecretsKey;
use asf_core::throttle::BudgetConfig;
use serde::Deserialize;

/// The file as users write it. No `Debug`: it may hold secrets as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: Option<String>,
    pub ajax_api_url: Option<String>,
    pub ajax_api_key: Option<String>,
    pub secrets_key: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub access_ttl_secs: Option<u64>,
    pub refresh_ttl_secs: Option<u64>,
    pub ajax_timeout_ms: Option<u64>,
    /// How long a new signing key is published before it signs (proxies pick it up meanwhile).
    pub key_publish_ahead_secs: Option<u64>,
    /// Failed logins before an account or IP is locked out, and for how long.
    pub lockout_max_failures: Option<u32>,
    pub lockout_secs: Option<u64>,
    /// Reverse proxies (CIDR) whose `X-Forwarded-For` is believed; the gateway's own proxy by default.
    pub trusted_proxies: Option<Vec<String>>,
    /// How often the worker looks for Ajax sessions to keep alive.
    pub worker_interval_secs: Option<u64>,
    /// How long audit records are kept (days).
    pub audit_retention_days: Option<u64>,
    /// Stream entries left unacknowledged this long by a worker are taken over by another.
    pub audit_claim_idle_ms: Option<u64>,
    /// Audit records held in memory while Redis is away; beyond this they are dropped (and counted).
    pub audit_buffer_records: Option<u64>,
    /// The plan every tenant has at least (default `free`).
    pub baseline_plan: Option<String>,
    /// How long a `past_due` subscription keeps its plan (seconds; default 3 days).
    pub past_due_grace_secs: Option<u64>,
    /// Stripe: API base URL, secret key, webhook signing secret (billing is off without a key).
    pub stripe_api_base: Option<String>,
    pub stripe_secret_key: Option<String>,
    pub stripe_webhook_secret: Option<String>,
    /// Where Checkout sends the user back (success, cancel) and where the portal returns to.
    pub billing_return_url: Option<String>,
    /// Attempts at processing one Stripe event before it is dead-lettered.
    pub stripe_event_max_attempts: Option<u64>,
    /// Vouchers one user may redeem in a lifetime, and redemption attempts per hour per user and IP.
    pub voucher_lifetime_cap: Option<u64>,
    pub voucher_attempts_per_user_hour: Option<u64>,
    pub voucher_attempts_per_ip_hour: Option<u64>,
}

/// Limits on voucher redemption.
#[derive(Debug, Clone, Copy)]
pub struct VoucherLimits {
    pub lifetime_cap: u32,
    pub attempts_per_user_hour: u32,
    pub attempts_per_ip_hour: u32,
}

/// Checked settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: String,
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub ajax_api_url: String,
    pub ajax_api_key: String,
    pub secrets_key: SecretsKey,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub ajax_timeout: Duration,
    pub key_publish_ahead: Duration,
    pub lockout_max_failures: u32,
    pub lockout_period: Duration,
    pub trusted_proxies: TrustedProxies,
    pub worker_interval: Duration,
    /// The global upstream budget (same variables as the proxy: `ASF_GLOBAL_RATE`, ...).
    pub budget: BudgetConfig,
    pub audit_retention: Duration,
    pub audit_claim_idle: Duration,
    pub audit_buffer_records: usize,
    pub baseline_plan: asf_core::plans::Tier,
    pub past_due_grace: Duration,
    pub vouchers: VoucherLimits,
    pub stripe: Option<StripeSettings>,
}

/// Stripe, when billing is configured. `Debug` never shows the secrets.
#[derive(Clone)]
pub struct StripeSettings {
    pub api_base: String,
    pub secret_key: String,
    pub webhook_secret: String,
    pub return_url: String,
    pub max_attempts: u32,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api_base", &self.api_base)
            .field("return_url", &self.return_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("redis_prefix", &self.redis_prefix)
            .field("ajax_api_url", &self.ajax_api_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .finish_non_exhaustive()
    }
}

/// A setting that is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("{setting} is required")]
    Missing { setting: &'static str },
    #[error("{setting} is invalid: {reason}")]
    Invalid { setting: &'static str, reason: String },
}

impl SettingsFile {
    /// Reads a YAML file; a missing default file is an empty one.
    pub fn load(path: &str, required: bool) -> Result<Self, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| SettingsError::Read(path.into(), e.to_string())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SettingsError::Read(path.into(), e.to_string())),
        }
    }

    /// Applies environment overrides and checks everything.
    pub fn resolve(mut self, env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let take = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        for (name, slot) in [
            ("ASF_CONTROL_LISTEN", &mut self.listen),
            ("DATABASE_URL", &mut self.database_url),
            ("REDIS_URL", &mut self.redis_url),
            ("ASF_REDIS_PREFIX", &mut self.redis_prefix),
            ("AJAX_API_URL", &mut self.ajax_api_url),
            ("AJAX_API_KEY", &mut self.ajax_api_key),
            ("ASF_SECRETS_KEY", &mut self.secrets_key),
        ] {
            if let Some(value) = take(name) {
                *slot = Some(value);
            }
        }
        let number = |name: &'static str| -> Result<Option<u64>, SettingsError> {
            take(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| SettingsError::Invalid {
                        setting: name,
                        reason: "must be a whole number".into(),
                    })
                })
                .transpose()
        };
        if let Some(secs) = number("ASF_KEY_PUBLISH_AHEAD_SECS")? {
            self.key_publish_ahead_secs = Some(secs);
        }
        if let Some(count) = number("ASF_LOCKOUT_MAX_FAILURES")? {
            self.lockout_max_failures = Some(u32::try_from(count).unwrap_or(u32::MAX));
        }
        if let Some(secs) = number("ASF_LOCKOUT_SECS")? {
            self.lockout_secs = Some(secs);
        }
        if let Some(secs) = number("ASF_WORKER_INTERVAL_SECS")? {
            self.worker_interval_secs = Some(secs);
        }
        for (name, slot) in [
            ("ASF_AUDIT_RETENTION_DAYS", &mut self.audit_retention_days),
            ("ASF_AUDIT_CLAIM_IDLE_MS", &mut self.audit_claim_idle_ms),
            ("ASF_AUDIT_BUFFER_RECORDS", &mut self.audit_buffer_records),
            ("ASF_PAST_DUE_GRACE_SECS", &mut self.past_due_grace_secs),
            ("ASF_STRIPE_EVENT_MAX_ATTEMPTS", &mut self.stripe_event_max_attempts),
            ("ASF_VOUCHER_LIFETIME_CAP", &mut self.voucher_lifetime_cap),
            (
                "ASF_VOUCHER_ATTEMPTS_PER_USER_HOUR",
                &mut self.voucher_attempts_per_user_hour,
            ),
            (
                "ASF_VOUCHER_ATTEMPTS_PER_IP_HOUR",
                &mut self.voucher_attempts_per_ip_hour,
            ),
        ] {
            if let Some(value) = number(name)? {
                *slot = Some(value);
            }
        }
        for (name, slot) in [
            ("STRIPE_API_BASE", &mut self.stripe_api_base),
            ("STRIPE_SECRET_KEY", &mut self.stripe_secret_key),
            ("STRIPE_WEBHOOK_SECRET", &mut self.stripe_webhook_secret),
            ("ASF_BILLING_RETURN_URL", &mut self.billing_return_url),
        ] {
            if let Some(value) = take(name) {
                *slot = Some(value);
            }
        }
        let stripe = match self.stripe_secret_key.take() {
            None => None,
            Some(secret_key) => Some(StripeSettings {
                api_base: self
                    .stripe_api_base
                    .take()
                    .unwrap_or_else(|| "https://api.stripe.com".into()),
                secret_key,
                webhook_secret: self.stripe_webhook_secret.take().ok_or(SettingsError::Missing {
                    setting: "STRIPE_WEBHOOK_SECRET (required with STRIPE_SECRET_KEY)",
                })?,
                return_url: self
                    .billing_return_url
                    .take()
                    .unwrap_or_else(|| "http://127.0.0.1:8000/billing".into()),
                max_attempts: self
                    .stripe_event_max_attempts
                    .map_or(8, |n| u32::try_from(n).unwrap_or(u32::MAX))
                    .max(1),
            }),
        };
        if let Some(plan) = take("ASF_BASELINE_PLAN") {
            self.baseline_plan = Some(plan);
        }
        let baseline_plan =
            self.baseline_plan
                .as_deref()
                .unwrap_or("free")
                .parse()
                .map_err(|e: asf_core::plans::UnknownTier| SettingsError::Invalid {
                    setting: "ASF_BASELINE_PLAN",
                    reason: e.to_string(),
                })?;
        let cap = |value: Option<u64>, default: u32| value.map_or(default, |v| u32::try_from(v).unwrap_or(u32::MAX));
        let vouchers = VoucherLimits {
            lifetime_cap: cap(self.voucher_lifetime_cap, 10),
            attempts_per_user_hour: cap(self.voucher_attempts_per_user_hour, 10).max(1),
            attempts_per_ip_hour: cap(self.voucher_attempts_per_ip_hour, 30).max(1),
        };
        if let Some(list) = take("ASF_TRUSTED_PROXIES") {
            self.trusted_proxies = Some(
                list.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            );
        }
        let trusted_proxies = TrustedProxies::parse(
            &self
                .trusted_proxies
                .unwrap_or_else(|| vec!["127.0.0.1/32".into(), "::1/128".into()]),
        )
        .map_err(|reason| SettingsError::Invalid {
            setting: "trusted_proxies",
            reason,
        })?;
        let secrets_key = SecretsKey::from_base64(self.secrets_key.as_deref().ok_or(SettingsError::Missing {
            setting: "ASF_SECRETS_KEY",
        })?)
        .map_err(|e| SettingsError::Invalid {
            setting: "ASF_SECRETS_KEY",
            reason: e.to_string(),
        })?;
        let access_ttl = self.access_ttl_secs.unwrap_or(900);
        if !(60..=86_400).contains(&access_ttl) {
            return Err(SettingsError::Invalid {
                setting: "access_ttl_secs",
                reason: "must be 60..=86400".into(),
            });
        }
        Ok(Settings {
            listen: self.listen.unwrap_or_else(|| "127.0.0.1:8000".into()),
            database_url: self.database_url.ok_or(SettingsError::Missing {
                setting: "DATABASE_URL",
            })?,
            redis_url: self.redis_url.unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: self.redis_prefix.unwrap_or_else(|| "asf".into()),
            ajax_api_url: self.ajax_api_url.unwrap_or_else(|| "https://api.ajax.systems".into()),
            ajax_api_key: self.ajax_api_key.ok_or(SettingsError::Missing {
                setting: "AJAX_API_KEY",
            })?,
            secrets_key,
            issuer: self.issuer.unwrap_or_else(|| DEFAULT_ISSUER.into()),
            audience: self.audience.unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
            access_ttl: Duration::from_secs(access_ttl),
            refresh_ttl: Duration::from_secs(self.refresh_ttl_secs.unwrap_or(30 * 86_400)),
            ajax_timeout: Duration::from_millis(self.ajax_timeout_ms.unwrap_or(10_000)),
            key_publish_ahead: Duration::from_secs(self.key_publish_ahead_secs.unwrap_or(60)),
            lockout_max_failures: self.lockout_max_failures.unwrap_or(5).max(1),
            lockout_period: Duration::from_secs(self.lockout_secs.unwrap_or(15 * 60)),
            trusted_proxies,
            worker_interval: Duration::from_secs(self.worker_interval_secs.unwrap_or(30).max(1)),
            budget: BudgetConfig::from_env(|name| take(name)).map_err(|reason| SettingsError::Invalid {
                setting: "global budget",
                reason,
            })?,
            audit_retention: Duration::from_secs(self.audit_retention_days.unwrap_or(365).max(1) * 86_400),
            audit_claim_idle: Duration::from_millis(self.audit_claim_idle_ms.unwrap_or(30_000).max(100)),
            audit_buffer_records: usize::try_from(self.audit_buffer_records.unwrap_or(100_000)).unwrap_or(usize::MAX),
            baseline_plan,
            past_due_grace: Duration::from_secs(self.past_due_grace_secs.unwrap_or(3 * 86_400)),
            vouchers,
            stripe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [
            ("DATABASE_URL", "postgres://127.0.0.1/test".to_owned()),
            ("AJAX_API_KEY", "company-key".to_owned()),
            ("ASF_SECRETS_KEY", SecretsKey::generate_base64()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn environment_completes_an_empty_file() {
        let settings = SettingsFile::default().resolve(&env()).expect("valid");
        assert_eq!(settings.listen, "127.0.0.1:8000");
        assert_eq!(settings.access_ttl, Duration::from_secs(900));
        assert!(!format!("{settings:?}").contains("company-key"));
    }

    #[test]
    fn missing_secrets_are_named() {
        let mut vars = env();
        vars.remove("ASF_SECRETS_KEY");
        let err = SettingsFile::default().resolve(&vars).expect_err("missing");
        assert!(err.to_string().contains("ASF_SECRETS_KEY"));
    }
}
