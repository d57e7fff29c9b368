-- Walk the open cases in triage order (highest score first) from a cursor and return
-- those matching the filters; in 'claim' mode lease the first unleased match.
--
-- KEYS[1] order (ZSET case -> score: by harm or by risk)   KEYS[2] counts (HASH)
-- KEYS[3] leases (ZSET case -> expiry ms)   KEYS[4] holders (HASH case -> moderator)
-- ARGV: mode ('page'|'claim'), cursor score ('' = from the top), cursor case, limit,
--       scan budget, now (ms), lease ms, actor, kind ('' = any), reason code ('' = any),
--       mean risk min, mean risk max, a case to pass over ('' = none)
-- A claim passes over cases another moderator holds a live lease on (the actor's own
-- come back to them).
-- Returns {cases, last score, last case, exhausted (1|0)}.
-- Shares its walk and lease sweep with review_scan.lua by copy: a script cannot include another.
local order, counts, leases, holders = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode = ARGV[1]
local cursor_score, cursor_id = ARGV[2], ARGV[3]
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local now, lease_ms, actor = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local kind, code = ARGV[9], ARGV[10]
local rmin, rmax = tonumber(ARGV[11]), tonumber(ARGV[12])
local skip = ARGV[13]
local claiming = mode == 'claim'

if claiming then
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    redis.call('HDEL', holders, unpack(expired))
  end
end

local function matches(c)
  if kind ~= '' and redis.call('HGET', counts, c .. ':k') ~= kind then return false end
  if code ~= '' and redis.call('HEXISTS', counts, c .. ':c:' .. code) == 0 then return false end
  if rmin > 0 or rmax < 1 then
    local n = tonumber(redis.call('HGET', counts, c .. ':n') or '0')
    if n <= 0 then return false end
    local mean = tonumber(redis.call('HGET', counts, c .. ':r')) / n
    if mean < rmin or mean > rmax then return false end
  end
  if claiming then
    if c == skip then return false end
    local until_ms = redis.call('ZSCORE', leases, c)
    if until_ms and tonumber(until_ms) > now and redis.call('HGET', holders, c) ~= actor then
      return false
    end
  end
  return true
end

local start, cursor_n = '+inf', nil
if cursor_score ~= '' then
  start = cursor_score
  cursor_n = tonumber(cursor_score)
end
local out, scanned, offset, chunk = {}, 0, 0, 256
local last_score, last_id = cursor_score, cursor_id
while scanned < budget do
  local rows = redis.call('ZREVRANGEBYSCORE', order, start, '-inf', 'WITHSCORES', 'LIMIT', offset, chunk)
  if #rows == 0 then
    return {out, last_score, last_id, 1}
  end
  -- the next chunk starts at this chunk's last score, past the cases already seen at it
  local tail_score = rows[#rows]
  local tail = 0
  for i = #rows, 2, -2 do
    if rows[i] ~= tail_score then break end
    tail = tail + 1
  end
  if tail_score == start then offset = offset + tail else offset = tail end
  start = tail_score
  for i = 1, #rows, 2 do
    local c, score = rows[i], rows[i + 1]
    -- equal scores come in reverse byte order: those at the cursor's score and not
    -- below its case were on an earlier page
    if not (cursor_n ~= nil and tonumber(score) == cursor_n and c >= cursor_id) then
      scanned = scanned + 1
      last_score, last_id = score, c
      if matches(c) then
        out[#out + 1] = c
        if claiming then
          redis.call('ZADD', leases, now + lease_ms, c)
          redis.call('HSET', holders, c, actor)
        end
        if #out >= limit then
          return {out, last_score, last_id, 0}
        end
      end
      if scanned >= budget then break end
    end
  end
end
return {out, last_score, last_id, 0}
