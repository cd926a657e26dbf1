//! The simulated Ajax cloud's accounts, hubs and spaces, who owns what, and login (including the
//! `<name>@sim.test` accounts made on first login). What the world starts with is in `seed`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Now;
use crate::hub::{Actor, Hub};
use crate::seed;

/// An Ajax user account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub login: String,
    /// sha256 hex of the password, lowercase.
    password_hash: String,
    pub first_name: String,
    /// The user's hubs and their `hubBindingRole` on each.
    pub hubs: Vec<(String, &'static str)>,
    pub space_id: String,
}

impl Account {
    pub fn new(id: &str, login: &str, password: &str, first_name: &str, space_id: &str) -> Self {
        Self {
            id: id.to_owned(),
            login: login.to_ascii_lowercase(),
            password_hash: sha256_hex(password),
            first_name: first_name.to_owned(),
            hubs: Vec::new(),
            space_id: space_id.to_owned(),
        }
    }

    /// The account as the source of log entries.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id.clone(),
            name: self.first_name.clone(),
        }
    }

    fn password_matches(&self, password_hash: &str) -> bool {
        hash_matches(&self.password_hash, password_hash)
    }
}

/// Compares a given `passwordHash` (hex in either case) with a stored one, in constant time.
fn hash_matches(stored: &str, given: &str) -> bool {
    let given = given.to_ascii_lowercase();
    bool::from(given.as_bytes().ct_eq(stored.as_bytes()))
}

/// A space: Ajax's newer grouping of a user's hubs (and their rooms).
#[derive(Debug, Clone)]
pub struct Space {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub hub_ids: Vec<String>,
}

