-- Walk a review index in (received_at, event_id) order from a cursor and return the
-- ids still in review that match the filters; in 'claim' mode also lease them.
--
-- KEYS[1] primary index (ZSET id -> received_at): the review set itself or a filter's
-- KEYS[2] review set   KEYS[3] risk (ZSET id -> risk)
-- KEYS[4] leases (ZSET id -> expiry ms)   KEYS[5] lease holders (HASH id -> actor)
-- KEYS[6..] further filter indexes an id must also be in
-- ARGV: mode ('page'|'claim'), cursor score ('' = from the start), cursor id, limit,
--       risk min, risk max, scan budget, now (ms), lease ms, actor, skip leased ('1'|'0')
-- Returns {ids, last score, last id, exhausted (1|0)}.
-- Shares its walk and lease sweep with case_scan.lua by copy: a script cannot include another.
local mode = ARGV[1]
local cursor_score = ARGV[2]
local cursor_id = ARGV[3]
local limit = tonumber(ARGV[4])
local rmin = tonumber(ARGV[5])
local rmax = tonumber(ARGV[6])
local budget = tonumber(ARGV[7])
local now = tonumber(ARGV[8])
local lease_ms = tonumber(ARGV[9])
local actor = ARGV[10]
local skip_leased = ARGV[11] == '1'
local primary, review, risk, leases, holders = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

if mode == 'claim' then
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    redis.call('HDEL', holders, unpack(expired))
  end
end

local start = '-inf'
local cursor_n = nil
if cursor_score ~= '' then
  start = cursor_score
  cursor_n = tonumber(cursor_score)
end
local filter_risk = rmin > 0 or rmax < 1
local out = {}
local scanned = 0
local offset = 0
local chunk = 512
local last_score, last_id = cursor_score, cursor_id
while scanned < budget do
  local rows = redis.call('ZRANGEBYSCORE', primary, start, '+inf', 'WITHSCORES', 'LIMIT', offset, chunk)
  if #rows == 0 then
    return {out, last_score, last_id, 1}
  end
  -- the next chunk starts at this chunk's last score, past the ids already seen at it
  local tail_score = rows[#rows]
  local tail = 0
  for i = #rows, 2, -2 do
    if rows[i] ~= tail_score then break end
    tail = tail + 1
  end
  if tail_score == start then offset = offset + tail else offset = tail end
  start = tail_score
  for i = 1, #rows, 2 do
    local id, score = rows[i], rows[i + 1]
    if not (cursor_n ~= nil and tonumber(score) == cursor_n and id <= cursor_id) then
      scanned = scanned + 1
      last_score, last_id = score, id
      local ok = true
      if primary ~= review and not redis.call('ZSCORE', review, id) then ok = false end
      if ok and filter_risk then
        local value = tonumber(redis.call('ZSCORE', risk, id) or '-1')
        ok = value >= rmin and value <= rmax
      end
      if ok then
        for k = 6, #KEYS do
          if not redis.call('ZSCORE', KEYS[k], id) then ok = false break end
        end
      end
      if ok and skip_leased then
        local until_ms = redis.call('ZSCORE', leases, id)
        if until_ms and tonumber(until_ms) > now then ok = false end
      end
      if ok then
        out[#out + 1] = id
        if mode == 'claim' then
          redis.call('ZADD', leases, now + lease_ms, id)
          redis.call('HSET', holders, id, actor)
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
