-- Applies one usage event exactly once. Returns "duplicate" (nothing changed),
-- "unknown" (usage counted, tenant missing, flagged) or "applied".
-- KEYS: 1 dedupe marker, 2 tenant hash, 3 month/model, 4 day/model, 5 month/key,
--       6 day/key, 7 month/stream, 8 session hash, 9 unknown-tenant flag,
--       10 month/stream prepaid debit state
-- ARGV: 1 dedupe ttl seconds, 2 ms, 3 model, 4 key field, 5 stream field, 6 final "1"/"0",
--       7 start ms, 8 track
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 'duplicate'
end
-- Every event is billed in full. What a connection that resumes a stream is not billed
-- for, the gateway leaves out of its events (billing.Resumes): billing never credits
-- overlaps, so no client can choose what it is charged.
local ms = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[3], ms)
redis.call('HINCRBY', KEYS[4], ARGV[3], ms)
redis.call('HINCRBY', KEYS[5], ARGV[4], ms)
redis.call('HINCRBY', KEYS[6], ARGV[4], ms)
local stream = redis.call('HINCRBY', KEYS[7], ARGV[5], ms)
redis.call('HINCRBY', KEYS[8], 'ms', ms)
redis.call('EXPIRE', KEYS[8], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('INCRBY', KEYS[9], ms)
  return 'unknown'
end
-- Prepaid debit in price units: one ms costs `rate` u (rate = minor units per audio hour).
-- KEYS[10] holds per stream the ms already debited and, once its Final event came, a
-- "|f" mark. A closed stream is debited up to its rounded, minimum-applied total, an
-- open one up to its raw total: the sum of debits is the same whatever order events
-- arrive in (redeliveries reorder them).
local t = redis.call('HMGET', KEYS[2], 'rate', 'round_ms', 'min_ms')
local rate = tonumber(t[1]) or 0
if rate > 0 then
  local closedField = ARGV[5] .. '|f'
  if ARGV[6] == '1' then redis.call('HSET', KEYS[10], closedField, '1') end
  local target = stream
  if redis.call('HEXISTS', KEYS[10], closedField) == 1 and stream > 0 then
    local r = tonumber(t[2]) or 0
    local mn = tonumber(t[3]) or 0
    if r > 1 and target % r ~= 0 then target = target + r - target % r end
    if target < mn then target = mn end
  end
  local charged = tonumber(redis.call('HGET', KEYS[10], ARGV[5])) or 0
  if target > charged then
    redis.call('HSET', KEYS[10], ARGV[5], string.format('%d', target))
    redis.call('HINCRBY', KEYS[2], 'balance_u', string.format('%d', -(target - charged) * rate))
  end
end
return 'applied'
