-- Counts one request against every rate and reserves its worst case against every budget
-- line, all at once: every rate and every line is checked before anything is written, so a
-- request refused for a budget takes no rate slot and one refused for a rate holds no
-- reservation. Rates are checked first.
--
-- Rates: a sliding window of 60 s per rate, a sorted set of admission times (Redis time, in
-- microseconds), trimmed on every call and expiring a minute after its last admission.
--
-- Budgets: each reservation is a lease: its holder renews it while the request runs; one
-- whose gateway died lapses at its deadline, and the next reservation on the counter gives
-- its amount back. Per counter C: hash C {used, reserved}; sorted set C:leases (reservation
-- id -> deadline, ms); hash C:held (reservation id -> amount). The reservation record R
-- lists counter, amount pairs in line order and expires with its lease; the index I (id ->
-- deadline) counts open reservations. With no lines nothing is reserved and R, I are not
-- touched.
--
-- KEYS: the rate keys, then C1, C1:leases, C1:held, ... per line, then R, I.
-- ARGV: the number of rates n, the limit of each rate in order, the admission's member (unique
-- per request, so two requests in one microsecond count twice), the reservation id, the
-- lease (ms), then per line: limit, amount, window end (ms since the epoch).
-- Returns {0, 0, 0} when admitted; {1, rate index (1-based), microseconds until a slot
-- frees}; {2, line index (1-based), milliseconds until that line's window ends}; {-1, 0, 0}
-- when the reservation id is taken.
local window = 60000000
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local rates = tonumber(ARGV[1])
local member = ARGV[rates + 2]
local id = ARGV[rates + 3]
local lease = tonumber(ARGV[rates + 4])
local line_args = rates + 4
local record = KEYS[#KEYS - 1]
local index = KEYS[#KEYS]
local lines = (#KEYS - rates - 2) / 3

local function line_keys(i)
  local k = rates + 3 * i
  return KEYS[k - 2], KEYS[k - 1], KEYS[k]
end

if lines > 0 and redis.call('EXISTS', record) == 1 then
  return {-1, 0, 0}
end

-- Check: trimming expired admissions and lapsed leases changes no limit's answer.
for i = 1, rates do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_us - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 1]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local wait = window
    if oldest[2] then
      wait = tonumber(oldest[2]) + window - now_us
    end
    return {1, i, wait}
  end
end
if lines > 0 then
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
end
for i = 1, lines do
  local counter, leases, held = line_keys(i)
  for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
    local amount = tonumber(redis.call('HGET', held, lapsed) or '0')
    if redis.call('EXISTS', counter) == 1 then
      redis.call('HINCRBY', counter, 'reserved', -amount)
    end
    redis.call('HDEL', held, lapsed)
    redis.call('ZREM', leases, lapsed)
  end
  local used = tonumber(redis.call('HGET', counter, 'used') or '0')
  local reserved = tonumber(redis.call('HGET', counter, 'reserved') or '0')
  local limit = tonumber(ARGV[line_args + 3 * i - 2])
  local amount = tonumber(ARGV[line_args + 3 * i - 1])
  if used + reserved + amount > limit then
    return {2, i, math.max(tonumber(ARGV[line_args + 3 * i]) - now, 0)}
  end
end

-- Everything has room: count and reserve.
for i = 1, rates do
  redis.call('ZADD', KEYS[i], now_us, member)
  redis.call('PEXPIRE', KEYS[i], window / 1000 + 1000)
end
if lines == 0 then
  return {0, 0, 0}
end
local deadline = now + lease
for i = 1, lines do
  local counter, leases, held = line_keys(i)
  local amount = ARGV[line_args + 3 * i - 1]
  -- Forgotten once the window is over and no lease can still be settled into it.
  local forget = math.max(tonumber(ARGV[line_args + 3 * i]), deadline) + lease
  redis.call('HINCRBY', counter, 'reserved', amount)
  redis.call('HINCRBY', counter, 'used', 0)
  redis.call('HSET', held, id, amount)
  redis.call('ZADD', leases, deadline, id)
  for _, key in ipairs({counter, leases, held}) do
    redis.call('PEXPIREAT', key, forget, 'GT')
    if redis.call('PTTL', key) < 0 then
      redis.call('PEXPIREAT', key, forget)
    end
  end
  redis.call('RPUSH', record, counter, amount)
end
redis.call('PEXPIRE', record, lease)
redis.call('ZADD', index, deadline, id)
-- The index lives as long as its latest lease, so gateways that all die leave nothing.
redis.call('PEXPIREAT', index, deadline, 'GT')
if redis.call('PTTL', index) < 0 then
  redis.call('PEXPIREAT', index, deadline)
end
return {0, 0, 0}
