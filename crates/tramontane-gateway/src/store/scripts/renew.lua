-- Extends a live reservation's lease: its gateway is still working on the request.
-- KEYS: R, I. ARGV: id, lease (ms). Returns 1 when renewed, 0 when the reservation is gone
-- (settled, released, or lapsed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local record, index = KEYS[1], KEYS[2]
local id = ARGV[1]
local lease = tonumber(ARGV[2])
local items = redis.call('LRANGE', record, 0, -1)
if #items == 0 then
  return 0
end
local deadline = now + lease
for i = 1, #items, 2 do
  local counter = items[i]
  local leases = counter .. ':leases'
  if redis.call('ZSCORE', leases, id) then
    redis.call('ZADD', leases, 'XX', deadline, id)
    for _, key in ipairs({counter, leases, counter .. ':held'}) do
      redis.call('PEXPIREAT', key, deadline + lease, 'GT')
    end
  end
end
redis.call('PEXPIRE', record, lease)
redis.call('ZADD', index, 'XX', deadline, id)
redis.call('PEXPIREAT', index, deadline, 'GT')
return 1
