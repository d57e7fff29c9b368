-- Give back one counted login attempt that succeeded (feedbackguard.web.auth).
--
-- DECR only while the counter exists and is positive: a counter whose window ended
-- meanwhile is not recreated (it would have no expiry).
--
-- KEYS[1]: the counter.
-- Returns the count left (0 when there was none).
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count <= 0 then
  return 0
end
return redis.call('DECR', KEYS[1])
