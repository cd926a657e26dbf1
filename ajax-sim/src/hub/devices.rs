//! Device commands and edits: `SWITCH_ON`/`SWITCH_OFF` switch relays and switches, the other
//! commands Ajax knows are accepted without effect, and a `PUT` applies checked fields.

use serde_json::{Map, Value};

use super::{Actor, Hub, HubError, invalid};
use crate::clock::Now;

/// Commands Ajax's `DeviceCommand` takes (from the spec's enum).
pub const DEVICE_COMMANDS: [&str; 35] = [
    "CONNECTION_TEST_START",
    "CONNECTION_TEST_STOP",
    "DETECTION_TEST_START",
    "DETECTION_TEST_STOP",
    "MUTE",
    "SWITCH_ON",
    "SWITCH_OFF",
    "SOUND_TEST_START",
    "UNLOCK_DEVICE",
    "DEVICE_SWITCH_STATE",
    "FIRE_SENSOR_TEST",
    "MOTION_OUTDOOR_DETECTION_TEST_START",
    "MOTION_OUTDOOR_UPPER_MOTION_SENSOR_DETECTION_TEST_START",
    "MOTION_OUTDOOR_LOWER_MOTION_SENSOR_DETECTION_TEST_START",
    "MOTION_OUTDOOR_ANTIMASKING_MOTION_SENSOR_DETECTION_TEST_START",
    "MULTI_TRANSMITTER_POWER_RESET",
    "DISABLE_BYPASS",
    "ENABLE_ENGINEER_BYPASS",
    "ENABLE_TAMPER_BYPASS",
    "DISABLE_DEVICE_ONETIME_BYPASS",
    "ENABLE_WHOLE_DEVICE_ONETIME_BYPASS",
    "ENABLE_TAMPER_DEVICE_ONETIME_BYPASS",
    "RESET_PASSWORD",
    "RESET_FORCE_DISARM_PASSWORD",
    "MAKE_PHOTO",
    "UNREGISTERED_FIBRA_DEVICE_BLINK_START",
    "UNREGISTERED_FIBRA_DEVICE_BLINK_STOP",
    "START_CALIBRATION",
    "STOP_CALIBRATION",
    "BUS_POWER_ON",
    "BUS_POWER_OFF",
    "IWH_TEST_START",
    "IWH_TEST_STOP",
    "SELF_TEST",
    "BRIGHTNESS",
];

/// Device fields the simulator derives itself: a `PUT` cannot set them.
const READ_ONLY_DEVICE_FIELDS: [&str; 4] = ["id", "deviceType", "switchState", "online"];

impl Hub {
    /// A `DeviceCommand`: `SWITCH_ON`/`SWITCH_OFF` switch relays and switches; the other commands
    /// Ajax knows are accepted and change nothing here.
    pub fn device_command(
        &mut self,
        device_id: &str,
        command: &str,
        device_type: &str,
        actor: &Actor,
        now: Now,
    ) -> Result<(), HubError> {
        let device = self
            .devices
            .iter_mut()
            .find(|d| d.id == device_id)
            .ok_or(HubError::NotFound)?;
        if !DEVICE_COMMANDS.contains(&command) {
            return Err(invalid("command", format!("unknown command {command}")));
        }
        if device.device_type != device_type {
            return Err(invalid(
                "deviceType",
                format!("device {device_id} is a {}", device.device_type),
            ));
        }
        let switch_to = match command {
            "SWITCH_ON" => true,
            "SWITCH_OFF" => false,
            _ => return Ok(()),
        };
        let Some(state) = device.switched_on.as_mut() else {
            return Err(invalid(
                "command",
                format!("a {} cannot be switched", device.device_type),
            ));
        };
        *state = switch_to;
        let tag = if switch_to { "SwitchedOn" } else { "SwitchedOff" };
        self.log_by(actor, tag, ("COMMON", "SMART_HOME_ACTUATOR"), now.unix_ms);
        Ok(())
    }

    /// A device `PUT`: `deviceName`, `roomId` and `groupId` are checked and applied, other writable
    /// fields are kept as given and shown in later reads.
    pub fn update_device(&mut self, device_id: &str, fields: Map<String, Value>) -> Result<(), HubError> {
        let index = self
            .devices
            .iter()
            .position(|d| d.id == device_id)
            .ok_or(HubError::NotFound)?;
        let mut updated = self.devices[index].clone();
        for (name, value) in fields {
            match name.as_str() {
                "deviceName" => match value.as_str() {
                    Some(text) if !text.trim().is_empty() => updated.name = text.to_owned(),
                    _ => return Err(invalid("deviceName", "must not be blank")),
                },
                "roomId" => match value.as_str() {
                    Some(room) if self.room(room).is_some() => updated.room_id = room.to_owned(),
                    _ => return Err(invalid("roomId", "no such room on this hub")),
                },
                "groupId" => match value.as_str() {
                    // Ajax: null "only valid in case groupsMode is turned OFF".
                    None if value.is_null() && !self.groups_enabled => updated.group_id = None,
                    Some(group) if self.group(group).is_some() => updated.group_id = Some(group.to_owned()),
                    _ => return Err(invalid("groupId", "no such group on this hub")),
                },
                field if READ_ONLY_DEVICE_FIELDS.contains(&field) => {}
                _ => {
                    updated.extra.insert(name, value);
                }
            }
        }
        self.devices[index] = updated;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{actor, hub};
    use super::*;

    #[test]
    fn switching_a_relay_changes_its_state_and_checks_type_and_command() {
        let (mut hub, now) = (hub(), Now::system());
        hub.device_command("D1", "SWITCH_ON", "Relay", &actor(), now)
            .expect("switch on");
        assert_eq!(hub.device("D1").and_then(|d| d.switched_on), Some(true));
        assert_eq!(hub.logs().next().map(|e| e.tag), Some("SwitchedOn"));
        let wrong_type = hub.device_command("D1", "SWITCH_OFF", "WallSwitch", &actor(), now);
        assert!(matches!(
            wrong_type,
            Err(HubError::Invalid {
                field: "deviceType",
                ..
            })
        ));
        let unknown = hub.device_command("D1", "EXPLODE", "Relay", &actor(), now);
        assert!(matches!(unknown, Err(HubError::Invalid { field: "command", .. })));
        let missing = hub.device_command("D9", "SWITCH_ON", "Relay", &actor(), now);
        assert_eq!(missing, Err(HubError::NotFound));
        hub.device_command("D1", "SELF_TEST", "Relay", &actor(), now)
            .expect("accepted, no effect");
        assert_eq!(hub.device("D1").and_then(|d| d.switched_on), Some(true));
    }

    #[test]
    fn a_device_update_applies_checked_fields_and_keeps_the_rest() {
        let mut hub = hub();
        let fields = serde_json::json!({"deviceName": "Porch", "roomId": "R1", "id": "X", "nightModeArm": true});
        let Value::Object(fields) = fields else {
            panic!("object");
        };
        hub.update_device("D1", fields).expect("update");
        let device = hub.device("D1").expect("device");
        assert_eq!((device.id.as_str(), device.name.as_str()), ("D1", "Porch"));
        assert_eq!(device.extra.get("nightModeArm"), Some(&Value::Bool(true)));
        let mut bad = Map::new();
        bad.insert("roomId".into(), Value::from("R9"));
        bad.insert("deviceName".into(), Value::from("Lost"));
        assert!(hub.update_device("D1", bad).is_err());
        assert_eq!(hub.device("D1").map(|d| d.name.as_str()), Some("Porch"));
    }
}
