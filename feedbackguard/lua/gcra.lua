-- GCRA rate limits for one batch of feedback events (feedbackguard.checks.ratelimit).
--
-- Every limit key holds one number, its TAT (theoretical arrival time, integer
-- microseconds of event time), with a TTL that ends when the TAT is reached: a missing
-- key and a key whose TAT is in the past mean the same thing, a full budget. State is
-- O(1) per key whatever the limit (no sorted sets, no per-event entries).
--
-- KEYS: every distinct key the batch touches (limit keys and first-seen keys). They
--       are all in one namespace, so they share a Cluster hash slot.
-- ARGV[1]: JSON object, all times in integer microseconds of event time:
--   age    accounts first seen less than `age` ago are new (0 = no first-seen keys)
--   grace  milliseconds added to every limit key's TTL
--   l      per limit: [T, tau, T_new, tau_new], the emission interval and the burst
--          tolerance of the normal and of the new-account tier
--   p      per kind: the 1-based indices of the limits that apply to it
--   e      every event, in batch order, one after the other in one flat array (a
--          table per event cost cjson twice the decoding): now, fs, new, kind, key1,
--          key2, ... where now = the event's received_at; fs = KEYS index of the
--          account's first-seen key (0 = age known, use `new`); new = 1 for a new
--          account; kind = index in `p`; then the KEYS index of the key of each of the
--          kind's limits, in the order of `p` (0 = scope missing from the event, limit
--          skipped).
--
-- An event is admitted when, for every limit, TAT - now <= tau; only then does every
-- one of its limits advance (TAT = max(TAT, now) + T). An over-limit event consumes no
-- budget anywhere. Later events of the batch see the earlier ones.
--
-- Returns a flat array of pairs: the event's 0-based position, then 2 * (limit - 1) + tier
-- (tier 1 = new-account limit), for every limit every rejected event exceeded.

local MGET_CHUNK = 1000 -- keys per MGET (unpack() is bounded by the Lua C stack)

local call = redis.call
local format = string.format
local floor = math.floor

local args = cjson.decode(ARGV[1])
local limits = args.l
local plans = args.p
local age = args.age
local grace = args.grace

-- Current value of every key, as a number (nil when missing).
local value = {}
for first = 1, #KEYS, MGET_CHUNK do
  local last = math.min(first + MGET_CHUNK - 1, #KEYS)
  local got = call('MGET', unpack(KEYS, first, last))
  for i = first, last do
    local v = got[i - first + 1]
    if v then value[i] = tonumber(v) end
  end
end

local changed = {}  -- limit key index -> latest event time that advanced it
local seen = {}     -- first-seen key index -> latest event time of the account
local out = {}

local e = args.e
local size = #e
local at = 0   -- where the event's fields start in `e`, less one
local pos = 0  -- the event's 0-based position
while at < size do
  local now = e[at + 1]
  local fs = e[at + 2]
  local tier = e[at + 3]
  local plan = plans[e[at + 4]]
  if fs > 0 then
    local first = value[fs]
    if first == nil or now < first then
      first = now
      value[fs] = now
    end
    if seen[fs] == nil or now > seen[fs] then seen[fs] = now end
    if now - first < age then tier = 1 else tier = 0 end
  end
  local tau_at = 2 + 2 * tier
  local over = false
  for j = 1, #plan do
    local k = e[at + 4 + j]
    if k > 0 then
      local tat = value[k]
      if tat ~= nil and tat - now > limits[plan[j]][tau_at] then
        over = true
        out[#out + 1] = pos
        out[#out + 1] = 2 * (plan[j] - 1) + tier
      end
    end
  end
  if not over then
    local t_at = 1 + 2 * tier
    for j = 1, #plan do
      local k = e[at + 4 + j]
      if k > 0 then
        local tat = value[k]
        if tat == nil or tat < now then tat = now end
        value[k] = tat + limits[plan[j]][t_at]
        local last = changed[k]
        if last == nil or now > last then changed[k] = now end
      end
    end
  end
  at = at + 4 + #plan
  pos = pos + 1
end

-- TATs go through format('%d'): Lua's own number-to-string keeps 14 significant
-- digits. TTLs are whole milliseconds, rounded up.
for k, now in pairs(changed) do
  local tat = value[k]
  call('PSETEX', KEYS[k], floor((tat - now) / 1000) + 1 + grace, format('%d', tat))
end
if age > 0 then
  local age_ms = floor(age / 1000) + 1
  for k, _ in pairs(seen) do
    call('PSETEX', KEYS[k], age_ms, format('%d', value[k]))
  end
end

return out
