-- Every workspace's meter for one month, read in one round trip: each workspace the month's
-- index names, with its meter hash (a workspace whose hash has expired comes back empty).
-- KEYS: the month's index X. ARGV: the month's meter key prefix (workspace W's meter is the
-- prefix followed by W).
-- Returns workspace, { field, value, ... }, workspace, { ... }, ...
local out = {}
for _, workspace in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = workspace
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. workspace)
end
return out
