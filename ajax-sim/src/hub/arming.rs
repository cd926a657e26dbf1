//! Arming a hub: its `state` in and out of groups mode, hub and group arming commands, and
//! two-stage arming (ARM answers a token, the hub arms when the countdown ends, DISARM cancels).

use super::{Actor, Device, Hub, HubError, Mode, invalid};
use crate::auth::random_hex;
use crate::clock::Now;

/// How long a two-stage arming stays `IN_PROGRESS` before the hub is armed. Ajax's countdown is
/// tens of seconds; tests want one they can wait out.
pub const TWO_STAGE_DELAY_MS: u64 = 1_000;

/// Two-stage armings remembered per hub for status polls; finished ones are forgotten past this.
const KEPT_OPERATIONS: usize = 32;

/// An arming command (`ArmCommand.command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmCommand {
    Arm,
    Disarm,
    NightModeOn,
    NightModeOff,
}

impl ArmCommand {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ARM" => Self::Arm,
            "DISARM" => Self::Disarm,
            "NIGHT_MODE_ON" => Self::NightModeOn,
            "NIGHT_MODE_OFF" => Self::NightModeOff,
            _ => return None,
        })
    }

    fn tag(self, group: bool) -> &'static str {
        match (self, group) {
            (Self::Arm, false) => "Arm",
            (Self::Disarm, false) => "Disarm",
            (Self::Arm, true) => "GroupArm",
            (Self::Disarm, true) => "GroupDisarm",
            (Self::NightModeOn, _) => "NightModeOn",
            (Self::NightModeOff, _) => "NightModeOff",
        }
    }
}

/// Where a two-stage arming stands (`AsyncOperationStatus.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    InProgress {
        completes_at_ms: u64,
    },
    Success,
    /// Ended by a disarm before it completed.
    Cancelled,
}

#[derive(Debug, Clone)]
pub(super) struct ArmingOp {
    group_id: Option<String>,
    status: OpStatus,
    actor: Actor,
}

/// What an accepted arming command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arming {
    Done,
    /// Two-stage arming started: poll its status with this token.
    Pending {
        token: String,
    },
}

