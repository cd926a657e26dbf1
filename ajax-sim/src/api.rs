//! The `/api` pipeline every simulated Ajax call goes through, in order: API key, fault plan and
//! rate limit (forced 429 or over the limit), injected latency, injected errors, route, then by
//! class: account calls, public samples, or user calls (session, ownership, offline hub, then the
//! operation).

use std::sync::Arc;
use std::time::Instant;

use asf_core::ajax_wire::headers;
use asf_core::catalogue::{Catalogue, Miss, RouteClass, RouteMatch};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use crate::clock::Now;
use crate::hub::{Actor, Hub};
use crate::limiter::{Admission, retry_after_secs};
use crate::reply::AjaxError;
use crate::samples::Samples;
use crate::state::Sim;
use crate::stats::{RecordedRequest, Tally};
use crate::world::World;
use crate::{account, auth, commands, reads};

/// Serves any request outside `/_sim`.
pub async fn handle(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut record = RecordedRequest::new(&method, &uri, &request_headers, Now::system().unix_ms);
    record.api_key_ok = auth::api_key_ok(&sim.config.api_key, &request_headers);
    let route = lookup(&method, uri.path());
    record.operation_id = route.as_ref().ok().map(|m| m.route.operation_id.as_str());
    let served = if record.api_key_ok {
        let request = Request {
            headers: &request_headers,
            body: &body,
            query: uri.query(),
        };
        serve(&sim, &request, route).await
    } else {
        Served::refused(AjaxError::bad_api_key(), Tally::Nothing)
    };
    record.status = served.response.status().as_u16();
    tracing::debug!(
        method = %method,
        path = uri.path(),
        operation = record.operation_id,
        status = record.status,
        "served"
    );
    sim.stats().record(record, served.accepted, served.tally);
    served.response
}

/// The parts of a request the operations read.
struct Request<'r> {
    headers: &'r HeaderMap,
    body: &'r [u8],
    query: Option<&'r str>,
}

/// An answer, and what it counts towards.
struct Served {
    response: Response,
    /// Passed the key check and the rate limit.
    accepted: bool,
    tally: Tally,
}

impl Served {
    fn refused(error: AjaxError, tally: Tally) -> Self {
        Self {
            response: error.into_response(),
            accepted: false,
            tally,
        }
    }

    fn accepted(response: Response, tally: Tally) -> Self {
        Self {
            response,
            accepted: true,
            tally,
        }
    }
}

/// The route for a path under `/api`: 404 outside it or for an unknown path, 405 for a known path
/// with another method.
fn lookup<'p>(method: &Method, path: &'p str) -> Result<RouteMatch<'static, 'p>, AjaxError> {
    let below = path
        .strip_prefix("/api")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(AjaxError::not_found)?;
    Catalogue::builtin()
        .lookup(method.as_str(), below)
        .map_err(|miss| match miss {
            Miss::UnknownPath => AjaxError::not_found(),
            Miss::MethodNotAllowed => AjaxError::method_not_allowed(),
        })
}

