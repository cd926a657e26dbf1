//! One simulated hub: its rooms, groups, devices, users and event log. The rules that change it
//! live in the child modules: `arming` (modes, groups, two-stage arming) and `devices` (device
//! commands and edits). Every change made by a user appends a log entry with that user as source.

mod arming;
mod devices;

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use crate::clock::Now;

use arming::ArmingOp;
pub use arming::{ArmCommand, Arming, OpStatus};

/// Log entries kept per hub (newest first); older ones fall off. `getLogs` pages through them.
pub const LOG_CAPACITY: usize = 1_000;

/// The user a change is made by: the source of its log entry.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub name: String,
}

/// A hub's security mode while groups mode is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disarmed,
    Armed,
    Night,
}

#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub armed: bool,
}

/// A user bound to the hub, as `getUsersBoundToHub` lists them.
#[derive(Debug, Clone)]
pub struct HubUser {
    pub id: String,
    pub first_name: String,
    /// `MASTER`, `USER` or `PRO`.
    pub role: &'static str,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub name: String,
    /// Ajax's `deviceType`, e.g. `DoorProtect`.
    pub device_type: &'static str,
    /// The log's `sourceObjectType` for it, e.g. `DOOR_PROTECT`.
    pub source_type: &'static str,
    pub room_id: String,
    pub group_id: Option<String>,
    /// `Some` for relays and switches: whether it is switched on.
    pub switched_on: Option<bool>,
    /// Fields a client set with `PUT` that the simulator keeps as given.
    pub extra: Map<String, Value>,
}

/// One entry of the hub's event log, in Ajax's terms.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub event_id: String,
    pub tag: &'static str,
    pub event_type: &'static str,
    pub event_type_v2: &'static str,
    pub source_type: &'static str,
    pub source_id: String,
    pub source_name: String,
    /// `(id, name)` of the source's room, when it has one.
    pub room: Option<(String, String)>,
    pub timestamp_ms: u64,
    pub transition: &'static str,
}

/// Why a hub refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubError {
    /// No such device or group on this hub.
    NotFound,
    /// A body field has a value the operation does not take.
    Invalid { field: &'static str, message: String },
    /// The hub is in the wrong state (or mode) for it.
    WrongState(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> HubError {
    HubError::Invalid {
        field,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Hub {
    pub id: String,
    pub name: String,
    /// `hubSubtype`, e.g. `HUB_2_PLUS`.
    pub subtype: &'static str,
    pub groups_enabled: bool,
    pub two_stage: bool,
    /// Security mode while groups mode is off.
    pub mode: Mode,
    /// Night mode while groups mode is on.
    pub night_mode: bool,
    pub rooms: Vec<Room>,
    pub groups: Vec<Group>,
    pub devices: Vec<Device>,
    pub users: Vec<HubUser>,
    logs: VecDeque<LogEntry>,
    operations: HashMap<String, ArmingOp>,
    next_event: u64,
}

impl Hub {
    /// A disarmed hub with nothing in it.
    pub fn new(id: String, name: String, subtype: &'static str) -> Self {
        Self {
            id,
            name,
            subtype,
            groups_enabled: false,
            two_stage: false,
            mode: Mode::Disarmed,
            night_mode: false,
            rooms: Vec::new(),
            groups: Vec::new(),
            devices: Vec::new(),
            users: Vec::new(),
            logs: VecDeque::new(),
            operations: HashMap::new(),
            next_event: 1,
        }
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    pub fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The log, newest first.
    pub fn logs(&self) -> impl Iterator<Item = &LogEntry> {
        self.logs.iter()
    }

    /// Appends an entry (its `event_id` is assigned here).
    pub fn log(&mut self, mut entry: LogEntry) {
        entry.event_id = format!("{}{:08X}", self.id, self.next_event);
        self.next_event += 1;
        self.logs.push_front(entry);
        self.logs.truncate(LOG_CAPACITY);
    }

    fn log_by(&mut self, actor: &Actor, tag: &'static str, kind: (&'static str, &'static str), at: u64) {
        self.log(LogEntry {
            event_id: String::new(),
            tag,
            event_type: kind.0,
            event_type_v2: kind.1,
            source_type: "USER",
            source_id: actor.id.clone(),
            source_name: actor.name.clone(),
            room: None,
            timestamp_ms: at,
            transition: "TRIGGERED",
        });
    }

    /// The panic button: an alarm in the log.
    pub fn panic(&mut self, actor: &Actor, now: Now) {
        self.log_by(actor, "Panic", ("ALARM", "ALARM"), now.unix_ms);
    }
}

/// Hubs and actors the child modules' tests start from.
#[cfg(test)]
mod fixtures {
    use super::*;

    pub fn actor() -> Actor {
        Actor {
            id: "U1".into(),
            name: "Tester".into(),
        }
    }

    pub fn hub() -> Hub {
        let mut hub = Hub::new("H1".into(), "Home".into(), "HUB_2");
        hub.rooms.push(Room {
            id: "R1".into(),
            name: "Hall".into(),
        });
        hub.devices.push(Device {
            id: "D1".into(),
            name: "Lights".into(),
            device_type: "Relay",
            source_type: "RELAY",
            room_id: "R1".into(),
            group_id: None,
            switched_on: Some(false),
            extra: Map::new(),
        });
        hub
    }

    pub fn grouped() -> Hub {
        let mut hub = hub();
        hub.groups_enabled = true;
        for id in ["G1", "G2"] {
            hub.groups.push(Group {
                id: id.into(),
                name: id.into(),
                armed: false,
            });
        }
        hub
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{actor, hub};
    use super::*;

    #[test]
    fn the_log_keeps_its_newest_entries() {
        let (mut hub, now) = (hub(), Now::system());
        for _ in 0..LOG_CAPACITY + 10 {
            hub.panic(&actor(), now);
        }
        assert_eq!(hub.logs().count(), LOG_CAPACITY);
        let ids: Vec<&str> = hub.logs().map(|e| e.event_id.as_str()).take(2).collect();
        assert!(ids[0] > ids[1], "newest first: {ids:?}");
    }
}