/// sha256 of a password as lowercase hex: what Ajax's `passwordHash` carries.
pub fn sha256_hex(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// Everything the simulated cloud knows.
#[derive(Debug, Default)]
pub struct World {
    accounts: HashMap<String, Account>,
    /// Lowercased login to user id.
    logins: HashMap<String, String>,
    hubs: HashMap<String, Hub>,
    spaces: HashMap<String, Space>,
    /// How many `@sim.test` accounts have been made: the next one's number.
    provisioned: u32,
}

impl World {
    /// The seeded world (see `seed`), with log timestamps relative to `now`.
    pub fn seeded(now: Now) -> Self {
        let mut world = Self::default();
        seed::seed(&mut world, now);
        world
    }

    /// Adds an account together with its hubs (bound to it as `MASTER`) and its space.
    pub fn insert(&mut self, mut account: Account, hubs: Vec<Hub>, space_name: &str) {
        let hub_ids: Vec<String> = hubs.iter().map(|h| h.id.clone()).collect();
        account.hubs = hub_ids.iter().map(|id| (id.clone(), "MASTER")).collect();
        self.spaces.insert(
            account.space_id.clone(),
            Space {
                id: account.space_id.clone(),
                name: space_name.to_owned(),
                owner_id: account.id.clone(),
                hub_ids,
            },
        );
        for hub in hubs {
            self.hubs.insert(hub.id.clone(), hub);
        }
        self.logins.insert(account.login.clone(), account.id.clone());
        self.accounts.insert(account.id.clone(), account);
    }

    /// The user id for a login and password hash; a first login as `<name>@sim.test` with
    /// password `secret` creates the account. `None`: wrong login or password.
    pub fn authenticate(&mut self, login: &str, password_hash: &str, now: Now) -> Option<String> {
        let login = login.trim().to_ascii_lowercase();
        if !self.logins.contains_key(&login) && seed::is_sim_test_login(&login) {
            if !hash_matches(&sha256_hex(seed::SIM_TEST_PASSWORD), password_hash) {
                return None;
            }
            self.provisioned += 1;
            seed::provision(self, &login, self.provisioned, now);
        }
        let account = self.accounts.get(self.logins.get(&login)?)?;
        account.password_matches(password_hash).then(|| account.id.clone())
    }

    pub fn account(&self, user_id: &str) -> Option<&Account> {
        self.accounts.get(user_id)
    }

    pub fn owns_hub(&self, user_id: &str, hub_id: &str) -> bool {
        self.account(user_id)
            .is_some_and(|a| a.hubs.iter().any(|(id, _)| id == hub_id))
    }

    pub fn owns_space(&self, user_id: &str, space_id: &str) -> bool {
        self.spaces.get(space_id).is_some_and(|s| s.owner_id == user_id)
    }

    pub fn hub(&self, hub_id: &str) -> Option<&Hub> {
        self.hubs.get(hub_id)
    }

    /// A hub, with any two-stage arming due by `now` completed first.
    pub fn hub_at(&mut self, hub_id: &str, now: Now) -> Option<&mut Hub> {
        let hub = self.hubs.get_mut(hub_id)?;
        hub.settle(now);
        Some(hub)
    }

    pub fn space(&self, space_id: &str) -> Option<&Space> {
        self.spaces.get(space_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_hash_is_sha256_hex_of_the_password() {
        assert_eq!(
            sha256_hex("demo"),
            "2a97516c354b68848cdbd8f54a226a0a55b21ed138e207ad6c5cbb9c00aa5aea"
        );
    }

    #[test]
    fn seeded_accounts_log_in_with_their_password_in_either_hex_case() {
        let now = Now::system();
        let mut world = World::seeded(now);
        let hash = sha256_hex(seed::DEMO_PASSWORD);
        let id = world.authenticate(seed::DEMO_LOGIN, &hash, now);
        assert_eq!(id.as_deref(), Some(seed::DEMO_USER_ID));
        let upper = world.authenticate("Demo@Example.com", &hash.to_ascii_uppercase(), now);
        assert_eq!(upper.as_deref(), Some(seed::DEMO_USER_ID));
        assert_eq!(world.authenticate(seed::DEMO_LOGIN, &sha256_hex("nope"), now), None);
        assert_eq!(world.authenticate("nobody@example.com", &hash, now), None);
    }

    #[test]
    fn sim_test_accounts_are_made_once_and_only_with_the_right_password() {
        let now = Now::system();
        let mut world = World::seeded(now);
        let wrong = world.authenticate("load1@sim.test", &sha256_hex("demo"), now);
        assert_eq!(wrong, None);
        assert_eq!(world.provisioned, 0);
        let secret = sha256_hex(seed::SIM_TEST_PASSWORD);
        let first = world.authenticate("load1@sim.test", &secret, now).expect("made");
        let again = world.authenticate("load1@sim.test", &secret, now).expect("same");
        assert_eq!(first, again);
        let other = world.authenticate("load2@sim.test", &secret, now).expect("made");
        assert_ne!(first, other);
        let account = world.account(&first).expect("account");
        assert_eq!(account.hubs.len(), 1);
        assert!(world.owns_hub(&first, &account.hubs[0].0));
        assert!(!world.owns_hub(&other, &account.hubs[0].0));
        assert!(world.owns_space(&first, &account.space_id));
    }

    #[test]
    fn ownership_follows_the_seeded_bindings() {
        let world = World::seeded(Now::system());
        assert!(world.owns_hub(seed::DEMO_USER_ID, seed::DEMO_HUB_ID));
        assert!(world.owns_hub(seed::DEMO_USER_ID, seed::DEMO_GROUPS_HUB_ID));
        assert!(!world.owns_hub(seed::DEMO_USER_ID, seed::DEMO2_HUB_ID));
        assert!(world.owns_hub(seed::DEMO2_USER_ID, seed::DEMO2_HUB_ID));
        assert!(world.owns_space(seed::DEMO2_USER_ID, seed::DEMO2_SPACE_ID));
        assert!(!world.owns_space(seed::DEMO_USER_ID, seed::DEMO2_SPACE_ID));
    }
}
