//! `AppState`: what every handler shares (settings, database pool, session store, Ajax client,
//! signer).

use std::sync::Arc;

use asf_core::ajax_client::AjaxClient;
use asf_core::throttle::GlobalBudget;
use sqlx::PgPool;

use crate::lockout::Lockout;
use crate::sessions::SessionStore;
use crate::settings::Settings;
use crate::signing::Signer;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: PgPool,
    pub sessions: SessionStore,
    pub ajax: AjaxClient,
    pub signer: Arc<Signer>,
    pub lockout: Lockout,
    /// Ajax login calls take a slot in the global budget's account lane.
    pub budget: GlobalBudget,
    /// Where the control plane's audit records go.
    pub audit: asf_core::audit::AuditSink,
    /// Plans: recomputing and publishing tenants' entitlements.
    pub plans: crate::plans::Plans,
    /// Stripe, when billing is configured.
    pub stripe: Option<crate::billing::stripe_api::StripeApi>,
}
