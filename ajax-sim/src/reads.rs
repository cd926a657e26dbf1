//! The reads with simulated state: hub bindings, hub, devices, rooms, groups, hub users, logs
//! (newest first, paged), spaces and the user, each answered through its view.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use crate::api::Call;
use crate::hub::Hub;
use crate::reply::{self, AjaxError};
use crate::views;
use crate::world::World;

/// `getLogs` entries per page; pages run from 1 to 50, as in Ajax's spec.
pub const LOG_PAGE_SIZE: usize = 20;
const LOG_PAGES: usize = 50;

type Answer = Result<Response, AjaxError>;

fn ok(value: &Value) -> Answer {
    Ok(reply::json(StatusCode::OK, value))
}

fn list(items: impl Iterator<Item = Value>) -> Answer {
    ok(&Value::Array(items.collect()))
}

/// The path's hub (shared), brought up to date.
fn shared_hub<'w>(world: &'w mut World, call: &Call<'_>) -> Result<&'w Hub, AjaxError> {
    call.hub(world).map(|hub| &*hub)
}

pub fn hub_bindings(world: &mut World, call: &Call<'_>) -> Answer {
    let account = world.account(call.user).ok_or_else(AjaxError::not_found)?;
    list(
        account
            .hubs
            .iter()
            .map(|(id, role)| views::hub_binding(call.samples, id, role)),
    )
}

pub fn hub(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    ok(&views::hub(call.samples, hub))
}

pub fn devices(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    list(
        hub.devices
            .iter()
            .map(|device| views::device_item(call.samples, hub, device)),
    )
}

pub fn device(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    let device = hub.device(call.param("deviceId")?).ok_or_else(AjaxError::not_found)?;
    ok(&views::device(call.samples, hub, device))
}

pub fn rooms(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    list(hub.rooms.iter().map(|room| views::room(call.samples, "getRooms", room)))
}

pub fn room(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    let room = hub.room(call.param("roomId")?).ok_or_else(AjaxError::not_found)?;
    ok(&views::room(call.samples, "getRoom", room))
}

pub fn groups(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    list(
        hub.groups
            .iter()
            .map(|group| views::group(call.samples, "getGroups", hub, group)),
    )
}

pub fn group(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    let group = hub.group(call.param("groupId")?).ok_or_else(AjaxError::not_found)?;
    ok(&views::group(call.samples, "getGroup", hub, group))
}

pub fn hub_users(world: &mut World, call: &Call<'_>) -> Answer {
    let hub = shared_hub(world, call)?;
    list(hub.users.iter().map(|user| views::hub_user(call.samples, user)))
}

/// `getLogs?page=N`: newest first, [`LOG_PAGE_SIZE`] a page.
pub fn logs(world: &mut World, call: &Call<'_>) -> Answer {
    let page = match call.query_param("page") {
        None => 1,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|page| (1..=LOG_PAGES).contains(page))
            .ok_or_else(|| AjaxError::bad_parameter("page"))?,
    };
    let hub = shared_hub(world, call)?;
    list(
        hub.logs()
            .skip((page - 1) * LOG_PAGE_SIZE)
            .take(LOG_PAGE_SIZE)
            .map(|entry| views::log(call.samples, hub, entry)),
    )
}

pub fn spaces(world: &mut World, call: &Call<'_>) -> Answer {
    let account = world.account(call.user).ok_or_else(AjaxError::not_found)?;
    list(
        world
            .space(&account.space_id)
            .into_iter()
            .map(|space| views::space_item(call.samples, space)),
    )
}

pub fn space(world: &mut World, call: &Call<'_>) -> Answer {
    let space = world.space(call.param("spaceId")?).ok_or_else(AjaxError::not_found)?;
    ok(&views::space(call.samples, world, space))
}

pub fn user(world: &mut World, call: &Call<'_>) -> Answer {
    let account = world.account(call.user).ok_or_else(AjaxError::not_found)?;
    ok(&views::user(call.samples, account))
}
