//! `/api/login` and `/api/refresh`, as Ajax answers them: the session triple, 401 for wrong
//! credentials or a dead refresh token, 400 for a body that is not the request's shape, 422 for
//! values out of the spec's bounds. Ajax has no `/api/logout`: it answers 404.

use asf_core::ajax_wire::{LoginRequest, RefreshRequest};
use axum::http::StatusCode;
use axum::response::Response;

use crate::clock::Now;
use crate::reply::{self, AjaxError, parse_json};
use crate::state::Sim;
use crate::stats::Tally;

type Answer = Result<Response, AjaxError>;

/// Serves an account operation; the tally counts successes only.
pub fn serve(sim: &Sim, operation: &str, body: &[u8], now: Now) -> (Answer, Tally) {
    let (answer, tally) = match operation {
        "login" => (login(sim, body, now), Tally::Login),
        "refresh" => (refresh(sim, body, now), Tally::Refresh),
        _ => (Err(AjaxError::not_found()), Tally::Nothing),
    };
    let tally = if answer.is_ok() { tally } else { Tally::Nothing };
    (answer, tally)
}

fn login(sim: &Sim, body: &[u8], now: Now) -> Answer {
    let request: LoginRequest = parse_json(body)?;
    if request.login.is_empty() || request.login.len() > 64 {
        return Err(AjaxError::validation(
            "Login",
            "login",
            "invalid",
            "size must be between 1 and 64 bytes",
        ));
    }
    if request.password_hash.is_empty() || request.password_hash.len() > 2048 {
        return Err(AjaxError::validation(
            "Login",
            "passwordHash",
            "invalid",
            "size must be between 1 and 2048 bytes",
        ));
    }
    match request.user_role.as_deref() {
        None | Some("USER") => {}
        // The simulator has no PRO accounts.
        Some("PRO") => return Err(AjaxError::wrong_credentials()),
        Some(_) => {
            return Err(AjaxError::validation(
                "Login",
                "userRole",
                "invalid",
                "must be USER or PRO",
            ));
        }
    }
    let user_id = sim
        .world()
        .authenticate(&request.login, &request.password_hash, now)
        .ok_or_else(AjaxError::wrong_credentials)?;
    let triple = sim.sessions().issue(&user_id, now.mono);
    Ok(reply::json_of(StatusCode::OK, &triple))
}

fn refresh(sim: &Sim, body: &[u8], now: Now) -> Answer {
    let request: RefreshRequest = parse_json(body)?;
    let triple = sim
        .sessions()
        .refresh(&request.user_id, &request.refresh_token, now.mono)
        .ok_or_else(AjaxError::bad_refresh)?;
    Ok(reply::json_of(StatusCode::OK, &triple))
}
