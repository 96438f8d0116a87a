-- Reserves audio for one live stream out of what its tenant has left, counting the
-- audio every other live stream of the tenant (on any gateway) holds or has sent but
-- not yet had billed. All keys carry the tenant's {hash tag}: one Redis Cluster slot.
-- KEYS: 1 holds hash (field: stream member; value "grant|expiry ms|base|session"),
--       2 tenant hash, 3 this month's usage per model
-- ARGV: 1 member, 2 session (billed), 3 billable ms the connection has sent, 4 ms
--       wanted beyond it, 5 hold ttl ms, 6 mode ("payg", "monthly", "release"),
--       7 price per hour (payg) or included ms (monthly), 8 session usage key prefix
-- A hold's base is the session's billed ms when the hold was made: 0 for a new stream
-- (member == session), a resumed stream's earlier connections' otherwise, so that the
-- connection's own billed ms are billed(session) − base.
-- Returns {grant, free}: the connection may send up to grant billable ms in all; free
-- is what was left for it (≤ 0: nothing, the stream must stop at grant).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, sess = ARGV[1], ARGV[2]
local billable, want, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function billed(s)
  return tonumber(redis.call('HGET', ARGV[8] .. s, 'ms')) or 0
end
local function parse(v)
  local g, e, b, s = string.match(v or '', '^(%d+)|(%d+)|(%d+)|(.*)$')
  if not g then return nil end
  return tonumber(g), tonumber(e), tonumber(b), s
end
local function put(grant, base)
  redis.call('HSET', KEYS[1], member, string.format('%d|%d|%d|%s', grant, now + ttl, base, sess))
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
local _, _, base = parse(redis.call('HGET', KEYS[1], member))
if not base then
  if member == sess then base = 0 else base = billed(sess) end
end
if ARGV[6] == 'release' then
  -- The connection ended at billable: that much stays in flight until billing has it
  -- (or ttl passes), so that its last seconds are not handed out twice.
  put(billable, base)
  return {billable, 0}
end
-- A prepaid stream is debited its total rounded up to round_ms, and at least min_ms
-- (apply.lua): a hold counts what its stream will be debited, not only its ms.
local r, mn = 1, 0
if ARGV[6] == 'payg' then
  local rm = redis.call('HMGET', KEYS[2], 'round_ms', 'min_ms')
  r, mn = math.max(1, tonumber(rm[1]) or 1), tonumber(rm[2]) or 0
end
local function debit(x)
  if x % r ~= 0 then x = x + r - x % r end
  if x < mn then x = mn end
  return x
end
local inflight = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  local g, e, b, s = parse(all[i + 1])
  if not g or e <= now then
    redis.call('HDEL', KEYS[1], f)
  elseif f ~= member then
    local open = debit(g) - (billed(s) - b)
    if open > 0 then inflight = inflight + open end
  end
end
local left
if ARGV[6] == 'payg' then
  local bal = tonumber(redis.call('HGET', KEYS[2], 'balance_u')) or 0
  left = math.floor(bal / tonumber(ARGV[7]))
else
  left = tonumber(ARGV[7])
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do left = left - tonumber(v) end
end
-- The most this connection may be debited in all: what is left, less the others'
-- share, plus what it was already debited; then the most it may send within that.
local cap = left - inflight + (billed(sess) - base)
cap = cap - cap % r
if cap < mn then cap = 0 end
local grant = math.max(billable, math.min(billable + want, cap))
put(grant, base)
return {grant, cap - billable}
