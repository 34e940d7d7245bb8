-- Claims the thresholds each counter has reached, once per rule, window and threshold across
-- every replica: the first SET NX wins, the claim expires when the window ends.
-- KEYS: per check, its counter C, then one claim key per threshold.
-- ARGV: per check, limit, window end (ms since the epoch), the number of thresholds n, then
-- the n thresholds (percent, ascending).
-- Returns a flat list of (check index, 1-based; threshold; what C held) per claim won.
local won = {}
local k, a, check = 1, 1, 0
while a <= #ARGV do
  check = check + 1
  local limit = tonumber(ARGV[a])
  local ends = tonumber(ARGV[a + 1])
  local n = tonumber(ARGV[a + 2])
  local counter = KEYS[k]
  local used = tonumber(redis.call('HGET', counter, 'used') or '0')
  local reserved = tonumber(redis.call('HGET', counter, 'reserved') or '0')
  local held = used + reserved
  for i = 1, n do
    local threshold = tonumber(ARGV[a + 2 + i])
    if limit > 0 and held * 100 >= threshold * limit then
      if redis.call('SET', KEYS[k + i], '1', 'NX', 'PXAT', ends) then
        table.insert(won, check)
        table.insert(won, threshold)
        table.insert(won, held)
      end
    end
  end
  k = k + 1 + n
  a = a + 3 + n
end
return won
