-- Settles or releases a reservation: gives back what it holds and, when settling, adds what
-- the request really used, line by line in reservation order. An unknown id (settled,
-- released, or lapsed with its lease) does nothing.
-- KEYS: R, I. ARGV: id, 'settle' or 'release', then what each line used (a line without a
-- figure counts its whole reservation as used).
local record, index = KEYS[1], KEYS[2]
local id = ARGV[1]
local settling = ARGV[2] == 'settle'
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
    redis.call('HINCRBY', counter, 'used', ARGV[(i + 1) / 2 + 2] or items[i + 1])
  end
end
redis.call('DEL', record)
redis.call('ZREM', index, id)
return 1
