-- Keep the review cases in step with the review set, in the MULTI that changes it
-- (pipeline.state.apply -> review.cases.update). See feedbackguard/review/cases.py.
--
-- KEYS[1] members (ZSET id -> case)       KEYS[2] events (HASH id -> JSON {r, h, a, k})
-- KEYS[3] open (HASH case key -> case)     KEYS[4] seq (the last case number)
-- KEYS[5] meta (HASH case -> JSON)         KEYS[6] counts (HASH "<case>:<field>" -> n)
-- KEYS[7] by-harm  KEYS[8] by-risk  KEYS[9] by-age  KEYS[10] closed  KEYS[11] over
-- KEYS[12] leases (ZSET case -> ms)        KEYS[13] holders (HASH case -> moderator)
-- ARGV[1] now (wall seconds, when a case closes)
-- ARGV[2] JSON {"l": [ids leaving review], "j": [[id, account, received_at, risk, harm,
--         kind, label, case hint, [codes], top code, top detail, top score], ...]}
-- Counts of an open case <c>: <c>:n events, <c>:r risk sum, <c>:h harm sum,
-- <c>:na accounts, <c>:k kind, <c>:w strongest reason score, <c>:cl JSON list of codes,
-- <c>:c:<code> events with the code, <c>:a:<account> events of the account,
-- <c>:v joins so far (kept while the case is remembered: a page shows what it saw).
local members, events, open, seq, meta, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local by_harm, by_risk, by_age, closed, over = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local leases, holders = KEYS[12], KEYS[13]
local now = ARGV[1]
local ops = cjson.decode(ARGV[2])
local touched = {}

local RANK = {a = 1, i = 2, g = 3}

local function code_list(c, code, add)
  local raw = redis.call('HGET', counts, c .. ':cl')
  local list = raw and cjson.decode(raw) or {}
  if add then
    list[#list + 1] = code
  else
    for i = #list, 1, -1 do
      if list[i] == code then table.remove(list, i) end
    end
  end
  if #list > 0 then
    redis.call('HSET', counts, c .. ':cl', cjson.encode(list))
  else
    redis.call('HDEL', counts, c .. ':cl')
  end
end

local function leave(id)
  local c = redis.call('ZSCORE', members, id)
  if not c then return end
  local raw = redis.call('HGET', events, id)
  redis.call('ZREM', members, id)
  redis.call('HDEL', events, id)
  redis.call('HINCRBY', counts, c .. ':n', -1)
  touched[c] = true
  if not raw then return end  -- what it counted is unknown: only its place is given back
  local info = cjson.decode(raw)
  redis.call('HINCRBYFLOAT', counts, c .. ':r', -info.r)
  redis.call('HINCRBYFLOAT', counts, c .. ':h', -info.h)
  if redis.call('HINCRBY', counts, c .. ':a:' .. info.a, -1) <= 0 then
    redis.call('HDEL', counts, c .. ':a:' .. info.a)
    redis.call('HINCRBY', counts, c .. ':na', -1)
  end
  for _, code in ipairs(info.k) do
    if redis.call('HINCRBY', counts, c .. ':c:' .. code, -1) <= 0 then
      redis.call('HDEL', counts, c .. ':c:' .. code)
      code_list(c, code, false)
    end
  end
end

local function join(c, e)
  local id, account, t, risk, harm = e[1], e[2], e[3], e[4], e[5]
  local codes, top_code, top_detail, top_score = e[9], e[10], e[11], e[12]
  redis.call('ZADD', members, c, id)
  redis.call('HSET', events, id, cjson.encode({r = risk, h = harm, a = account, k = codes}))
  redis.call('HINCRBY', counts, c .. ':n', 1)
  redis.call('HINCRBY', counts, c .. ':v', 1)
  redis.call('HINCRBYFLOAT', counts, c .. ':r', risk)
  redis.call('HINCRBYFLOAT', counts, c .. ':h', harm)
  if redis.call('HINCRBY', counts, c .. ':a:' .. account, 1) == 1 then
    redis.call('HINCRBY', counts, c .. ':na', 1)
  end
  for _, code in ipairs(codes) do
    if redis.call('HINCRBY', counts, c .. ':c:' .. code, 1) == 1 then
      code_list(c, code, true)
    end
  end
  redis.call('ZADD', by_age, 'LT', t, c)
  local best = tonumber(redis.call('HGET', counts, c .. ':w') or '-1')
  local raw = redis.call('HGET', meta, c)
  if top_code ~= '' and top_score > best and raw then
    redis.call('HSET', counts, c .. ':w', top_score)
    local m = cjson.decode(raw)
    m.code, m.detail, m.score = top_code, top_detail, top_score
    redis.call('HSET', meta, c, cjson.encode(m))
  end
  touched[c] = true
end

local function enter(e)
  local id, kind, label, hint = e[1], e[6], e[7], e[8]
  local current = redis.call('ZSCORE', members, id)
  if current then
    local current_kind = redis.call('HGET', counts, current .. ':k') or 'a'
    leave(id)
    -- an event stays in its case, unless it now belongs to a kind of case that
    -- explains more (an account's event found in a group moves to the group's case)
    if RANK[kind] <= RANK[current_kind] then
      join(current, e)
      return
    end
  end
  local key = kind .. ':' .. label
  local c = nil
  if hint ~= '' and redis.call('HEXISTS', meta, hint) == 1 then
    c = hint
  else
    c = redis.call('HGET', open, key)
  end
  if not c or redis.call('HEXISTS', meta, c) == 0 then
    c = tostring(redis.call('INCR', seq))
    redis.call('HSET', meta, c, cjson.encode({kind = kind, label = label, opened = e[3]}))
  end
  if not redis.call('HGET', counts, c .. ':k') then
    -- a new case, or a closed one opened again (undo, a moderator reopening it)
    local m = cjson.decode(redis.call('HGET', meta, c))
    redis.call('HSET', counts, c .. ':k', m.kind)
    local k = m.kind .. ':' .. m.label
    if not redis.call('HGET', open, k) then redis.call('HSET', open, k, c) end
  end
  join(c, e)
end

for _, id in ipairs(ops.l) do leave(id) end
for _, e in ipairs(ops.j) do enter(e) end

for c in pairs(touched) do
  local n = tonumber(redis.call('HGET', counts, c .. ':n') or '0')
  if n <= 0 then
    local raw = redis.call('HGET', meta, c)
    if raw then
      local m = cjson.decode(raw)
      local key = m.kind .. ':' .. m.label
      if redis.call('HGET', open, key) == c then redis.call('HDEL', open, key) end
    end
    redis.call('HDEL', counts, c .. ':n', c .. ':r', c .. ':h', c .. ':na', c .. ':k', c .. ':w',
      c .. ':cl')
    redis.call('ZREM', by_harm, c)
    redis.call('ZREM', by_risk, c)
    redis.call('ZREM', by_age, c)
    redis.call('ZREM', leases, c)
    redis.call('HDEL', holders, c)
    redis.call('ZADD', closed, now, c)
  else
    local risk = math.max(0, tonumber(redis.call('HGET', counts, c .. ':r')))
    local harm = math.max(0, tonumber(redis.call('HGET', counts, c .. ':h')))
    redis.call('ZADD', by_risk, risk, c)
    redis.call('ZADD', by_harm, harm * risk / n, c)
    redis.call('ZREM', closed, c)
    redis.call('ZREM', over, c)
  end
end
return 1
