//! How simulated objects look on the wire. Each view starts from its operation's sample (so every
//! field the spec defines is there, with a value valid against the schema) and fills in what the
//! simulator knows: ids, names, states, and whatever a client set.

use asf_core::ajax_wire::ErrorBody;
use serde_json::{Map, Value, json};

use crate::hub::{Device, Group, Hub, HubUser, LogEntry, OpStatus, Room};
use crate::samples::Samples;
use crate::world::{Account, Space, World};

/// The template with `fields` set over it.
fn fill<'a>(
    mut template: Map<String, Value>,
    fields: impl IntoIterator<Item = (&'a str, Value)>,
) -> Map<String, Value> {
    for (name, value) in fields {
        template.insert(name.to_owned(), value);
    }
    template
}

/// Sets `parent.key` when the template has a `parent` object.
fn set_in(map: &mut Map<String, Value>, parent: &str, key: &str, value: Value) {
    if let Some(Value::Object(inner)) = map.get_mut(parent) {
        inner.insert(key.to_owned(), value);
    }
}

/// An item of `getHubBindings`.
pub fn hub_binding(samples: &Samples, hub_id: &str, role: &str) -> Value {
    let fields = [("hubId", json!(hub_id)), ("hubBindingRole", json!(role))];
    Value::Object(fill(samples.template("getHubBindings"), fields))
}

/// `getHub`: a healthy hub with the simulator's name and arming state.
pub fn hub(samples: &Samples, hub: &Hub) -> Value {
    let mut map = fill(
        samples.template("getHub"),
        [
            ("id", json!(hub.id)),
            ("name", json!(hub.name)),
            ("state", json!(hub.state())),
            ("groupsEnabled", json!(hub.groups_enabled)),
            ("hubSubtype", json!(hub.subtype)),
            ("hubMalfunctions", json!([])),
            ("tampered", json!(false)),
            ("battery", json!({"chargeLevelPercentage": 100, "state": "CHARGED"})),
        ],
    );
    set_in(&mut map, "twoStageArming", "enabled", json!(hub.two_stage));
    set_in(&mut map, "warnings", "allDevices", json!(0));
    set_in(&mut map, "warnings", "hub", json!(0));
    Value::Object(map)
}

