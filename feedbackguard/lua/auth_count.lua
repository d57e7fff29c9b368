-- Count one authentication attempt or failure in a fixed window
-- (feedbackguard.web.auth).
--
-- INCR, then give the counter the window's expiry when it has none (the first count of
-- a window, or a counter left without one): one atomic step, so parallel requests each
-- get their own count, and no EXPIRE NX, which Redis 6.2 does not have.
--
-- KEYS[1]: the counter.
-- ARGV[1]: the window in seconds.
-- Returns {count, seconds until the window ends}.
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('EXPIRE', KEYS[1], ttl)
end
return {count, ttl}
