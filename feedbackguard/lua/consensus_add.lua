-- Add a batch's votes to the items' consensus hashes and refresh their expiry.
-- KEYS: the items' consensus hashes.
-- ARGV: ttl seconds, then per key: the number of (value, weight) pairs n, then n pairs.
local ttl = tonumber(ARGV[1])
local at = 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  at = at + 1
  for _ = 1, n do
    redis.call('HINCRBYFLOAT', key, ARGV[at], ARGV[at + 1])
    at = at + 2
  end
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
