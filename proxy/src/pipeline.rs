//! The proxy's `ProxyHttp` implementation. Each phase only dispatches to a module (shield, auth,
//! admission, rewrite, respond), so the request path reads top to bottom:
//! shield → authenticate → authorize → admit → forward (token swap) → respond → record.

use std::sync::Arc;
use std::time::Instant;

use asf_core::audit::AuditSink;
use asf_core::catalogue::{Catalogue, RouteClass};
use asf_core::session::AjaxSession;
use asf_core::throttle::{Decision as BudgetDecision, RefusalReason, ReserveRequest};
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::admission::{Admission, Refusal};
use crate::auth::{AuthFailure, CredentialError, Verifier, find_token};
use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::pushback;
use crate::queue::{self, Waited};
use crate::respond::{self, LocalAnswer};
use crate::rewrite::{self, Outbound};
use crate::shield;
use crate::throttle::{Hints, lane_of};
use crate::upstream::Upstream;

const TOKEN_MISSING: LocalAnswer = LocalAnswer::new(401, "token_missing", "Session token is missing");
const TOKEN_INVALID: LocalAnswer = LocalAnswer::new(401, "token_invalid", "Session token is invalid");
const TOKEN_EXPIRED: LocalAnswer = LocalAnswer::new(401, "token_expired", "Session token has expired");
const TOKEN_REVOKED: LocalAnswer = LocalAnswer::new(401, "token_revoked", "Session is no longer valid; log in again");
const KEYS_UNAVAILABLE: LocalAnswer =
    LocalAnswer::new(503, "auth_unavailable", "Authentication is starting up; retry shortly").retry_after(2);
const NOT_YOURS: LocalAnswer = LocalAnswer::new(404, "not_found", "Resource not found");
const STATE_UNAVAILABLE: LocalAnswer = LocalAnswer::new(
    503,
    "state_unavailable",
    "Gateway state store unavailable; retry shortly",
)
.retry_after(1);
const UPSTREAM_UNAVAILABLE: LocalAnswer =
    LocalAnswer::new(502, "upstream_unavailable", "Upstream unavailable").retry_after(2);
const UPSTREAM_TIMEOUT: LocalAnswer = LocalAnswer::new(504, "upstream_timeout", "Upstream timed out").retry_after(2);

/// The 429 for a budget refusal, with why and when to come back.
fn throttled(reason: RefusalReason, retry_after_secs: u64) -> LocalAnswer {
    let (code, message) = match reason {
        RefusalReason::TenantLimit => (
            "tenant_limit",
            "Your plan's request rate is used up; retry after the indicated time",
        ),
        RefusalReason::TenantQueueCap => (
            "tenant_queue_full",
            "Too many of your requests are already waiting; retry later",
        ),
        RefusalReason::Paused => (
            "upstream_pushback",
            "Ajax asked the gateway to slow down; retry after the indicated time",
        ),
        _ => (
            "queue_full",
            "The upstream budget is fully booked; retry after the indicated time",
        ),
    };
    LocalAnswer::new(429, code, message).retry_after(retry_after_secs.max(1))
}

/// Outcome of the request filter.
pub enum Filter {
    Continue,
    Responded,
}

/// Where a request goes once admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ajax,
    ControlPlane,
}

/// What the proxy decided, for metrics (and the audit record later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pending,
    Forwarded,
    ControlPlane,
    RefusedShield,
    RefusedAuth,
    RefusedAuthz,
    RefusedPlan,
    Throttled,
    ClientGone,
    Unavailable,
    UpstreamError,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Forwarded => "forwarded",
            Self::ControlPlane => "control_plane",
            Self::RefusedShield => "refused_shield",
            Self::RefusedAuth => "refused_auth",
            Self::RefusedAuthz => "refused_authz",
            Self::RefusedPlan => "refused_plan",
            Self::Throttled => "throttled",
            Self::ClientGone => "client_gone",
            Self::Unavailable => "unavailable",
            Self::UpstreamError => "upstream_error",
        }
    }
}