/// A call with a valid key.
async fn serve(sim: &Sim, request: &Request<'_>, route: Result<RouteMatch<'static, '_>, AjaxError>) -> Served {
    let hub_id = route.as_ref().ok().and_then(|m| m.param("hubId"));
    let plan = sim.faults().plan(hub_id);
    // Admitted as it arrives, so the witness sees arrival times whatever latency is injected.
    let admission = if plan.forced_429 {
        None
    } else {
        Some(sim.limiter().admit(Instant::now()))
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let over_limit = |retry_after: u64| {
        if plan.limit_as_200 {
            AjaxError::limit_as_ok()
        } else {
            AjaxError::too_many_requests(retry_after)
        }
    };
    match admission {
        None => return Served::refused(over_limit(1), Tally::Forced429),
        Some(Admission::Refused { retry_after }) => {
            let error = over_limit(retry_after_secs(retry_after));
            return Served::refused(error, Tally::OverLimit);
        }
        Some(Admission::Accepted) => {}
    }
    if let Some(status) = plan.error {
        let error = AjaxError::server_error(status);
        return Served::accepted(error.into_response(), Tally::InjectedError);
    }
    let route = match route {
        Ok(route) => route,
        Err(error) => return Served::accepted(error.into_response(), Tally::Nothing),
    };
    let now = Now::system();
    let operation = route.route.operation_id.as_str();
    let (result, tally) = match route.route.class {
        RouteClass::Account => account::serve(sim, operation, request.body, now),
        RouteClass::Public => (Ok(sim.samples.reply(operation)), Tally::Nothing),
        _ => {
            let result = user_call(sim, &route, request, plan.hub_offline, now);
            (result, Tally::Nothing)
        }
    };
    Served::accepted(result.unwrap_or_else(IntoResponse::into_response), tally)
}

/// A `/user/{userId}/...` call: a live session of the path's user, who has the path's hub and space.
fn user_call(
    sim: &Sim,
    route: &RouteMatch<'static, '_>,
    request: &Request<'_>,
    hub_offline: bool,
    now: Now,
) -> Result<Response, AjaxError> {
    let token = request
        .headers
        .get(headers::SESSION_TOKEN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(AjaxError::bad_session)?;
    let user = sim
        .sessions()
        .user_of(token, now.mono)
        .map(str::to_owned)
        .ok_or_else(AjaxError::bad_session)?;
    if route.owner() != Some(user.as_str()) {
        return Err(AjaxError::forbidden());
    }
    let mut world = sim.world();
    let owns_hub = route.param("hubId").is_none_or(|hub| world.owns_hub(&user, hub));
    let owns_space = route
        .param("spaceId")
        .is_none_or(|space| world.owns_space(&user, space));
    if !(owns_hub && owns_space) {
        return Err(AjaxError::forbidden());
    }
    if hub_offline {
        return Err(AjaxError::hub_offline());
    }
    let call = Call {
        samples: &sim.samples,
        user: &user,
        route,
        body: request.body,
        query: request.query,
        now,
    };
    dispatch(&mut world, &call)
}

/// The operations with simulated state; every other one answers its sample.
fn dispatch(world: &mut World, call: &Call<'_>) -> Result<Response, AjaxError> {
    let operation = call.route.route.operation_id.as_str();
    match operation {
        "getHubBindings" => reads::hub_bindings(world, call),
        "getHub" => reads::hub(world, call),
        "getDevices" => reads::devices(world, call),
        "getDevice" => reads::device(world, call),
        "getRooms" => reads::rooms(world, call),
        "getRoom" => reads::room(world, call),
        "getGroups" => reads::groups(world, call),
        "getGroup" => reads::group(world, call),
        "getUsersBoundToHub" => reads::hub_users(world, call),
        "getLogs" => reads::logs(world, call),
        "getSpacesByUser" => reads::spaces(world, call),
        "getSpaceByUser" => reads::space(world, call),
        "getUser" => reads::user(world, call),
        "sendArm" => commands::arm_hub(world, call),
        "sendArmForGroup" => commands::arm_group(world, call),
        "getHubTwoStageArmingStatus" => commands::arming_status(world, call, None),
        "getGroupTwoStageArmingStatus" => commands::arming_status(world, call, Some(call.param("groupId")?)),
        "sendPanic" => commands::panic(world, call),
        "sendDeviceCommand" => commands::device_command(world, call),
        "updateDevice" => commands::update_device(world, call),
        _ => Ok(call.samples.reply(operation)),
    }
}

/// One authorised user call, as the operations see it.
pub struct Call<'a> {
    pub samples: &'a Samples,
    /// The caller's Ajax user id (the path's owner).
    pub user: &'a str,
    pub route: &'a RouteMatch<'static, 'a>,
    pub body: &'a [u8],
    pub query: Option<&'a str>,
    pub now: Now,
}

impl<'a> Call<'a> {
    /// A path parameter (404 if the route has none by that name, which the catalogue rules out).
    pub fn param(&self, name: &str) -> Result<&'a str, AjaxError> {
        self.route.param(name).ok_or_else(AjaxError::not_found)
    }

    /// A query parameter, undecoded (the simulator's ids and tokens are hex).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The path's hub, brought up to date.
    pub fn hub<'w>(&self, world: &'w mut World) -> Result<&'w mut Hub, AjaxError> {
        let id = self.param("hubId")?;
        world.hub_at(id, self.now).ok_or_else(AjaxError::not_found)
    }

    /// The caller, as the source of log entries.
    pub fn actor(&self, world: &World) -> Result<Actor, AjaxError> {
        let account = world.account(self.user).ok_or_else(AjaxError::forbidden)?;
        Ok(account.actor())
    }
}
