//! What the simulated cloud starts with, and the ids tests rely on. Every id is hex, like Ajax's,
//! and stable from run to run.
//!
//! | login                 | password | user id    | hubs                                             | space      |
//! |-----------------------|----------|------------|--------------------------------------------------|------------|
//! | `demo@example.com`    | `demo`   | `0000A001` | `0001A001` "Home", `0001A002` "Office" (groups)   | `0005A001` |
//! | `demo2@example.com`   | `demo`   | `0000A002` | `0001A003` "Cottage" (two-stage arming)           | `0005A002` |
//! | `<name>@sim.test`     | `secret` | `1nnnnnnn` | `2nnnnnnn` "Sim hub"                              | `5nnnnnnn` |
//!
//! Every hub is furnished alike, its ids numbered within the hub (`kk` = 01, 02, ...):
//! - rooms `kk`: Hall, Living room, Kitchen;
//! - devices `kk`: Front door (DoorProtect, Hall), Hall motion (MotionProtect, Hall), Kitchen smoke
//!   (FireProtect, Kitchen), Garden lights (Relay, Living room), Lamp (WallSwitch, Living room);
//! - with groups mode on (only "Office"), groups `kk`: Ground floor (door, motion), First floor (the rest);
//! - bound users: the owner (`MASTER`) and a "Guest" (`USER`);
//! - a short history in the log: the owner's Disarm, then DoorOpened and MotionDetected.
//!
//! For seeded hub `0001A00h` the prefixes are devices `0002Ahkk`, rooms `0003Ahkk`, groups `0004Ahkk`,
//! guest `0000A0Fh`. The n-th `@sim.test` account (n = 1, 2, ... in order of first login) gets devices
//! `6nnnnnkk`, rooms `7nnnnnkk`, groups none, guest `9nnnnnnn` (`n` in hex, zero-padded).

use crate::clock::Now;
use crate::hub::{Device, Group, Hub, HubUser, LogEntry, Room};
use crate::world::{Account, World};

pub const DEMO_LOGIN: &str = "demo@example.com";
pub const DEMO2_LOGIN: &str = "demo2@example.com";
/// The password of both demo accounts (their `passwordHash` is its sha256 hex).
pub const DEMO_PASSWORD: &str = "demo";
/// Logins `<name>@<SIM_TEST_DOMAIN>` are created at first login with [`SIM_TEST_PASSWORD`].
pub const SIM_TEST_DOMAIN: &str = "sim.test";
pub const SIM_TEST_PASSWORD: &str = "secret";

pub const DEMO_USER_ID: &str = "0000A001";
pub const DEMO2_USER_ID: &str = "0000A002";
/// demo's "Home": groups mode off, arming is immediate (`DISARMED`/`ARMED`/`NIGHT_MODE`).
pub const DEMO_HUB_ID: &str = "0001A001";
/// demo's "Office": groups mode on, groups [`DEMO_GROUP_IDS`].
pub const DEMO_GROUPS_HUB_ID: &str = "0001A002";
/// demo2's "Cottage": two-stage arming (ARM answers 202 with a token).
pub const DEMO2_HUB_ID: &str = "0001A003";
pub const DEMO_SPACE_ID: &str = "0005A001";
pub const DEMO2_SPACE_ID: &str = "0005A002";
/// Devices of [`DEMO_HUB_ID`].
pub const DEMO_DOOR_ID: &str = "0002A101";
pub const DEMO_MOTION_ID: &str = "0002A102";
pub const DEMO_FIRE_ID: &str = "0002A103";
pub const DEMO_RELAY_ID: &str = "0002A104";
pub const DEMO_WALL_SWITCH_ID: &str = "0002A105";
/// Rooms of [`DEMO_HUB_ID`]: Hall, Living room, Kitchen.
pub const DEMO_ROOM_IDS: [&str; 3] = ["0003A101", "0003A102", "0003A103"];
/// Groups of [`DEMO_GROUPS_HUB_ID`]: Ground floor, First floor.
pub const DEMO_GROUP_IDS: [&str; 2] = ["0004A201", "0004A202"];

const ROOMS: [&str; 3] = ["Hall", "Living room", "Kitchen"];
const GROUPS: [&str; 2] = ["Ground floor", "First floor"];

struct Fixture {
    name: &'static str,
    device_type: &'static str,
    source_type: &'static str,
    room: usize,
    group: usize,
    switch: bool,
}