/// Per-request state: written by early phases, read by later ones.
pub struct RequestCtx {
    pub request_id: String,
    /// When the request arrived (for the audit record's latency), and as Unix milliseconds.
    pub started: Instant,
    pub started_at_ms: i64,
    /// The matched route's template (`/user/{userId}/hubs`).
    pub route: Option<&'static str>,
    /// Our tenant id, once authenticated.
    pub tenant_id: Option<String>,
    /// Ajax's status, when the request reached it.
    pub upstream_status: Option<u16>,
    /// Time spent waiting for a budget slot.
    pub queue_wait_ms: Option<i64>,
    pub class: Option<RouteClass>,
    pub target: Option<Target>,
    pub forward_path: String,
    pub ajax_session: Option<Arc<AjaxSession>>,
    /// Our user id, once authenticated.
    pub user_id: Option<String>,
    pub decision: Decision,
    pub upstream_started: Option<Instant>,
    /// Set when the request must go upstream once more (a refreshed Ajax session after a 401, or a
    /// new slot after a pushback): the next upstream error is retried.
    pub send_again: bool,
    /// The one retry after a refresh has been used.
    pub refreshed_once: bool,
    /// The one retry after an Ajax pushback has been used.
    pub pushed_back_once: bool,
    /// `Retry-After` for an answer made after the request was forwarded (pushback).
    pub retry_after_secs: Option<u64>,
    /// Budget hints for the client, once a slot was granted.
    pub hints: Option<Hints>,
    /// The answer is small and successful: look at its body for Ajax's "limit exceeded" message.
    pub watch_limit_body: bool,
    /// The client's IP (the peer's, or as trusted proxies report it).
    pub client_ip: Option<std::net::IpAddr>,
}

