-- Settles or releases a reservation: gives back what it holds and, when settling, adds what
-- the request really used, line by line in reservation order. An unknown id (settled,
-- released, or lapsed with its lease) does nothing to the budgets.
-- When settling, the request may also be added to its workspace's meter in the same call (one
-- round trip for the whole answer instead of two), exactly as meter.lua adds it: the meter
-- counts what the answer used even when its reservation had already lapsed.
-- KEYS: R, I, and when metering the meter hash M and the month's index X.
-- ARGV: id, 'settle' or 'release'; when metering: workspace, model, retention in seconds,
-- requests, prompt_tokens, completion_tokens, cost_micros, day (as meter.lua takes them);
-- then what each line used (a line without a figure counts its whole reservation as used).
local record, index = KEYS[1], KEYS[2]
local id = ARGV[1]
local settling = ARGV[2] == 'settle'
local used_from = 2
if KEYS[3] then
  local meter, month = KEYS[3], KEYS[4]
  local workspace, model, retention = ARGV[3], ARGV[4], ARGV[5]
  local names = {'requests', 'prompt_tokens', 'completion_tokens', 'cost_micros'}
  for i, name in ipairs(names) do
    local amount = ARGV[i + 5]
    redis.call('HINCRBY', meter, name, amount)
    redis.call('HINCRBY', meter, 'model:' .. model .. ':' .. name, amount)
  end
  redis.call('HINCRBY', meter, 'day:' .. ARGV[10], ARGV[9])
  redis.call('SADD', month, workspace)
  redis.call('EXPIRE', meter, retention)
  redis.call('EXPIRE', month, retention)
  used_from = 10
end
local items = redis.call('LRANGE', record, 0, -1)
if #items == 0 then
  redis.call('ZREM', index, id)
  return 0
end
for i = 1, #items, 2 do
  local counter = items[i]
  local amount = tonumber(items[i + 1])
  local leases, held = counter .. ':leases', counter .. ':held'
  local live = redis.call('EXISTS', counter) == 1
  if redis.call('HEXISTS', held, id) == 1 then
    if live then
      redis.call('HINCRBY', counter, 'reserved', -amount)
    end
    redis.call('HDEL', held, id)
    redis.call('ZREM', leases, id)
  end
  if settling and live then
    redis.call('HINCRBY', counter, 'used', ARGV[(i + 1) / 2 + used_from] or items[i + 1])
  end
end
redis.call('DEL', record)
redis.call('ZREM', index, id)
return 1
