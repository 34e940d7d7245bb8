-- Adds one settled request to its workspace's meter for its month: the totals and the model's
-- own counters in one hash, and the workspace's name in the month's index, so the month's
-- meters are listed without scanning keys. Both live the retention after their last write,
-- long enough to audit a month after it ends.
-- KEYS: the meter hash M, the month's index X. ARGV: workspace, model, retention in seconds,
-- then requests, prompt_tokens, completion_tokens, cost_micros (integers, sent as text so
-- HINCRBY adds them exactly), then the day (`YYYY-MM-DD`): its cost is added to the field
-- `day:YYYY-MM-DD` in the same hash, for spend per day.
local meter, index = KEYS[1], KEYS[2]
local workspace, model, retention = ARGV[1], ARGV[2], ARGV[3]
local names = {'requests', 'prompt_tokens', 'completion_tokens', 'cost_micros'}
for i, name in ipairs(names) do
  local amount = ARGV[i + 3]
  redis.call('HINCRBY', meter, name, amount)
  redis.call('HINCRBY', meter, 'model:' .. model .. ':' .. name, amount)
end
if ARGV[8] then
  redis.call('HINCRBY', meter, 'day:' .. ARGV[8], ARGV[7])
end
redis.call('SADD', index, workspace)
redis.call('EXPIRE', meter, retention)
redis.call('EXPIRE', index, retention)
return 1