const DEVICES: [Fixture; 5] = [
    Fixture {
        name: "Front door",
        device_type: "DoorProtect",
        source_type: "DOOR_PROTECT",
        room: 0,
        group: 0,
        switch: false,
    },
    Fixture {
        name: "Hall motion",
        device_type: "MotionProtect",
        source_type: "MOTION_PROTECT",
        room: 0,
        group: 0,
        switch: false,
    },
    Fixture {
        name: "Kitchen smoke",
        device_type: "FireProtect",
        source_type: "FIRE_PROTECT",
        room: 2,
        group: 1,
        switch: false,
    },
    Fixture {
        name: "Garden lights",
        device_type: "Relay",
        source_type: "RELAY",
        room: 1,
        group: 1,
        switch: true,
    },
    Fixture {
        name: "Lamp",
        device_type: "WallSwitch",
        source_type: "WALL_SWITCH",
        room: 1,
        group: 1,
        switch: true,
    },
];

/// How one hub is made.
struct Plan {
    id: String,
    name: &'static str,
    subtype: &'static str,
    groups: bool,
    two_stage: bool,
    /// Id prefixes; the item's number within the hub (two hex digits) completes each id.
    devices: String,
    rooms: String,
    groups_prefix: String,
    guest_id: String,
}

impl Plan {
    fn seeded(h: u8, name: &'static str, subtype: &'static str) -> Self {
        Self {
            id: format!("0001A00{h}"),
            name,
            subtype,
            groups: false,
            two_stage: false,
            devices: format!("0002A{h}"),
            rooms: format!("0003A{h}"),
            groups_prefix: format!("0004A{h}"),
            guest_id: format!("0000A0F{h}"),
        }
    }
}

/// Fills an empty world with the demo accounts.
pub fn seed(world: &mut World, now: Now) {
    let demo = Account::new(DEMO_USER_ID, DEMO_LOGIN, DEMO_PASSWORD, "Demo", DEMO_SPACE_ID);
    let office = Plan {
        groups: true,
        ..Plan::seeded(2, "Office", "HUB_2")
    };
    let hubs = vec![
        furnish(Plan::seeded(1, "Home", "HUB_2_PLUS"), &demo, now),
        furnish(office, &demo, now),
    ];
    world.insert(demo, hubs, "Demo home");

    let demo2 = Account::new(DEMO2_USER_ID, DEMO2_LOGIN, DEMO_PASSWORD, "Demo Two", DEMO2_SPACE_ID);
    let cottage = Plan {
        two_stage: true,
        ..Plan::seeded(3, "Cottage", "HUB_2_4G")
    };
    let hubs = vec![furnish(cottage, &demo2, now)];
    world.insert(demo2, hubs, "Demo cottage");
}

/// Whether a (lowercased) login is one the simulator creates on first login.
pub fn is_sim_test_login(login: &str) -> bool {
    login
        .strip_suffix(SIM_TEST_DOMAIN)
        .and_then(|rest| rest.strip_suffix('@'))
        .is_some_and(|name| !name.is_empty() && !name.contains('@'))
}

/// Creates the `n`-th `@sim.test` account with one hub.
pub fn provision(world: &mut World, login: &str, n: u32, now: Now) {
    let name = login.split('@').next().unwrap_or(login);
    let account = Account::new(
        &format!("1{n:07X}"),
        login,
        SIM_TEST_PASSWORD,
        name,
        &format!("5{n:07X}"),
    );
    let plan = Plan {
        id: format!("2{n:07X}"),
        name: "Sim hub",
        subtype: "HUB_2_PLUS",
        groups: false,
        two_stage: false,
        devices: format!("6{n:05X}"),
        rooms: format!("7{n:05X}"),
        groups_prefix: format!("8{n:05X}"),
        guest_id: format!("9{n:07X}"),
    };
    let hubs = vec![furnish(plan, &account, now)];
    world.insert(account, hubs, "Sim space");
}

