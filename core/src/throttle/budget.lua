-- The global upstream budget: one atomic step per call (see src/throttle/mod.rs for the design
-- and the argument that no window of the configured length ever holds more than the limit).
-- src/throttle/engine.rs is the same logic in Rust; tests hold the two to agree exactly, so every
-- number here is a whole number of milliseconds.
--
-- KEYS[1..3] lane tracks (command, account, read): each holds its GCRA theoretical arrival time
-- KEYS[4]    the end of the last pause; kept one window longer for the ramp
-- KEYS[5]    grant log: sorted set of granted slot times (read only for the client hints)
-- KEYS[6]    (reserve with a tenant) the tenant's GCRA time
-- KEYS[7]    (reserve with a tenant) sorted set of the tenant's future slots
-- then       (reserve with a precondition) the keys that must be absent, the "not before" key if
--            any, the key to fetch if any, and the tenant's entitlement hash if any, in that order
--
-- ARGV[1] operation: reserve | snapshot | pause
-- ARGV[2] '1' in tests only, and then ARGV[3] is the time to use; otherwise Redis's own clock
-- reserve:  ARGV[4] limit, [5] window, [6] max wait, [7] lane 1..3,
--           [8..13] emission and tolerance of lanes 1..3,
--           [14] '1' with a tenant, [15] tenant emission (0: no access), [16] tenant tolerance,
--           [17] tenant queue cap, [18] a unique id for this grant,
--           [19] '1' with a precondition, [20] how many keys must be absent,
--           [21] '1' with a "not before" key, [22] the issue time it is compared with,
--           [23] '1' with a key to fetch (must exist; its value ends the granted reply),
--           [24] '1' with an entitlement check, [25] the call's route class, [26] '1' when the
--           class is allowed to a tenant without a stored entitlement, [27] the plan to name then
-- snapshot: ARGV[4] window
-- pause:    ARGV[4] window, [5] duration
--
-- Expiry only collects garbage: every decision compares stored times with "now" itself, so a key
-- that outlives its use (or a test clock far from Redis's) changes nothing.

local QUEUE_FULL, TENANT_LIMIT, TENANT_QUEUE_CAP, PAUSED, PRECONDITION, MISSING, NOT_ENTITLED = 1, 2, 3, 4, 5, 6, 7
local NO_ACCESS_RETRY = 60000

local function clock()
  if ARGV[2] == '1' then
    return tonumber(ARGV[3])
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function read(key)
  local v = redis.call('GET', key)
  if v then
    return tonumber(v)
  end
  return 0
end

local function int(x)
  return string.format('%d', x)
end

-- The pause's end while it or its ramp window still matters, else 0.
local function live_pause(now, window)
  local pause_end = read(KEYS[4])
  if pause_end + window <= now then
    return 0
  end
  return pause_end
end

local function earliest(tat, tolerance, not_before)
  return math.max(not_before, tat - tolerance)
end

-- The caller's precondition (e.g. the token is not revoked, a session exists, the plan allows the
-- call), checked before anything else so that a refused caller spends nothing. Returns a refusal
-- code (and, for a plan refusal, the plan and the upgrade to name), or nil, the fetched value
-- (false when nothing is fetched) and the entitlement seen (false when none).
local function precondition(first_key)
  if ARGV[19] ~= '1' then
    return nil, false, false
  end
  local k = first_key
  for _ = 1, tonumber(ARGV[20]) do
    if redis.call('EXISTS', KEYS[k]) == 1 then
      return PRECONDITION, false, false
    end
    k = k + 1
  end
  if ARGV[21] == '1' then
    local not_before = redis.call('GET', KEYS[k])
    k = k + 1
    if not_before and tonumber(not_before) > tonumber(ARGV[22]) then
      return PRECONDITION, false, false
    end
  end
  local fetched = false
  if ARGV[23] == '1' then
    fetched = redis.call('GET', KEYS[k])
    k = k + 1
    if not fetched then
      return MISSING, false, false
    end
  end
  local entitlement = false
  if ARGV[24] == '1' then
    local class = ARGV[25]
    local seen = redis.call('HMGET', KEYS[k], 'plan', 'c:' .. class, 'u:' .. class, 'rate', 'classes')
    if seen[1] then
      if not seen[2] then
        return NOT_ENTITLED, seen[1], seen[3] or ''
      end
      entitlement = {seen[1], seen[4] or '', seen[5] or ''}
    elseif ARGV[26] ~= '1' then
      return NOT_ENTITLED, 'free', ARGV[27]
    end
  end
  return nil, fetched, entitlement
end

