-- Move up to ARGV[2] pending event ids due at or before ARGV[1] (event time, seconds)
-- from the pending set KEYS[1] to the releasing set KEYS[2], atomically, and return
-- them. Ids already in the releasing set (a release that crashed) are returned first.
local out = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)
if #out > 0 then
  return out
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[2], due[i + 1], due[i])
  redis.call('ZREM', KEYS[1], due[i])
  out[#out + 1] = due[i]
end
return out
