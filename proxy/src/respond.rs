//! Answers the proxy makes itself: Ajax-shaped JSON errors with a JSON `Content-Type`, the request
//! id, `Retry-After` where the client should come back later, and keep-alive kept (Pingora's
//! `respond_error` would close the connection).

use std::borrow::Cow;

use asf_core::ajax_wire::ErrorBody;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// One answer the proxy gives without forwarding.
#[derive(Debug, Clone)]
pub struct LocalAnswer {
    pub status: u16,
    pub message: Cow<'static, str>,
    /// Machine-readable reason, in `errors[0].code`.
    pub code: &'static str,
    pub retry_after_secs: Option<u64>,
}

impl LocalAnswer {
    pub const fn new(status: u16, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            message: Cow::Borrowed(message),
            code,
            retry_after_secs: None,
        }
    }

    /// The same answer with a message made for this request.
    pub fn with_message(mut self, message: String) -> Self {
        self.message = Cow::Owned(message);
        self
    }

    pub const fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

/// Most of an unread request body drained to keep the connection; a larger (or unbounded) one
/// closes it instead, so a refusal never makes the proxy read a body it refused.
const MAX_DRAIN_BYTES: u64 = 64 * 1024;

/// Whether the unread body is small enough to drain.
fn drainable(session: &Session) -> bool {
    let headers = &session.req_header().headers;
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    headers
        .get(http::header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()))
        .is_none_or(|length| length.is_some_and(|n| n <= MAX_DRAIN_BYTES))
}

/// Writes `answer` to the client. A small unread request body is drained first so that the
/// connection can be reused; after a large one the connection is closed.
pub async fn send(session: &mut Session, answer: &LocalAnswer, request_id: &str) -> Result<()> {
    let body = Bytes::from(ErrorBody::new(answer.message.as_ref()).with_code(answer.code).to_json());
    let mut header = ResponseHeader::build(answer.status, Some(5))?;
    header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    header.insert_header(asf_core::ajax_wire::headers::REQUEST_ID, request_id)?;
    if let Some(secs) = answer.retry_after_secs {
        header.insert_header(http::header::RETRY_AFTER, secs.to_string())?;
    }
    if session.is_body_done() {
        // Nothing left to read.
    } else if !drainable(session) || session.drain_request_body().await.is_err() {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(header), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// A call the tenant's plan does not include: 402 (never 403, which clients read as bad
/// credentials), naming the plan that would allow it and where to upgrade.
pub struct PlanRequired<'a> {
    pub plan: &'a str,
    pub upgrade: Option<&'a str>,
    pub upgrade_url: &'a str,
}

impl PlanRequired<'_> {
    pub fn body(&self) -> String {
        let message = match self.upgrade {
            Some(upgrade) => format!(
                "Your plan ({}) does not include this operation; the {upgrade} plan does. Upgrade at {}",
                self.plan, self.upgrade_url
            ),
            None => format!("Your plan ({}) does not include this operation", self.plan),
        };
        let mut body =
            serde_json::to_value(ErrorBody::new(message).with_code("plan_upgrade_required")).unwrap_or_default();
        if let Some(fields) = body.as_object_mut() {
            fields.insert("plan".into(), self.plan.into());
            fields.insert("requiredPlan".into(), self.upgrade.into());
            fields.insert("upgradeUrl".into(), self.upgrade_url.into());
        }
        body.to_string()
    }
}

/// Writes a 402 for `required`.
pub async fn send_plan_required(session: &mut Session, required: &PlanRequired<'_>, request_id: &str) -> Result<()> {
    let body = Bytes::from(required.body());
    let mut header = ResponseHeader::build(402, Some(4))?;
    header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    header.insert_header(asf_core::ajax_wire::headers::REQUEST_ID, request_id)?;
    if !session.is_body_done() && (!drainable(session) || session.drain_request_body().await.is_err()) {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(header), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_402_names_the_plan_and_where_to_upgrade() {
        let body: serde_json::Value = serde_json::from_str(
            &PlanRequired {
                plan: "basic",
                upgrade: Some("pro"),
                upgrade_url: "https://gw.example/billing",
            }
            .body(),
        )
        .expect("json");
        assert_eq!(body["requiredPlan"], "pro");
        assert_eq!(body["plan"], "basic");
        assert_eq!(body["upgradeUrl"], "https://gw.example/billing");
        assert_eq!(body["errors"][0]["code"], "plan_upgrade_required");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("pro plan")));
    }
}
