-- Takes an amount from every budget line at once, or from none if any line would pass its
-- limit counting what is used and what live reservations hold. Each reservation is a lease:
-- its holder renews it while the request runs; one whose gateway died lapses at its
-- deadline, and the next reservation on the counter gives its amount back.
--
-- Per counter C: hash C {used, reserved}; sorted set C:leases (reservation id -> deadline,
-- ms); hash C:held (reservation id -> amount). The reservation record R lists counter,
-- amount pairs in line order and expires with its lease; the index I (id -> deadline)
-- counts open reservations.
-- KEYS: C1, C1:leases, C1:held, ..., R, I.
-- ARGV: id, lease (ms), then per line: limit, amount, window end (ms since the epoch).
-- Returns {0, 0} when reserved, {-1, 0} when the id is taken, else {index (1-based),
-- milliseconds until that line's window ends}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local lease = tonumber(ARGV[2])
local record = KEYS[#KEYS - 1]
local index = KEYS[#KEYS]
local lines = (#KEYS - 2) / 3
if redis.call('EXISTS', record) == 1 then
  return {-1, 0}
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
for i = 1, lines do
  local counter, leases, held = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
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
  local limit = tonumber(ARGV[3 * i])
  local amount = tonumber(ARGV[3 * i + 1])
  if used + reserved + amount > limit then
    return {i, math.max(tonumber(ARGV[3 * i + 2]) - now, 0)}
  end
end
local deadline = now + lease
for i = 1, lines do
  local counter, leases, held = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local amount = ARGV[3 * i + 1]
  -- Forgotten once the window is over and no lease can still be settled into it.
  local forget = math.max(tonumber(ARGV[3 * i + 2]), deadline) + lease
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
return {0, 0}