local function reserve(now)
  local limit, window, max_wait = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local first_guard_key = 6
  if ARGV[14] == '1' then
    first_guard_key = 8
  end
  local refused, fetched, entitlement = precondition(first_guard_key)
  if refused == NOT_ENTITLED then
    return {0, refused, 0, fetched, entitlement}
  end
  if refused then
    return {0, refused, 0}
  end
  local lane = tonumber(ARGV[7])
  local emission, tolerance, tat = {}, {}, {}
  for i = 1, 3 do
    emission[i] = tonumber(ARGV[6 + 2 * i])
    tolerance[i] = tonumber(ARGV[7 + 2 * i])
    tat[i] = read(KEYS[i])
  end

  local pause_end = live_pause(now, window)
  local not_before = math.max(now, pause_end)
  if not_before - now > max_wait then
    return {0, PAUSED, not_before - max_wait - now}
  end

  local has_tenant = ARGV[14] == '1'
  local t_emission, t_tolerance, t_cap, t_tat
  if has_tenant then
    t_emission, t_tolerance, t_cap = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
    if t_emission <= 0 then
      return {0, TENANT_LIMIT, NO_ACCESS_RETRY}
    end
    t_tat = read(KEYS[6])
    local at = earliest(t_tat, t_tolerance, now)
    if at > now then
      return {0, TENANT_LIMIT, at - now}
    end
  end

  -- Own track if free now; else the most idle other track if free now; else own next slot.
  local chosen, slot = lane, earliest(tat[lane], tolerance[lane], not_before)
  if slot > not_before then
    local best, best_at = nil, nil
    for i = 1, 3 do
      if i ~= lane then
        local at = tat[i] - tolerance[i]
        if best == nil or at < best_at then
          best, best_at = i, at
        end
      end
    end
    if best_at <= not_before then
      chosen, slot = best, not_before
    end
  end

  if slot - now > max_wait then
    local retry_at = slot - max_wait
    for i = 1, 3 do
      if i ~= lane then
        retry_at = math.min(retry_at, earliest(tat[i], tolerance[i], not_before))
      end
    end
    return {0, QUEUE_FULL, retry_at - now}
  end

  if has_tenant and slot > now then
    local queued = redis.call('ZCOUNT', KEYS[7], '(' .. int(now), '+inf')
    if queued >= t_cap then
      local first = redis.call('ZRANGEBYSCORE', KEYS[7], '(' .. int(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      local first_at = slot
      if first[2] then
        first_at = tonumber(first[2])
      end
      return {0, TENANT_QUEUE_CAP, first_at - now}
    end
  end

  -- Granted: commit. For one window after a pause, slots cost twice their interval.
  local step = emission[chosen]
  if pause_end > 0 and slot < pause_end + window then
    step = step * 2
  end
  local new_tat = math.max(tat[chosen], slot) + step
  redis.call('SET', KEYS[chosen], int(new_tat), 'PX', int(math.max(1, new_tat - now + 1000)))

  if has_tenant then
    local t_new = math.max(t_tat, now) + t_emission
    redis.call('SET', KEYS[6], int(t_new), 'PX', int(math.max(1, t_new - now + 1000)))
    -- Only queued slots are kept (a slot at `now` is never counted), so the queue is tidied
    -- when one is added: the common unqueued grant touches it not at all.
    if slot > now then
      redis.call('ZADD', KEYS[7], int(slot), ARGV[18])
      redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', int(now))
      redis.call('PEXPIRE', KEYS[7], int(max_wait + 1000))
    end
  end

  redis.call('ZADD', KEYS[5], int(slot), ARGV[18])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', int(now - window))
  redis.call('PEXPIRE', KEYS[5], int(max_wait + window + 1000))
  local count = redis.call('ZCARD', KEYS[5])
  local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  local reply = {1, slot, now, chosen, count, tonumber(oldest[2]), limit, window}
  if fetched or entitlement then
    reply[9] = fetched or ''
  end
  if entitlement then
    reply[10], reply[11], reply[12] = entitlement[1], entitlement[2], entitlement[3]
  end
  return reply
end

local function snapshot(now)
  local window = tonumber(ARGV[4])
  local since = '(' .. int(now - window)
  local count = redis.call('ZCOUNT', KEYS[5], since, '+inf')
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[5], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local oldest_at = 0
  if oldest[2] then
    oldest_at = tonumber(oldest[2])
  end
  return {now, read(KEYS[4]), read(KEYS[1]), read(KEYS[2]), read(KEYS[3]), count, oldest_at}
end

local function pause(now)
  local window, duration = tonumber(ARGV[4]), tonumber(ARGV[5])
  local pause_end = math.max(live_pause(now, window), now + math.max(0, duration))
  redis.call('SET', KEYS[4], int(pause_end), 'PX', int(math.max(1, pause_end - now + window)))
  return {pause_end, now}
end

local now = clock()
local op = ARGV[1]
if op == 'reserve' then
  return reserve(now)
elseif op == 'snapshot' then
  return snapshot(now)
elseif op == 'pause' then
  return pause(now)
end
return redis.error_reply('budget: unknown operation ' .. tostring(op))