/// `getDevice`: the device's common fields, its type's own, then what clients set.
pub fn device(samples: &Samples, hub: &Hub, device: &Device) -> Value {
    let armed = if hub.device_armed(device) { "ARMED" } else { "DISARMED" };
    let map = fill(
        samples.template("getDevice"),
        [
            ("id", json!(device.id)),
            ("deviceName", json!(device.name)),
            ("deviceType", json!(device.device_type)),
            ("roomId", json!(device.room_id)),
            ("groupId", json!(device.group_id)),
            ("online", json!(true)),
            ("malfunctions", json!([])),
            ("capabilities", json!([])),
            ("color", json!("WHITE")),
            ("signalLevel", json!("STRONG")),
            ("firmwareVersion", json!("5.60.1.0")),
            ("temperature", json!(21)),
            ("state", json!("PASSIVE")),
            ("estimatedArmingState", json!(armed)),
            ("bypassState", json!([])),
        ],
    );
    // Relays and switches are mains powered; detectors run on batteries and have a tamper.
    let own: Vec<(&str, Value)> = match device.switched_on {
        Some(on) => {
            let state = if on { "SWITCHED_ON" } else { "SWITCHED_OFF" };
            vec![("switchState", json!([state]))]
        }
        None => {
            let mut fields = vec![("batteryChargeLevelPercentage", json!(100)), ("tampered", json!(false))];
            match device.device_type {
                "DoorProtect" => fields.push(("reedClosed", json!(true))),
                "MotionProtect" => fields.push(("sensitivity", json!(1))),
                "FireProtect" => fields.extend([
                    ("smokeAlarmDetected", json!(false)),
                    ("temperatureAlarmDetected", json!(false)),
                ]),
                _ => {}
            }
            fields
        }
    };
    let map = fill(map, own);
    let map = fill(map, device.extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
    Value::Object(map)
}

/// An item of `getDevices`: the summary, with the full device as `model`.
pub fn device_item(samples: &Samples, hub: &Hub, device: &Device) -> Value {
    let model = self::device(samples, hub, device);
    let summary = ["id", "deviceName", "deviceType", "roomId", "groupId", "online", "color"]
        .into_iter()
        .filter_map(|name| Some((name, model.get(name)?.clone())))
        .collect::<Vec<_>>();
    let map = fill(samples.template("getDevices"), summary);
    Value::Object(fill(map, [("model", model)]))
}

/// A room, as `getRooms` (an item) or `getRoom` answers it.
pub fn room(samples: &Samples, operation: &str, room: &Room) -> Value {
    let fields = [("id", json!(room.id)), ("roomName", json!(room.name))];
    Value::Object(fill(samples.template(operation), fields))
}

/// A group, as `getGroups` (an item) or `getGroup` answers it.
pub fn group(samples: &Samples, operation: &str, hub: &Hub, group: &Group) -> Value {
    let state = if group.armed { "ARMED" } else { "DISARMED" };
    let mut map = fill(
        samples.template(operation),
        [
            ("id", json!(group.id)),
            ("groupName", json!(group.name)),
            ("state", json!(state)),
        ],
    );
    set_in(&mut map, "twoStageArming", "enabled", json!(hub.two_stage));
    Value::Object(map)
}

/// An item of `getUsersBoundToHub`.
pub fn hub_user(samples: &Samples, user: &HubUser) -> Value {
    let fields = [
        ("id", json!(user.id)),
        ("firstName", json!(user.first_name)),
        ("hubBindingRole", json!(user.role)),
    ];
    let mut map = fill(samples.template("getUsersBoundToHub"), fields.clone());
    if let Some(Value::Object(model)) = map.get_mut("model") {
        *model = fill(std::mem::take(model), fields);
    }
    Value::Object(map)
}

/// An item of `getLogs`.
pub fn log(samples: &Samples, hub: &Hub, entry: &LogEntry) -> Value {
    let mut map = fill(
        samples.template("getLogs"),
        [
            ("eventId", json!(entry.event_id)),
            ("eventTag", json!(entry.tag)),
            ("eventType", json!(entry.event_type)),
            ("eventTypeV2", json!(entry.event_type_v2)),
            ("hubId", json!(hub.id)),
            ("hubName", json!(hub.name)),
            ("sourceObjectType", json!(entry.source_type)),
            ("sourceObjectId", json!(entry.source_id)),
            ("sourceObjectName", json!(entry.source_name)),
            ("timestamp", json!(entry.timestamp_ms)),
            ("transition", json!(entry.transition)),
            ("additionalDataV2", json!([])),
        ],
    );
    match &entry.room {
        Some((id, name)) => {
            map.insert("sourceRoomId".into(), json!(id));
            map.insert("sourceRoomName".into(), json!(name));
        }
        None => {
            map.remove("sourceRoomId");
            map.remove("sourceRoomName");
        }
    }
    Value::Object(map)
}

/// An item of `getSpacesByUser`.
pub fn space_item(samples: &Samples, space: &Space) -> Value {
    let fields = [("id", json!(space.id)), ("name", json!(space.name))];
    Value::Object(fill(samples.template("getSpacesByUser"), fields))
}

/// `getSpaceByUser`: the space with its hubs as devices and their rooms.
pub fn space(samples: &Samples, world: &World, space: &Space) -> Value {
    let hubs = space.hub_ids.iter().filter_map(|id| world.hub(id));
    let devices: Vec<Value> = space
        .hub_ids
        .iter()
        .map(|id| json!({"id": id, "type": "HUB"}))
        .collect();
    let rooms: Vec<Value> = hubs
        .flat_map(|hub| &hub.rooms)
        .map(|room| json!({"id": room.id, "name": room.name}))
        .collect();
    let fields = [
        ("id", json!(space.id)),
        ("name", json!(space.name)),
        ("devices", json!(devices)),
        ("rooms", json!(rooms)),
    ];
    Value::Object(fill(samples.template("getSpaceByUser"), fields))
}

/// `getUser`.
pub fn user(samples: &Samples, account: &Account) -> Value {
    let fields = [
        ("login", json!(account.login)),
        ("firstName", json!(account.first_name)),
        ("passwordIntegrity", json!([])),
    ];
    Value::Object(fill(samples.template("getUser"), fields))
}

/// `getHubTwoStageArmingStatus` / `getGroupTwoStageArmingStatus`.
pub fn arming_status(status: OpStatus) -> Value {
    match status {
        OpStatus::InProgress { .. } => json!({"status": "IN_PROGRESS"}),
        OpStatus::Success => json!({"status": "SUCCESS"}),
        OpStatus::Cancelled => json!({
            "status": "ERROR",
            "errorMessage": ErrorBody::new("Arming was cancelled by a disarm"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Now;
    use crate::seed;

    fn fixtures() -> (Samples, World) {
        let samples = Samples::builtin().expect("samples");
        (samples, World::seeded(Now::system()))
    }

    #[test]
    fn the_hub_view_keeps_the_samples_fields_and_shows_the_simulated_state() {
        let (samples, world) = fixtures();
        let hub = world.hub(seed::DEMO_HUB_ID).expect("hub");
        let view = self::hub(&samples, hub);
        assert_eq!(view["id"], seed::DEMO_HUB_ID);
        assert_eq!(view["name"], "Home");
        assert_eq!(view["state"], "DISARMED");
        assert_eq!(view["twoStageArming"]["enabled"], false);
        assert!(view.get("firmware").is_some(), "sample fields stay");
    }

    #[test]
    fn a_relay_shows_its_switch_state_and_a_door_its_battery() {
        let (samples, world) = fixtures();
        let hub = world.hub(seed::DEMO_HUB_ID).expect("hub");
        let relay = hub.device(seed::DEMO_RELAY_ID).expect("relay");
        let view = device(&samples, hub, relay);
        assert_eq!(view["switchState"], json!(["SWITCHED_OFF"]));
        assert!(view.get("batteryChargeLevelPercentage").is_none());
        let door = hub.device(seed::DEMO_DOOR_ID).expect("door");
        let item = device_item(&samples, hub, door);
        assert_eq!(item["deviceType"], "DoorProtect");
        assert_eq!(item["model"]["batteryChargeLevelPercentage"], 100);
        assert_eq!(item["groupId"], Value::Null);
    }

    #[test]
    fn a_log_entry_without_a_room_has_no_room_fields() {
        let (samples, world) = fixtures();
        let hub = world.hub(seed::DEMO_HUB_ID).expect("hub");
        let entries: Vec<Value> = hub.logs().map(|e| log(&samples, hub, e)).collect();
        let disarm = entries.iter().find(|e| e["eventTag"] == "Disarm").expect("disarm");
        assert_eq!(disarm["sourceObjectType"], "USER");
        assert!(disarm.get("sourceRoomId").is_none());
        let door = entries.iter().find(|e| e["eventTag"] == "DoorOpened").expect("door");
        assert_eq!(door["sourceRoomName"], "Hall");
        assert!(door["timestamp"].is_u64());
    }

    #[test]
    fn a_cancelled_arming_reports_an_ajax_error_message() {
        let view = arming_status(OpStatus::Cancelled);
        assert_eq!(view["status"], "ERROR");
        assert!(view["errorMessage"]["messageId"].is_string());
    }
}