/// The gateway: everything the phases need, shared by all requests.
pub struct Gateway {
    pub config: Arc<ProxyConfig>,
    pub catalogue: &'static Catalogue,
    pub verifier: Arc<Verifier>,
    pub admission: Admission,
    pub ip_guard: crate::ip_guard::IpGuard,
    pub heartbeat: Arc<crate::heartbeat::BudgetHeartbeat>,
    pub ajax: Upstream,
    pub control_plane: Upstream,
    pub metrics: Metrics,
    pub audit: AuditSink,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Gateway {
    /// After a pushback: the budget is paused (every instance); the request is sent once more at
    /// its new slot if that is within the wait bound, else answered 429 with `Retry-After`.
    async fn after_pushback(
        &self,
        session: &mut Session,
        pause: std::time::Duration,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::pause::pause_budget(&self.admission.throttle, &self.admission.redis, pause).await;
        let lane = lane_of(ctx.class.unwrap_or(RouteClass::Read));
        let decision = if ctx.pushed_back_once {
            None
        } else {
            ctx.pushed_back_once = true;
            crate::pause::reserve_plain(
                &self.admission.throttle,
                &self.admission.redis,
                ReserveRequest::new(lane),
            )
            .await
        };
        match decision {
            Some(BudgetDecision::Granted(slot)) => {
                if queue::wait_for_slot(session, lane, slot.wait_duration(), &self.metrics).await == Waited::ClientGone
                {
                    ctx.decision = Decision::ClientGone;
                    return Err(Error::explain(
                        ErrorType::ConnectionClosed,
                        "client left while waiting after pushback",
                    ));
                }
                ctx.send_again = true;
                Err(Error::explain(
                    ErrorType::HTTPStatus(429),
                    "ajax pushed back; sending again at the new slot",
                ))
            }
            Some(BudgetDecision::Refused { retry_after_secs, .. }) => {
                ctx.retry_after_secs = Some(retry_after_secs);
                Err(Error::explain(ErrorType::HTTPStatus(429), "ajax pushed back"))
            }
            Some(BudgetDecision::NotEntitled { .. }) | None => {
                ctx.retry_after_secs = Some(pause.as_secs().max(1));
                Err(Error::explain(ErrorType::HTTPStatus(429), "ajax pushed back again"))
            }
        }
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        decision: Decision,
        answer: &LocalAnswer,
    ) -> Result<Filter> {
        ctx.decision = decision;
        // Wrong or missing credentials count against the IP (an expired token is normal wear).
        if let (401, Some(ip)) = (answer.status, ctx.client_ip)
            && answer.code != TOKEN_EXPIRED.code
        {
            self.ip_guard.auth_failed(ip);
        }
        respond::send(session, answer, &ctx.request_id).await?;
        Ok(Filter::Responded)
    }

    /// The client's own refusals: the IP guard and header limits.
    fn guard(&self, session: &Session, ctx: &mut RequestCtx) -> Result<(), LocalAnswer> {
        let peer = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        if let Some(peer) = peer {
            let headers = &session.req_header().headers;
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            let ip = self.ip_guard.client_ip(peer, forwarded);
            ctx.client_ip = Some(ip);
            self.ip_guard.admit(ip)?;
        }
        shield::check_headers(
            session.req_header(),
            self.config.max_headers,
            self.config.max_header_bytes,
        )
    }

    /// shield → authenticate → authorize → admit.
    async fn filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Filter> {
        if let Err(answer) = self.guard(session, ctx) {
            self.metrics.shield_refusals.with_label_values(&[answer.code]).inc();
            return self.refuse(session, ctx, Decision::RefusedShield, &answer).await;
        }
        let admitted = match shield::inspect(
            session.req_header(),
            &self.config.base_path,
            self.catalogue,
            self.config.max_body_bytes,
        ) {
            Ok(admitted) => admitted,
            Err(answer) => {
                self.metrics.shield_refusals.with_label_values(&[answer.code]).inc();
                return self.refuse(session, ctx, Decision::RefusedShield, &answer).await;
            }
        };
        ctx.class = Some(admitted.route.class);
        ctx.route = Some(admitted.route.template.as_str());
        ctx.forward_path = admitted.forward_path;
        if matches!(admitted.route.class, RouteClass::Command | RouteClass::Panic)
            && let Err(answer) = crate::body_check::check_command(session, &admitted.route.operation_id).await
        {
            self.metrics.shield_refusals.with_label_values(&[answer.code]).inc();
            return self.refuse(session, ctx, Decision::RefusedShield, &answer).await;
        }
        if admitted.route.class == RouteClass::Account {
            ctx.target = Some(Target::ControlPlane);
            ctx.decision = Decision::ControlPlane;
            return Ok(Filter::Continue);
        }

        let token = match find_token(&session.req_header().headers) {
            Ok(token) => token,
            Err(CredentialError::Missing) => {
                return self.refuse(session, ctx, Decision::RefusedAuth, &TOKEN_MISSING).await;
            }
            Err(_) => {
                return self.refuse(session, ctx, Decision::RefusedAuth, &TOKEN_INVALID).await;
            }
        };
        let claims = match self.verifier.verify(token, unix_now()).await {
            Ok(claims) => claims,
            Err(AuthFailure::Expired) => {
                return self.refuse(session, ctx, Decision::RefusedAuth, &TOKEN_EXPIRED).await;
            }
            Err(AuthFailure::Invalid(_)) => {
                return self.refuse(session, ctx, Decision::RefusedAuth, &TOKEN_INVALID).await;
            }
            Err(AuthFailure::KeysUnavailable) => {
                return self
                    .refuse(session, ctx, Decision::Unavailable, &KEYS_UNAVAILABLE)
                    .await;
            }
        };

        ctx.user_id = Some(claims.sub.clone());
        ctx.tenant_id = Some(claims.tid.clone());
        // A path of another user is answered as if it did not exist, so ids cannot be probed.
        if admitted.owner.as_deref() != Some(claims.uid.as_str()) {
            return self.refuse(session, ctx, Decision::RefusedAuthz, &NOT_YOURS).await;
        }

        let class = admitted.route.class;
        let admitted = match self.admission.admit(&claims, class, unix_now()).await {
            Ok(admitted) => admitted,
            Err(Refusal::Revoked | Refusal::NoSession) => {
                return self.refuse(session, ctx, Decision::RefusedAuth, &TOKEN_REVOKED).await;
            }
            Err(Refusal::Throttled {
                reason,
                retry_after_secs,
            }) => {
                let answer = throttled(reason, retry_after_secs);
                return self.refuse(session, ctx, Decision::Throttled, &answer).await;
            }
            Err(Refusal::Unavailable) => {
                return self
                    .refuse(session, ctx, Decision::Unavailable, &STATE_UNAVAILABLE)
                    .await;
            }
            Err(Refusal::NotEntitled { plan, upgrade }) => {
                ctx.decision = Decision::RefusedPlan;
                let required = respond::PlanRequired {
                    plan: &plan,
                    upgrade: upgrade.as_deref(),
                    upgrade_url: &self.config.upgrade_url,
                };
                respond::send_plan_required(session, &required, &ctx.request_id).await?;
                return Ok(Filter::Responded);
            }
        };
        ctx.hints = Some(Hints::of(self.admission.throttle.limit(), &admitted.reservation));
        ctx.ajax_session = Some(admitted.session);
        let wait = admitted.reservation.wait_duration();
        ctx.queue_wait_ms = Some(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        if queue::wait_for_slot(session, lane_of(class), wait, &self.metrics).await == Waited::ClientGone {
            ctx.decision = Decision::ClientGone;
            return Err(Error::explain(
                ErrorType::ConnectionClosed,
                "client left while waiting for its slot",
            ));
        }
        ctx.target = Some(Target::Ajax);
        ctx.decision = Decision::Forwarded;
        // Keep the body so the request can be sent again after a reactive session refresh.
        session.enable_retry_buffering();
        Ok(Filter::Continue)
    }

    fn upstream(&self, target: Target) -> &Upstream {
        match target {
            Target::Ajax => &self.ajax,
            Target::ControlPlane => &self.control_plane,
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            request_id: format!("{:032x}", rand::random::<u128>()),
            started: Instant::now(),
            started_at_ms: asf_core::audit::unix_millis(),
            route: None,
            tenant_id: None,
            upstream_status: None,
            queue_wait_ms: None,
            class: None,
            target: None,
            forward_path: String::new(),
            ajax_session: None,
            user_id: None,
            decision: Decision::Pending,
            upstream_started: None,
            send_again: false,
            refreshed_once: false,
            pushed_back_once: false,
            retry_after_secs: None,
            hints: None,
            watch_limit_body: false,
            client_ip: None,
        }
    }

    /// Runs shield, authentication, authorization and admission; `true` when it answered itself.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.heartbeat.ensure_started();
        self.audit.ensure_started();
        Ok(matches!(self.filter(session, ctx).await?, Filter::Responded))
    }

    /// Ajax (or ajax-sim) for user calls, the control plane for login/refresh/logout.
    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let target = ctx
            .target
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream chosen"))?;
        ctx.upstream_started = Some(Instant::now());
        self.upstream(target)
            .peer()
            .await
            .map_err(|e| Error::explain(ErrorType::ConnectError, e.to_string()))
    }

