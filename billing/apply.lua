-- Applies one usage event exactly once. Returns "duplicate" (nothing changed),
-- "unknown" (usage counted, tenant missing, flagged) or "applied".
-- KEYS: 1 dedupe marker, 2 tenant hash, 3 month/model, 4 day/model, 5 month/key,
--       6 day/key, 7 month/stream, 8 session hash, 9 unknown-tenant flag,
--       10 month/stream prepaid debit state
-- ARGV: 1 dedupe ttl seconds, 2 ms, 3 model, 4 key field, 5 stream field, 6 final "1"/"0",
--       7 start ms, 8 track, 9 most overlap credited per session track (ms)
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 'duplicate'
end
-- Billed audio is the union of a session track's intervals: a resumed stream (the
-- client reconnected after a gateway crash and resent the audio after its last final)
-- meters again from its resume point, and the part already billed is not billed twice.
-- The session hash keeps, per track, the covered intervals ("s-e,s-e", sorted and
-- disjoint; one interval while events arrive in order) and the overlap credited so
-- far, which is capped (ARGV[9]) so that resuming cannot buy free audio. The union does
-- not depend on the order events arrive in.
local s = tonumber(ARGV[7])
local e = s + tonumber(ARGV[2])
local covField, ovlField = 'cov|' .. ARGV[8], 'ovl|' .. ARGV[8]
local ms = e - s
if e > s then
  local merged, overlap = {}, 0
  local lo, hi = s, e
  local cov = redis.call('HGET', KEYS[8], covField) or ''
  for a, b in string.gmatch(cov, '(%d+)-(%d+)') do
    a, b = tonumber(a), tonumber(b)
    local x, y = math.max(a, s), math.min(b, e)
    if y > x then overlap = overlap + (y - x) end
    if b < lo or a > hi then
      merged[#merged + 1] = {a, b}
    else
      lo, hi = math.min(lo, a), math.max(hi, b)
    end
  end
  merged[#merged + 1] = {lo, hi}
  table.sort(merged, function(p, q) return p[1] < q[1] end)
  local parts = {}
  for i, iv in ipairs(merged) do parts[i] = string.format('%d-%d', iv[1], iv[2]) end
  redis.call('HSET', KEYS[8], covField, table.concat(parts, ','))
  if overlap > 0 then
    local used = tonumber(redis.call('HGET', KEYS[8], ovlField)) or 0
    local credit = math.min(overlap, math.max(0, tonumber(ARGV[9]) - used))
    if credit > 0 then redis.call('HINCRBY', KEYS[8], ovlField, credit) end
    ms = ms - credit
  end
end
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
