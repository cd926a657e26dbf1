//! The simulator's shared state: its configuration and samples (fixed), and the world, sessions,
//! limiter, stats and faults, each behind its own short-held std `Mutex` (never held across an
//! await, never two at once).

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::auth::Sessions;
use crate::clock::Now;
use crate::config::SimConfig;
use crate::faults::Faults;
use crate::limiter::Limiter;
use crate::samples::{SampleError, Samples};
use crate::stats::Stats;
use crate::world::World;

/// One simulator instance.
#[derive(Debug)]
pub struct Sim {
    pub config: SimConfig,
    pub samples: Samples,
    world: Mutex<World>,
    sessions: Mutex<Sessions>,
    limiter: Mutex<Limiter>,
    stats: Mutex<Stats>,
    faults: Mutex<Faults>,
}

impl Sim {
    /// A simulator with the seeded world; fails only if the compiled-in samples do not parse.
    pub fn new(config: SimConfig) -> Result<Self, SampleError> {
        Ok(Self {
            samples: Samples::builtin()?,
            world: Mutex::new(World::seeded(Now::system())),
            sessions: Mutex::new(Sessions::new(config.session_ttl, config.refresh_ttl)),
            limiter: Mutex::new(Limiter::new(config.rate, config.window)),
            stats: Mutex::new(Stats::default()),
            faults: Mutex::new(Faults::default()),
            config,
        })
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub fn sessions(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.sessions)
    }

    pub fn limiter(&self) -> MutexGuard<'_, Limiter> {
        lock(&self.limiter)
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }
}

/// Nothing panics while holding these locks, so a poisoned one still holds consistent state.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
