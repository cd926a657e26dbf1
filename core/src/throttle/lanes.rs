//! The budget's lanes: which kind of upstream call a reservation is for. Each lane owns one GCRA
//! track with a reserved share of the budget (see [`super`] for how lanes lend idle capacity).

use std::fmt;
use std::str::FromStr;

/// The kind of upstream call a reservation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Arming, disarming, panic and other device commands: must never wait behind reads.
    Command,
    /// Ajax login and session refresh by the control plane and the worker.
    Account,
    /// Everything else (state reads, lists, history).
    Read,
}

/// The number of lanes (and of tracks).
pub(crate) const LANES: usize = 3;

impl Lane {
    /// Every lane, in track order (the order of the script's keys).
    pub const ALL: [Lane; LANES] = [Lane::Command, Lane::Account, Lane::Read];

    /// The lane's name in keys, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Command => "command",
            Lane::Account => "account",
            Lane::Read => "read",
        }
    }

    /// The lane's track index (0-based; the script numbers them from 1).
    pub(crate) fn index(self) -> usize {
        match self {
            Lane::Command => 0,
            Lane::Account => 1,
            Lane::Read => 2,
        }
    }

    /// The lane of a track index.
    pub(crate) fn from_index(index: usize) -> Option<Lane> {
        Lane::ALL.get(index).copied()
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a lane name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lane {0:?} (expected command, account or read)")]
pub struct UnknownLane(pub String);

impl FromStr for Lane {
    type Err = UnknownLane;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Lane::ALL
            .into_iter()
            .find(|lane| lane.as_str() == text)
            .ok_or_else(|| UnknownLane(text.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_round_trip_through_their_names_and_indices() {
        for lane in Lane::ALL {
            assert_eq!(lane.as_str().parse::<Lane>(), Ok(lane));
            assert_eq!(Lane::from_index(lane.index()), Some(lane));
        }
        assert!("panic".parse::<Lane>().is_err());
        assert_eq!(Lane::from_index(LANES), None);
    }
}
