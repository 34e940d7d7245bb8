-- What each counter holds, for `tramontane usage`, in one round trip and read only: a budget
-- counter's used plus reserved (a request in flight holds its worst case; a lapsed lease is
-- given back by the next reservation, not here), a rate's admissions in the last 60 s by
-- Redis's own clock, as admit_and_reserve.lua counts them.
-- KEYS: the counters. ARGV: per key, `rate` or `budget`.
-- Returns one integer per key, in order (0 for a key never written).
local window = 60000000
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  if ARGV[i] == 'rate' then
    out[i] = redis.call('ZCOUNT', key, '(' .. (now_us - window), '+inf')
  else
    local used = tonumber(redis.call('HGET', key, 'used') or '0')
    local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
    out[i] = math.max(used + reserved, 0)
  end
end
return out
