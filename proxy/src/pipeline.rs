//! The proxy's `ProxyHttp` implementation. Each phase only dispatches to a module (shield, auth,
//! admission, rewrite, respond), so the request path reads top to bottom:
//! shield → authenticate → authorize → admit → forward (token swap) → respond → record.

use std::sync::Arc;
use std::time::Instant;

use asf_core::catalogue::{Catalogue, RouteClass};
use asf_core::session::AjaxSession;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::admission::{Admission, Refusal};
use crate::auth::{AuthFailure, CredentialError, Verifier, find_token};
use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::respond::{self, LocalAnswer};
use crate::rewrite::{self, Outbound};
use crate::shield;
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
            Self::Unavailable => "unavailable",
            Self::UpstreamError => "upstream_error",
        }
    }
}

/// Per-request state: written by early phases, read by later ones.
pub struct RequestCtx {
    pub request_id: String,
    pub class: Option<RouteClass>,
    pub target: Option<Target>,
    pub forward_path: String,
    pub ajax_session: Option<Arc<AjaxSession>>,
    /// Our user id, once authenticated.
    pub user_id: Option<String>,
    pub decision: Decision,
    pub upstream_started: Option<Instant>,
    /// Set when Ajax refused the session and a refreshed one is ready: the next error is retried.
    pub retry_with_new_session: bool,
    /// The one retry after a refresh has been used.
    pub refreshed_once: bool,
}

/// The gateway: everything the phases need, shared by all requests.
pub struct Gateway {
    pub config: Arc<ProxyConfig>,
    pub catalogue: &'static Catalogue,
    pub verifier: Arc<Verifier>,
    pub admission: Admission,
    pub ajax: Upstream,
    pub control_plane: Upstream,
    pub metrics: Metrics,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Gateway {
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        decision: Decision,
        answer: &LocalAnswer,
    ) -> Result<Filter> {
        ctx.decision = decision;
        respond::send(session, answer, &ctx.request_id).await?;
        Ok(Filter::Responded)
    }

    /// shield → authenticate → authorize → admit.
    async fn filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Filter> {
        let admitted = match shield::inspect(
            session.req_header(),
            &self.config.base_path,
            self.catalogue,
            self.config.max_body_bytes,
        ) {
            Ok(admitted) => admitted,
            Err(answer) => {
                return self.refuse(session, ctx, Decision::RefusedShield, &answer).await;
            }
        };
        ctx.class = Some(admitted.route.class);
        ctx.forward_path = admitted.forward_path;
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

        // A path of another user is answered as if it did not exist, so ids cannot be probed.
        if admitted.owner.as_deref() != Some(claims.uid.as_str()) {
            return self.refuse(session, ctx, Decision::RefusedAuthz, &NOT_YOURS).await;
        }

        match self.admission.admit(&claims, unix_now()).await {
            Ok(ajax_session) => ctx.ajax_session = Some(ajax_session),
            Err(Refusal::Revoked | Refusal::NoSession) => {
                return self.refuse(session, ctx, Decision::RefusedAuth, &TOKEN_REVOKED).await;
            }
            Err(Refusal::Unavailable) => {
                return self
                    .refuse(session, ctx, Decision::Unavailable, &STATE_UNAVAILABLE)
                    .await;
            }
        }
        ctx.user_id = Some(claims.sub.clone());
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
            request_id: uuid::Uuid::new_v4().simple().to_string(),
            class: None,
            target: None,
            forward_path: String::new(),
            ajax_session: None,
            user_id: None,
            decision: Decision::Pending,
            upstream_started: None,
            retry_with_new_session: false,
            refreshed_once: false,
        }
    }

    /// Runs shield, authentication, authorization and admission; `true` when it answered itself.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
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
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let target = ctx
            .target
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream chosen"))?;
        let host = self.upstream(target).origin.host_header();
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        let out = Outbound {
            host: &host,
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

    /// An Ajax 401 means the user's Ajax session died early: refresh it (single-flight) and send the
    /// request once more. Anything else passes through.
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if resp.status.as_u16() != 401 || ctx.target != Some(Target::Ajax) || ctx.refreshed_once {
            return Ok(());
        }
        let (Some(user), Some(stale)) = (ctx.user_id.clone(), ctx.ajax_session.clone()) else {
            return Ok(());
        };
        ctx.refreshed_once = true;
        match self.admission.renew(&user, &stale.session_token, unix_now()).await {
            Ok(fresh) => {
                ctx.ajax_session = Some(fresh);
                ctx.retry_with_new_session = true;
                Err(Error::explain(
                    ErrorType::HTTPStatus(401),
                    "ajax session refreshed; sending again",
                ))
            }
            // The session is over: the client sees Ajax's 401 and logs in again.
            Err(Refusal::NoSession | Refusal::Revoked) => Ok(()),
            Err(Refusal::Unavailable) => Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "ajax session refresh unavailable",
            )),
        }
    }

    /// Retries exactly the request whose Ajax session was just refreshed (Ajax did not run it: it
    /// answered 401); otherwise Pingora's default policy.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if std::mem::take(&mut ctx.retry_with_new_session) {
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
        ctx.decision = Decision::UpstreamError;
        let answer = match e.etype() {
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => &UPSTREAM_TIMEOUT,
            _ => &UPSTREAM_UNAVAILABLE,
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

    /// Records the request in metrics.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let class = ctx.class.map_or("none", RouteClass::as_str);
        self.metrics
            .requests
            .with_label_values(&[class, itoa_status(status), ctx.decision.as_str()])
            .inc();
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