impl Hub {
    /// The hub's `state`, as `getHub` reports it.
    pub fn state(&self) -> &'static str {
        if !self.groups_enabled {
            return match self.mode {
                Mode::Disarmed => "DISARMED",
                Mode::Armed => "ARMED",
                Mode::Night => "NIGHT_MODE",
            };
        }
        let armed = self.groups.iter().filter(|g| g.armed).count();
        match (armed, self.night_mode) {
            (0, false) => "DISARMED_NIGHT_MODE_OFF",
            (0, true) => "DISARMED_NIGHT_MODE_ON",
            (n, false) if n == self.groups.len() => "ARMED_NIGHT_MODE_OFF",
            (n, true) if n == self.groups.len() => "ARMED_NIGHT_MODE_ON",
            (_, false) => "PARTIALLY_ARMED_NIGHT_MODE_OFF",
            (_, true) => "PARTIALLY_ARMED_NIGHT_MODE_ON",
        }
    }

    /// Whether a device is armed now (its `estimatedArmingState`).
    pub fn device_armed(&self, device: &Device) -> bool {
        if self.groups_enabled {
            let group = device.group_id.as_deref().and_then(|id| self.group(id));
            group.is_some_and(|g| g.armed)
        } else {
            self.mode == Mode::Armed
        }
    }

    /// Completes every two-stage arming whose countdown has run out by `now`.
    pub fn settle(&mut self, now: Now) {
        let mut due: Vec<(u64, String)> = self
            .operations
            .iter()
            .filter_map(|(token, op)| match op.status {
                OpStatus::InProgress { completes_at_ms } if completes_at_ms <= now.unix_ms => {
                    Some((completes_at_ms, token.clone()))
                }
                _ => None,
            })
            .collect();
        due.sort();
        for (at, token) in due {
            let Some(op) = self.operations.get_mut(&token) else {
                continue;
            };
            op.status = OpStatus::Success;
            let (group_id, actor) = (op.group_id.clone(), op.actor.clone());
            self.apply_arm(group_id.as_deref(), ArmCommand::Arm, &actor, at);
        }
    }

    /// A hub-wide arming command.
    pub fn arm(&mut self, command: ArmCommand, actor: &Actor, now: Now) -> Result<Arming, HubError> {
        if command == ArmCommand::NightModeOff && !self.groups_enabled {
            return Err(invalid(
                "command",
                "NIGHT_MODE_OFF may be issued only for enabled groups mode",
            ));
        }
        self.command(None, command, actor, now)
    }

    /// A group's arming command: `ARM` or `DISARM`, in groups mode only.
    pub fn arm_group(
        &mut self,
        group_id: &str,
        command: ArmCommand,
        actor: &Actor,
        now: Now,
    ) -> Result<Arming, HubError> {
        if self.group(group_id).is_none() {
            return Err(HubError::NotFound);
        }
        if !matches!(command, ArmCommand::Arm | ArmCommand::Disarm) {
            return Err(invalid("command", "a group takes ARM or DISARM"));
        }
        if !self.groups_enabled {
            return Err(HubError::WrongState("Groups mode is disabled on this hub".into()));
        }
        self.command(Some(group_id), command, actor, now)
    }

    fn command(
        &mut self,
        group_id: Option<&str>,
        command: ArmCommand,
        actor: &Actor,
        now: Now,
    ) -> Result<Arming, HubError> {
        match command {
            ArmCommand::Arm if self.two_stage => {
                let token = random_hex();
                if self.operations.len() >= KEPT_OPERATIONS {
                    self.operations
                        .retain(|_, op| matches!(op.status, OpStatus::InProgress { .. }));
                }
                self.operations.insert(
                    token.clone(),
                    ArmingOp {
                        group_id: group_id.map(str::to_owned),
                        status: OpStatus::InProgress {
                            completes_at_ms: now.unix_ms + TWO_STAGE_DELAY_MS,
                        },
                        actor: actor.clone(),
                    },
                );
                return Ok(Arming::Pending { token });
            }
            ArmCommand::Disarm => {
                for op in self.operations.values_mut() {
                    let hit = group_id.is_none() || op.group_id.as_deref() == group_id;
                    if hit && matches!(op.status, OpStatus::InProgress { .. }) {
                        op.status = OpStatus::Cancelled;
                    }
                }
            }
            _ => {}
        }
        self.apply_arm(group_id, command, actor, now.unix_ms);
        Ok(Arming::Done)
    }

    fn apply_arm(&mut self, group_id: Option<&str>, command: ArmCommand, actor: &Actor, at: u64) {
        let armed = command == ArmCommand::Arm;
        match (group_id, command) {
            (Some(id), _) => self
                .groups
                .iter_mut()
                .filter(|g| g.id == id)
                .for_each(|g| g.armed = armed),
            (None, ArmCommand::Arm | ArmCommand::Disarm) if self.groups_enabled => {
                self.groups.iter_mut().for_each(|g| g.armed = armed);
                if !armed {
                    self.night_mode = false;
                }
            }
            (None, ArmCommand::Arm) => self.mode = Mode::Armed,
            (None, ArmCommand::Disarm) => self.mode = Mode::Disarmed,
            (None, ArmCommand::NightModeOn) if self.groups_enabled => self.night_mode = true,
            (None, ArmCommand::NightModeOn) => self.mode = Mode::Night,
            (None, ArmCommand::NightModeOff) => self.night_mode = false,
        }
        let tag = command.tag(group_id.is_some());
        self.log_by(actor, tag, ("SECURITY", "SECURITY"), at);
    }

    /// Where the two-stage arming with this token stands; `None` for a token this hub (or, with
    /// `group_id`, this group) never issued.
    pub fn arming_status(&self, token: &str, group_id: Option<&str>) -> Option<OpStatus> {
        self.operations
            .get(token)
            .filter(|op| op.group_id.as_deref() == group_id)
            .map(|op| op.status)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{actor, grouped, hub};
    use super::*;
    use std::time::Duration;

    #[test]
    fn arming_without_groups_moves_between_the_three_modes_and_logs_each_command() {
        let (mut hub, now) = (hub(), Now::system());
        assert_eq!(hub.state(), "DISARMED");
        assert_eq!(hub.arm(ArmCommand::Arm, &actor(), now), Ok(Arming::Done));
        assert_eq!(hub.state(), "ARMED");
        assert_eq!(hub.arm(ArmCommand::NightModeOn, &actor(), now), Ok(Arming::Done));
        assert_eq!(hub.state(), "NIGHT_MODE");
        assert!(hub.arm(ArmCommand::NightModeOff, &actor(), now).is_err());
        assert_eq!(hub.arm(ArmCommand::Disarm, &actor(), now), Ok(Arming::Done));
        let tags: Vec<&str> = hub.logs().map(|e| e.tag).collect();
        assert_eq!(tags, ["Disarm", "NightModeOn", "Arm"]);
        let newest = hub.logs().next().expect("entry");
        assert_eq!((newest.source_type, newest.source_id.as_str()), ("USER", "U1"));
    }

    #[test]
    fn groups_mode_reports_partial_arming_and_night_mode() {
        let (mut hub, now) = (grouped(), Now::system());
        assert_eq!(hub.state(), "DISARMED_NIGHT_MODE_OFF");
        assert_eq!(hub.arm_group("G1", ArmCommand::Arm, &actor(), now), Ok(Arming::Done));
        assert_eq!(hub.state(), "PARTIALLY_ARMED_NIGHT_MODE_OFF");
        assert_eq!(hub.logs().next().map(|e| e.tag), Some("GroupArm"));
        hub.arm(ArmCommand::NightModeOn, &actor(), now).expect("night");
        assert_eq!(hub.state(), "PARTIALLY_ARMED_NIGHT_MODE_ON");
        hub.arm(ArmCommand::Arm, &actor(), now).expect("arm all");
        assert_eq!(hub.state(), "ARMED_NIGHT_MODE_ON");
        hub.arm(ArmCommand::Disarm, &actor(), now).expect("disarm all");
        assert_eq!(hub.state(), "DISARMED_NIGHT_MODE_OFF");
    }

    #[test]
    fn group_arming_needs_groups_mode_an_existing_group_and_arm_or_disarm() {
        let now = Now::system();
        let mut plain = hub();
        plain.groups = grouped().groups;
        let refused = plain.arm_group("G1", ArmCommand::Arm, &actor(), now);
        assert!(matches!(refused, Err(HubError::WrongState(_))));
        let mut hub = grouped();
        let missing = hub.arm_group("G9", ArmCommand::Arm, &actor(), now);
        assert_eq!(missing, Err(HubError::NotFound));
        let night = hub.arm_group("G1", ArmCommand::NightModeOn, &actor(), now);
        assert!(matches!(night, Err(HubError::Invalid { field: "command", .. })));
    }

    #[test]
    fn two_stage_arming_is_pending_until_its_countdown_ends() {
        let (mut hub, now) = (hub(), Now::system());
        hub.two_stage = true;
        let Ok(Arming::Pending { token }) = hub.arm(ArmCommand::Arm, &actor(), now) else {
            panic!("two-stage arming starts pending");
        };
        assert_eq!(hub.state(), "DISARMED");
        assert!(matches!(
            hub.arming_status(&token, None),
            Some(OpStatus::InProgress { .. })
        ));
        hub.settle(now.after(Duration::from_millis(TWO_STAGE_DELAY_MS)));
        assert_eq!(hub.arming_status(&token, None), Some(OpStatus::Success));
        assert_eq!(hub.state(), "ARMED");
        assert_eq!(hub.logs().next().map(|e| e.tag), Some("Arm"));
        assert_eq!(hub.arming_status(&token, Some("G1")), None);
        assert_eq!(hub.arming_status("unknown", None), None);
    }

    #[test]
    fn disarming_cancels_a_pending_two_stage_arming() {
        let (mut hub, now) = (hub(), Now::system());
        hub.two_stage = true;
        let Ok(Arming::Pending { token }) = hub.arm(ArmCommand::Arm, &actor(), now) else {
            panic!("two-stage arming starts pending");
        };
        hub.arm(ArmCommand::Disarm, &actor(), now).expect("disarm");
        hub.settle(now.after(Duration::from_secs(5)));
        assert_eq!(hub.arming_status(&token, None), Some(OpStatus::Cancelled));
        assert_eq!(hub.state(), "DISARMED");
    }
}
