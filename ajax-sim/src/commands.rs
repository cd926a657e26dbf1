//! The commands with simulated effect: hub and group arming (with two-stage arming and its status
//! polls), panic, device commands and device edits. Bodies are read as Ajax reads them: not JSON
//! or a field of the wrong type is 400, a missing or unknown value 422.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Call;
use crate::hub::{ArmCommand, Arming, HubError};
use crate::reply::{self, AjaxError, parse_json};
use crate::views;
use crate::world::World;

type Answer = Result<Response, AjaxError>;

/// `ArmCommand` / `GroupArmCommand`.
#[derive(Deserialize)]
struct ArmBody {
    command: Option<String>,
    // Ajax requires it; the simulator has no arming problems to ignore, but checks its type.
    #[serde(rename = "ignoreProblems")]
    _ignore_problems: Option<bool>,
}

/// `DeviceCommand`.
#[derive(Deserialize)]
struct DeviceCommandBody {
    command: Option<String>,
    #[serde(rename = "deviceType")]
    device_type: Option<String>,
}

fn missing(resource: &str, field: &str) -> AjaxError {
    AjaxError::validation(resource, field, "missing_field", "must not be blank")
}

fn hub_error(resource: &str, error: HubError) -> AjaxError {
    match error {
        HubError::NotFound => AjaxError::not_found(),
        HubError::Invalid { field, message } => AjaxError::validation(resource, field, "invalid", &message),
        HubError::WrongState(message) => AjaxError::precondition(message),
    }
}

fn arm_command(body: &[u8], resource: &str) -> Result<ArmCommand, AjaxError> {
    let body: ArmBody = parse_json(body)?;
    let command = body.command.ok_or_else(|| missing(resource, "command"))?;
    ArmCommand::parse(&command)
        .ok_or_else(|| AjaxError::validation(resource, "command", "invalid", "unknown arming command"))
}

fn arming_reply(arming: Arming) -> Response {
    match arming {
        Arming::Done => reply::empty(StatusCode::NO_CONTENT),
        Arming::Pending { token } => reply::json(StatusCode::ACCEPTED, &json!({ "token": token })),
    }
}

/// `PUT .../hubs/{hubId}/commands/arming`: 204, or 202 with a token on a two-stage hub.
pub fn arm_hub(world: &mut World, call: &Call<'_>) -> Answer {
    let command = arm_command(call.body, "ArmCommand")?;
    let actor = call.actor(world)?;
    let arming = call
        .hub(world)?
        .arm(command, &actor, call.now)
        .map_err(|e| hub_error("ArmCommand", e))?;
    Ok(arming_reply(arming))
}

/// `PUT .../groups/{groupId}/commands/arming`.
pub fn arm_group(world: &mut World, call: &Call<'_>) -> Answer {
    let command = arm_command(call.body, "GroupArmCommand")?;
    let group = call.param("groupId")?;
    let actor = call.actor(world)?;
    let arming = call
        .hub(world)?
        .arm_group(group, command, &actor, call.now)
        .map_err(|e| hub_error("GroupArmCommand", e))?;
    Ok(arming_reply(arming))
}

/// `GET .../commands/arming?token=T` (of the hub, or with `group` of that group).
pub fn arming_status(world: &mut World, call: &Call<'_>, group: Option<&str>) -> Answer {
    let token = call
        .query_param("token")
        .filter(|token| !token.is_empty())
        .ok_or_else(|| AjaxError::bad_parameter("token"))?;
    let status = call
        .hub(world)?
        .arming_status(token, group)
        .ok_or_else(AjaxError::not_found)?;
    Ok(reply::json(StatusCode::OK, &views::arming_status(status)))
}

/// `PUT .../commands/panic`: 204 and a Panic entry in the log. The location body is optional here.
pub fn panic(world: &mut World, call: &Call<'_>) -> Answer {
    if !call.body.is_empty() {
        parse_json::<Value>(call.body)?;
    }
    let actor = call.actor(world)?;
    call.hub(world)?.panic(&actor, call.now);
    Ok(reply::empty(StatusCode::NO_CONTENT))
}

/// `POST .../devices/{deviceId}/command`: 204 ("executed").
pub fn device_command(world: &mut World, call: &Call<'_>) -> Answer {
    let body: DeviceCommandBody = parse_json(call.body)?;
    let command = body.command.ok_or_else(|| missing("DeviceCommand", "command"))?;
    let device_type = body.device_type.ok_or_else(|| missing("DeviceCommand", "deviceType"))?;
    let device = call.param("deviceId")?;
    let actor = call.actor(world)?;
    call.hub(world)?
        .device_command(device, &command, &device_type, &actor, call.now)
        .map_err(|e| hub_error("DeviceCommand", e))?;
    Ok(reply::empty(StatusCode::NO_CONTENT))
}

/// `PUT .../devices/{deviceId}`: 204; the fields show in later reads.
pub fn update_device(world: &mut World, call: &Call<'_>) -> Answer {
    let Value::Object(fields) = parse_json::<Value>(call.body)? else {
        return Err(AjaxError::validation(
            "ProtoDevice",
            "body",
            "invalid",
            "a device object is required",
        ));
    };
    let device = call.param("deviceId")?;
    call.hub(world)?
        .update_device(device, fields)
        .map_err(|e| hub_error("ProtoDevice", e))?;
    Ok(reply::empty(StatusCode::NO_CONTENT))
}
