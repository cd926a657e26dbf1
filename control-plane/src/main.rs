//! `asf-control`: the control plane's command line. `serve` runs the HTTP service (migrating the
//! database first unless told not to), `migrate` only migrates, `keys rotate` adds a signing key.

mod accounts;
mod admin;
mod audit;
mod auth;
mod billing;
mod error;
mod identity;
mod lockout;
mod notifications;
mod plans;
mod refresh_tokens;
mod routes;
mod security_headers;
mod sessions;
mod settings;
mod signing;
mod state;
mod throttle_view;
mod vouchers;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use asf_core::ajax_client::AjaxClient;
use asf_core::keyspace::Keyspace;
use asf_core::session_refresh::SessionRefresher;
use asf_core::throttle::GlobalBudget;
use clap::{Parser, Subcommand};
use sqlx::postgres::PgPoolOptions;

use crate::lockout::Lockout;
use crate::sessions::SessionStore;
use crate::settings::{Settings, SettingsFile};
use crate::signing::Signer;
use crate::state::AppState;

/// AjaxSecurFlow control plane: identity sync, sessions and signing keys.
#[derive(Parser)]
#[command(name = "asf-control", version)]
struct Cli {
    /// Settings file; environment variables override it.
    #[arg(long, global = true, default_value = "conf/control-plane.yaml")]
    config: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (listen address from ASF_CONTROL_LISTEN, default 127.0.0.1:8000).
    Serve {
        /// Do not run pending database migrations on start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Run pending database migrations and exit.
    Migrate,
    /// Run background jobs (keeping active users' Ajax sessions alive).
    Worker,
    /// Administer users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Vouchers.
    Vouchers {
        #[command(subcommand)]
        command: VoucherCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum VoucherCommand {
    /// Generate a batch of codes (printed once, one per line; only their hashes are stored).
    Generate {
        #[arg(long)]
        count: u32,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        duration_days: u32,
        /// Last day the codes can be redeemed (YYYY-MM-DD, UTC).
        #[arg(long)]
        redeem_by: Option<String>,
        #[arg(long)]
        max_redemptions: Option<u32>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain from its anchor to its head; exits non-zero naming the first broken
    /// record.
    Verify,
    /// Remove records past the retention period now (the worker also does this hourly).
    Prune,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Make an already-synced user (one who has logged in once) an administrator.
    Grant {
        /// The user's e-mail, as they log in to Ajax.
        email: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a signing key: published now, signing after the publish-ahead delay; older keys retire
    /// once every token they signed has expired.
    Rotate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let explicit = std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = SettingsFile::load(&cli.config, explicit)?.resolve(&env)?;
    let db = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&settings.database_url)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    match cli.command {
        Command::Migrate => migrate(&db).await,
        Command::Worker => {
            let refresher = SessionRefresher {
                redis: connect_redis(&settings).await?,
                keys: Keyspace::new(settings.redis_prefix.clone()),
                secrets: settings.secrets_key.clone(),
                ajax: AjaxClient::new(&settings.ajax_api_url, &settings.ajax_api_key, settings.ajax_timeout)?,
                budget: GlobalBudget::new(Keyspace::new(settings.redis_prefix.clone()), &settings.budget)?,
            };
            let mover = audit::mover::AuditMover {
                redis: redis::Client::open(settings.redis_url.as_str()).context("REDIS_URL")?,
                stream: Keyspace::new(settings.redis_prefix.clone()).audit_stream(),
                consumer: worker_name(),
                db: db.clone(),
                chain_key: asf_core::audit::chain_key(&settings.secrets_key),
                claim_idle: settings.audit_claim_idle,
            };
            let jobs = worker::Jobs {
                mover,
                plans: plans_of(&settings, &db).await?,
                stripe: stripe_of(&settings)?,
                retention: settings.audit_retention,
            };
            println!("asf-control worker running");
            worker::run(refresher, settings.worker_interval, jobs).await;
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Grant { email },
        } => {
            let mut conn = db.acquire().await?;
            match accounts::grant_admin(&mut conn, &email).await? {
                1 => {
                    record_cli_change(&settings, "grant_admin", serde_json::json!({ "email": email })).await;
                    println!("{email} is now an administrator");
                    Ok(())
                }
                0 => anyhow::bail!("no synced user has the e-mail {email:?}; they must log in once first"),
                n => anyhow::bail!("{n} users share the e-mail {email:?}; refusing to guess"),
            }
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let kid = signing::rotate(
                &db,
                &settings.secrets_key,
                settings.key_publish_ahead,
                settings.access_ttl,
            )
            .await?;
            record_cli_change(&settings, "rotate_signing_key", serde_json::json!({ "kid": kid })).await;
            println!("{kid}");
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let key = asf_core::audit::chain_key(&settings.secrets_key);
            match audit::verify::verify(&db, &key).await? {
                audit::verify::Verdict::Intact {
                    records,
                    first_seq,
                    last_seq,
                } => {
                    println!("audit chain intact: {records} records ({first_seq}..={last_seq})");
                    Ok(())
                }
                audit::verify::Verdict::Broken { seq, record_id, reason } => {
                    let id = record_id.map(|id| format!(" (id {id})")).unwrap_or_default();
                    eprintln!("audit chain broken at record {seq}{id}: {reason}");
                    std::process::exit(1);
                }
            }
        }
        Command::Vouchers {
            command:
                VoucherCommand::Generate {
                    count,
                    plan,
                    duration_days,
                    redeem_by,
                    max_redemptions,
                },
        } => {
            let request = vouchers::issue::BatchRequest {
                count,
                plan,
                duration_days,
                redeem_by,
                max_redemptions,
            };
            let batch = vouchers::issue::generate(&db, &request, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let detail =
                serde_json::json!({ "batch_id": batch.batch_id, "count": batch.codes.len(), "plan": request.plan });
            record_cli_change(&settings, "generate_vouchers", detail).await;
            eprintln!("batch {}: {} codes", batch.batch_id, batch.codes.len());
            for code in batch.codes {
                println!("{code}");
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Prune,
        } => {
            let cutoff = chrono::Utc::now().timestamp_millis()
                - i64::try_from(settings.audit_retention.as_millis()).unwrap_or(i64::MAX);
            let key = asf_core::audit::chain_key(&settings.secrets_key);
            let removed = audit::store::prune(&db, &key, cutoff).await?;
            println!("pruned {removed} audit records");
            Ok(())
        }
        Command::Serve { no_migrate } => {
            if !no_migrate {
                migrate(&db).await?;
            }
            serve(settings, db).await
        }
    }
}

/// Records a change made from the command line in the audit trail (by the operator at this host).
async fn record_cli_change(settings: &Settings, action: &str, detail: serde_json::Value) {
    let Ok(client) = redis::Client::open(settings.redis_url.as_str()) else {
        return;
    };
    let sink = asf_core::audit::AuditSink::new(client, Keyspace::new(settings.redis_prefix.clone()).audit_stream(), 16);
    let mut record = asf_core::audit::AuditRecord::new(asf_core::audit::Kind::Admin, "ok", 0);
    record.method = Some("CLI".into());
    record.route = Some(format!("asf-control {action}"));
    record.detail = Some(serde_json::json!({ "action": action, "by": "command line", "after": detail }).to_string());
    sink.record(record);
    if !sink.ship_remaining().await {
        eprintln!("warning: the audit record of this change could not be written to Redis");
    }
}

/// This worker's name in the audit consumer group: stable across restarts on one host, so a
/// restarted worker picks up what it had read but not yet acknowledged.
fn worker_name() -> String {
    std::env::var("ASF_WORKER_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "worker".into())
}

async fn plans_of(settings: &Settings, db: &sqlx::PgPool) -> anyhow::Result<plans::Plans> {
    Ok(plans::Plans {
        db: db.clone(),
        redis: connect_redis(settings).await?,
        keys: Keyspace::new(settings.redis_prefix.clone()),
        grace: settings.past_due_grace,
        baseline: settings.baseline_plan,
    })
}

fn stripe_of(settings: &Settings) -> anyhow::Result<Option<billing::stripe_api::StripeApi>> {
    settings
        .stripe
        .clone()
        .map(billing::stripe_api::StripeApi::new)
        .transpose()
        .context("Stripe client")
}

async fn connect_redis(settings: &Settings) -> anyhow::Result<redis::aio::ConnectionManager> {
    redis::Client::open(settings.redis_url.as_str())
        .context("REDIS_URL")?
        .get_connection_manager()
        .await
        .context("connecting to Redis")
}

async fn migrate(db: &sqlx::PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("../migrations")
        .run(db)
        .await
        .context("running migrations")
}

async fn serve(settings: Settings, db: sqlx::PgPool) -> anyhow::Result<()> {
    signing::ensure_active(&db, &settings.secrets_key).await?;
    let redis = connect_redis(&settings).await?;
    let keys = Keyspace::new(settings.redis_prefix.clone());
    let (keys_for_budget, settings_budget) = (keys.clone(), settings.budget);
    let lockout = Lockout {
        redis: redis.clone(),
        keys: keys.clone(),
        max_failures: settings.lockout_max_failures,
        period: settings.lockout_period,
    };
    let audit = asf_core::audit::AuditSink::new(
        redis::Client::open(settings.redis_url.as_str()).context("REDIS_URL")?,
        keys.audit_stream(),
        settings.audit_buffer_records,
    );
    audit.ensure_started();
    let sessions = SessionStore::new(redis, keys, settings.secrets_key.clone());
    let ajax = AjaxClient::new(&settings.ajax_api_url, &settings.ajax_api_key, settings.ajax_timeout)?;
    let plans = plans_of(&settings, &db).await?;
    let settings_for_stripe = settings.clone();
    let state = AppState {
        signer: Arc::new(Signer::new(db.clone(), settings.secrets_key.clone())),
        settings: Arc::new(settings),
        db,
        sessions,
        ajax,
        lockout,
        budget: GlobalBudget::new(keys_for_budget, &settings_budget)?,
        audit,
        plans,
        stripe: stripe_of(&settings_for_stripe)?,
    };
    let listener = tokio::net::TcpListener::bind(&state.settings.listen)
        .await
        .with_context(|| format!("binding {}", state.settings.listen))?;
    println!("asf-control listening on http://{}", listener.local_addr()?);
    tracing::info!(settings = ?state.settings, "control plane started");
    let hsts = std::env::var("ASF_HSTS").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let audit = state.audit.clone();
    let app = routes::router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::http::record))
        .layer(axum::middleware::map_response(move |response| async move {
            security_headers::apply(response, hsts)
        }))
        .with_state(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    if !audit.flush(Duration::from_secs(5)).await {
        tracing::error!(stats = ?audit.stats(), "audit records still buffered at shutdown");
    }
    Ok(())
}