    /// Token swap and header rewriting.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let target = ctx
            .target
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream chosen"))?;
        let client_ip = ctx.client_ip.map(|ip| ip.to_string());
        let out = Outbound {
            host: &self.upstream(target).host_header,
            path_and_query: &ctx.forward_path,
            request_id: &ctx.request_id,
            client_ip,
        };
        match (target, &ctx.ajax_session) {
            (Target::Ajax, Some(ajax)) => {
                rewrite::toward_ajax(req, &out, &self.config.ajax_api_key, &ajax.session_token)
            }
            (Target::ControlPlane, _) => rewrite::toward_control_plane(req, &out),
            (Target::Ajax, None) => Err(Error::explain(
                ErrorType::InternalError,
                "no Ajax session for an Ajax call",
            )),
        }
    }

    /// Ajax's answer, before anything reaches the client: a pushback pauses the whole budget and
    /// the request is sent once more when its new slot is within the wait bound (else 429 with
    /// `Retry-After`); a 401 means the user's Ajax session died early, so it is refreshed
    /// (single-flight) and the request sent once more. Anything else passes through.
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.target != Some(Target::Ajax) {
            return Ok(());
        }
        ctx.upstream_status = Some(resp.status.as_u16());
        if let Some(pause) = pushback::pause_asked(resp) {
            self.metrics.pushbacks.with_label_values(&["status"]).inc();
            return self.after_pushback(session, pause, ctx).await;
        }
        ctx.watch_limit_body = pushback::may_be_limit_body(resp);
        if resp.status.as_u16() != 401 || ctx.refreshed_once {
            return Ok(());
        }
        let (Some(user), Some(stale)) = (ctx.user_id.clone(), ctx.ajax_session.clone()) else {
            return Ok(());
        };
        ctx.refreshed_once = true;
        match self.admission.renew(&user, &stale.session_token, unix_now()).await {
            Ok(fresh) => {
                ctx.ajax_session = Some(fresh);
                ctx.send_again = true;
                Err(Error::explain(
                    ErrorType::HTTPStatus(401),
                    "ajax session refreshed; sending again",
                ))
            }
            // The session is over: the client sees Ajax's 401 and logs in again.
            Err(Refusal::NoSession | Refusal::Revoked) => Ok(()),
            Err(Refusal::Unavailable | Refusal::Throttled { .. } | Refusal::NotEntitled { .. }) => Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "ajax session refresh unavailable",
            )),
        }
    }

    /// Ajax's "limit exceeded" message inside a 200: pause the budget at once (the answer itself
    /// is already on its way to the client).
    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if !ctx.watch_limit_body {
            return Ok(None);
        }
        ctx.watch_limit_body = false;
        if body.as_deref().is_some_and(pushback::body_says_limit) {
            self.metrics.pushbacks.with_label_values(&["body"]).inc();
            let throttle = self.admission.throttle.clone();
            let redis = self.admission.redis.clone();
            tokio::spawn(async move {
                crate::pause::pause_budget(&throttle, &redis, crate::throttle::DEFAULT_PUSHBACK).await
            });
        }
        Ok(None)
    }

    /// Retries exactly the request marked to be sent again (Ajax did not run it: it answered 401 or
    /// pushed back); otherwise Pingora's default policy.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if std::mem::take(&mut ctx.send_again) {
            e.set_retry(true);
        } else if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    /// Strips upstream internals and records upstream latency.
    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(hints) = ctx.hints {
            resp.insert_header("ratelimit-limit", hints.limit.to_string())?;
            resp.insert_header("ratelimit-remaining", hints.remaining.to_string())?;
            resp.insert_header("ratelimit-reset", hints.reset_secs.to_string())?;
            resp.insert_header("x-suggested-interval", hints.suggested_interval_secs.to_string())?;
        }
        if let (Some(started), Some(target)) = (ctx.upstream_started.take(), ctx.target) {
            let label = match target {
                Target::Ajax => "ajax",
                Target::ControlPlane => "control_plane",
            };
            self.metrics
                .upstream_seconds
                .with_label_values(&[label])
                .observe(started.elapsed().as_secs_f64());
        }
        rewrite::response(resp, &ctx.request_id)
    }

    /// Answers upstream failures in Ajax's shape (502/504, never 500), keeping the connection.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        let pushed_back;
        let answer = match e.etype() {
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => &UPSTREAM_TIMEOUT,
            ErrorType::HTTPStatus(429) => {
                pushed_back = throttled(RefusalReason::Paused, ctx.retry_after_secs.unwrap_or(1));
                &pushed_back
            }
            ErrorType::HTTPStatus(503) => &STATE_UNAVAILABLE,
            ErrorType::HTTPStatus(401) => &TOKEN_REVOKED,
            _ => &UPSTREAM_UNAVAILABLE,
        };
        ctx.decision = if answer.status == 429 {
            Decision::Throttled
        } else {
            Decision::UpstreamError
        };
        let downstream_gone = matches!(e.esource(), ErrorSource::Downstream);
        if downstream_gone || session.response_written().is_some() {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        tracing::warn!(request_id = %ctx.request_id, error = %e, "upstream failed");
        match respond::send(session, answer, &ctx.request_id).await {
            Ok(()) => FailToProxy {
                error_code: answer.status,
                can_reuse_downstream: true,
            },
            Err(_) => FailToProxy {
                error_code: answer.status,
                can_reuse_downstream: false,
            },
        }
    }

    /// Records the request in metrics and hands its audit record off (never waits on I/O).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let class = ctx.class.map_or("none", RouteClass::as_str);
        self.metrics
            .requests
            .with_label_values(&[class, itoa_status(status), ctx.decision.as_str()])
            .inc();
        self.audit
            .record(crate::audit::record_of(session.req_header(), ctx, status));
    }
}

/// Status codes as label values without allocating for the common ones.
fn itoa_status(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        402 => "402",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "none",
        _ => "other",
    }
}
