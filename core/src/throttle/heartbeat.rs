//! Who shares the budget: every process that reserves (proxy instances, control plane, worker)
//! beats regularly into one sorted set, on Redis's clock. The live count, remembered while Redis is
//! up, is the divisor of each process's local fallback share (see [`super::local`]).

use std::time::Duration;

use redis::RedisError;
use redis::aio::ConnectionLike;

use super::clock::Clock;
use crate::keyspace::Keyspace;

/// KEYS[1] the instances; ARGV[1] test flag, [2] test time, [3] beat | count, [4] staleness (ms),
/// [5] the instance's id. Returns the number of live instances.
const SOURCE: &str = r#"
local now
if ARGV[1] == '1' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local stale = tonumber(ARGV[4])
local since = now - stale
if ARGV[3] == 'beat' then
  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', since))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', stale))
end
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%d', since), '+inf')
"#;

/// An instance is counted while its last beat is less than this many intervals old.
const STALE_AFTER_INTERVALS: u32 = 3;

/// Heartbeats of the processes sharing the budget.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    keys: Keyspace,
    interval: Duration,
    script: redis::Script,
    clock: Clock,
}

impl Heartbeat {
    /// Heartbeats sent every `interval`; an instance silent for three intervals is no longer live.
    pub fn new(keys: Keyspace, interval: Duration) -> Self {
        Self {
            keys,
            interval,
            script: redis::Script::new(SOURCE),
            clock: Clock::Real,
        }
    }

    /// The same heartbeats on another clock ([`Clock::Manual`]: tests only).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Records that `instance_id` is alive, forgets instances silent for three intervals, and
    /// returns how many are live (this one included).
    pub async fn heartbeat(&self, conn: &mut impl ConnectionLike, instance_id: &str) -> Result<usize, RedisError> {
        self.call(conn, "beat", instance_id).await
    }

    /// How many instances beat within the last three intervals.
    pub async fn live_instances(&self, conn: &mut impl ConnectionLike) -> Result<usize, RedisError> {
        self.call(conn, "count", "").await
    }

    async fn call(&self, conn: &mut impl ConnectionLike, op: &str, instance_id: &str) -> Result<usize, RedisError> {
        let stale_ms = u64::try_from((self.interval * STALE_AFTER_INTERVALS).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = self.script.key(self.keys.instances());
        match self.clock.manual_ms() {
            Some(now_ms) => invocation.arg("1").arg(now_ms),
            None => invocation.arg("0").arg(0),
        };
        invocation.arg(op).arg(stale_ms).arg(instance_id);
        invocation.invoke_async(conn).await
    }
}
