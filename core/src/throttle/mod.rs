//! The global upstream budget: one limit on the Ajax API key (`ASF_GLOBAL_RATE`, e.g. `100/60s`)
//! shared by every proxy instance, the control plane and the worker. Each upstream call reserves
//! its slot first and waits (asynchronously, the caller's business) until the slot's time; a call
//! whose slot would be too far away is refused at once, without spending anything.
//!
//! # Design
//!
//! * **Lanes.** Calls come in three lanes ([`Lane`]): `Command` (arming, panic, device commands;
//!   20% by default), `Account` (Ajax login and refresh; 10%), `Read` (the rest; 70%). Each lane owns
//!   one GCRA track ([`gcra::Track`]) with its share of the sustained rate and of the burst.
//! * **Lending idle capacity.** A request first takes a slot *now* in its own track if that track
//!   allows one; else a slot *now* in the most idle other track if that one allows one; else the
//!   next slot of its own track, in the future. So reads use the idle share of commands (nothing is
//!   wasted), but they can only ever book the *future* of the read track: commands keep their
//!   reserved share. Under full read saturation a command waits at most one command emission
//!   interval, `W / (share × (N − B))` (about 3.1 s at `100/60s`).
//! * **Queue bound.** A slot more than `ASF_QUEUE_MAX_WAIT` (default 20 s) away is refused with
//!   [`RefusalReason::QueueFull`] and the whole seconds until a retry would be admitted.
//! * **Tenants.** A per-tenant GCRA on arrival time (requests per minute from the tenant's plan,
//!   no queueing) and a cap on the number of future slots a tenant holds. Refusals spend nothing,
//!   and other tenants are unaffected.
//! * **Pushback.** [`GlobalBudget::pause`] sets a "not before" for every lane of every process;
//!   for one window after the pause ends, every slot costs twice its interval (half capacity).
//! * **One round trip.** Each reservation is one call of one Lua script (`budget.lua`, `EVALSHA`)
//!   using Redis's own clock (`TIME`), so instance clocks do not matter; the proxy's precondition
//!   (revocation, session, plan) is checked inside the same call ([`Precondition`]).
//! * **Fallback.** [`LocalBudget`] is the same model in memory for when Redis is down, with each
//!   instance's share of the budget ([`Heartbeat`] counts the instances); see [`local`] for how it
//!   keeps the promise at the switch.
//!
//! # Why no window ever holds more than N slots
//!
//! Let the limit be `N` per window `W` and the total burst `B` (at least one per lane, below `N`).
//! Lane `i` has share `s_i` (the shares sum to 1), emission interval `T_i = W / (s_i (N − B))`
//! rounded *up* to whole ms, burst `b_i >= 1` with `sum b_i <= B` (the burst split by share, each
//! lane at least 1), and tolerance `τ_i = (b_i − 1) T_i` rounded *down*.
//!
//! 1. Every granted slot is charged to exactly one track, and conforms to that track: a slot `t`
//!    is granted on a track only if `t >= tat − τ`, and then `tat := max(tat, t) + step` with
//!    `step >= T` (`2T` during the ramp). Refusals change nothing.
//! 2. For the grants of one track in the order they were made, `tat` grows by at least `T` per grant
//!    and exceeds each granted slot by at least `T`, so for grants `j` after `i`:
//!    `t_j >= tat_j − τ >= t_i + (j − i) T − τ`. Hence if `k` grants of the track lie in one closed
//!    window `[x, x + W]`, taking the first and last made of them gives `(k − 1) T − τ <= W`, i.e.
//!    `k <= W / T + 1 + τ / T <= W / T_i + b_i`. This holds whatever order the slot times come in
//!    (future bookings, lending, a clock stepping back).
//! 3. Summing over the tracks: `sum (W / T_i + b_i) <= sum s_i (N − B) + B = N`.
//!
//! Pauses only delay slots and the ramp only lengthens steps, so neither can break (1). The promise
//! is about slot times on one clock (Redis's): a caller that sends later than its slot only spreads
//! calls out, except that a caller stalled for a long time and then sending may meet the next
//! window's calls; send promptly at the slot or reserve again. Every process sharing the keys must
//! use the same rate, burst and shares. The test `no_window_ever_holds_more_than_the_limit...`
//! checks the bound on random arrivals, for the Rust model and for the script.

pub mod clock;
pub mod config;
pub mod decision;
mod engine;
pub mod gcra;
pub mod heartbeat;
pub mod lanes;
pub mod local;
pub mod script;
pub mod spec;

pub use clock::{Clock, ManualClock};
pub use config::{
    BudgetConfig, BudgetConfigError, BudgetPlan, DEFAULT_BURST, DEFAULT_MAX_WAIT, LaneShares, TrackParams,
};
pub use decision::{
    BudgetSnapshot, DEFAULT_TENANT_BURST, DEFAULT_TENANT_MAX_QUEUED, Decision, EntitlementGuard, LaneSnapshot,
    Precondition, RefusalReason, Reservation, ReserveRequest, TenantQuota,
};
pub use heartbeat::Heartbeat;
pub use lanes::{Lane, UnknownLane};
pub use local::LocalBudget;
pub use script::GlobalBudget;
pub use spec::{RateSpec, RateSpecError, parse_duration};