fn furnish(plan: Plan, owner: &Account, now: Now) -> Hub {
    let mut hub = Hub::new(plan.id, plan.name.to_owned(), plan.subtype);
    hub.groups_enabled = plan.groups;
    hub.two_stage = plan.two_stage;
    hub.rooms = ROOMS
        .iter()
        .enumerate()
        .map(|(i, name)| Room {
            id: numbered(&plan.rooms, i),
            name: (*name).to_owned(),
        })
        .collect();
    if plan.groups {
        hub.groups = GROUPS
            .iter()
            .enumerate()
            .map(|(i, name)| Group {
                id: numbered(&plan.groups_prefix, i),
                name: (*name).to_owned(),
                armed: false,
            })
            .collect();
    }
    hub.devices = DEVICES
        .iter()
        .enumerate()
        .map(|(i, fixture)| Device {
            id: numbered(&plan.devices, i),
            name: fixture.name.to_owned(),
            device_type: fixture.device_type,
            source_type: fixture.source_type,
            room_id: numbered(&plan.rooms, fixture.room),
            group_id: plan.groups.then(|| numbered(&plan.groups_prefix, fixture.group)),
            switched_on: fixture.switch.then_some(false),
            extra: Default::default(),
        })
        .collect();
    hub.users = vec![
        HubUser {
            id: owner.id.clone(),
            first_name: owner.first_name.clone(),
            role: "MASTER",
        },
        HubUser {
            id: plan.guest_id,
            first_name: "Guest".to_owned(),
            role: "USER",
        },
    ];
    write_history(&mut hub, owner, now);
    hub
}

/// The hub's `i`-th item id under `prefix` (numbered from 01).
fn numbered(prefix: &str, i: usize) -> String {
    format!("{prefix}{:02X}", i + 1)
}

const HOUR_MS: u64 = 3_600_000;

fn write_history(hub: &mut Hub, owner: &Account, now: Now) {
    let ago = |hours: u64| now.unix_ms.saturating_sub(hours * HOUR_MS);
    let disarm = LogEntry {
        event_id: String::new(),
        tag: "Disarm",
        event_type: "SECURITY",
        event_type_v2: "SECURITY",
        source_type: "USER",
        source_id: owner.id.clone(),
        source_name: owner.first_name.clone(),
        room: None,
        timestamp_ms: ago(3),
        transition: "TRIGGERED",
    };
    hub.log(disarm);
    for (hours, device, tag) in [(2, 0, "DoorOpened"), (1, 1, "MotionDetected")] {
        let Some(device) = hub.devices.get(device) else {
            continue;
        };
        let room = hub.room(&device.room_id).map(|r| (r.id.clone(), r.name.clone()));
        let entry = LogEntry {
            event_id: String::new(),
            tag,
            event_type: "ALARM",
            event_type_v2: "ALARM",
            source_type: device.source_type,
            source_id: device.id.clone(),
            source_name: device.name.clone(),
            room,
            timestamp_ms: ago(hours),
            transition: "TRIGGERED",
        };
        hub.log(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_ids_name_the_seeded_objects() {
        let world = World::seeded(Now::system());
        let home = world.hub(DEMO_HUB_ID).expect("home");
        assert_eq!(home.device(DEMO_DOOR_ID).map(|d| d.device_type), Some("DoorProtect"));
        assert_eq!(
            home.device(DEMO_MOTION_ID).map(|d| d.device_type),
            Some("MotionProtect")
        );
        assert_eq!(home.device(DEMO_FIRE_ID).map(|d| d.device_type), Some("FireProtect"));
        assert_eq!(home.device(DEMO_RELAY_ID).map(|d| d.device_type), Some("Relay"));
        assert_eq!(
            home.device(DEMO_WALL_SWITCH_ID).map(|d| d.device_type),
            Some("WallSwitch")
        );
        assert!(DEMO_ROOM_IDS.iter().all(|id| home.room(id).is_some()));
        assert!(!home.groups_enabled && !home.two_stage && home.groups.is_empty());
        let office = world.hub(DEMO_GROUPS_HUB_ID).expect("office");
        assert!(office.groups_enabled);
        assert!(DEMO_GROUP_IDS.iter().all(|id| office.group(id).is_some()));
        assert!(world.hub(DEMO2_HUB_ID).expect("cottage").two_stage);
        assert_eq!(world.account(DEMO2_USER_ID).map(|a| a.hubs.len()), Some(1));
        assert!(world.space(DEMO_SPACE_ID).is_some());
    }

    #[test]
    fn seeded_hubs_start_with_a_short_history_newest_first() {
        let world = World::seeded(Now::system());
        let home = world.hub(DEMO_HUB_ID).expect("home");
        let tags: Vec<&str> = home.logs().map(|e| e.tag).collect();
        assert_eq!(tags, ["MotionDetected", "DoorOpened", "Disarm"]);
    }

    #[test]
    fn only_names_at_the_sim_test_domain_are_provisioned() {
        assert!(is_sim_test_login("load-17@sim.test"));
        assert!(!is_sim_test_login("@sim.test"));
        assert!(!is_sim_test_login("a@b@sim.test"));
        assert!(!is_sim_test_login("someone@notsim.test"));
        assert!(!is_sim_test_login("sim.test"));
    }
}
