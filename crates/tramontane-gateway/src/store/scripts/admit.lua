-- Counts one request against every rate at once, or against none if any is full.
-- A sliding window of 60 s per rate: a sorted set of admission times (Redis time, in
-- microseconds), trimmed on every call and expiring a minute after its last admission.
-- KEYS: the rate keys. ARGV: the limit of each rate, in order, then the request's id.
-- Returns {0, 0} when admitted, else {index (1-based), microseconds until a slot frees}.
local window = 60000000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local id = ARGV[#KEYS + 1]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[i])
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local wait = window
    if oldest[2] then
      wait = tonumber(oldest[2]) + window - now
    end
    return {i, wait}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, id)
  redis.call('PEXPIRE', key, window / 1000 + 1000)
end
return {0, 0}
