-- Move up to ARGV[1] held events (oldest first) back into the inbox, atomically, so
-- that two operators requeueing at once never send an event twice nor drop one.
-- KEYS[1] the held list, KEYS[2] the inbox stream, KEYS[3] the namespace's stats hash;
-- ARGV[2] the inbox entry field. Returns how many were moved.
local raws = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for _, raw in ipairs(raws) do
  redis.call('XADD', KEYS[2], '*', ARGV[2], raw)
end
if #raws > 0 then
  redis.call('LTRIM', KEYS[1], #raws, -1)
  redis.call('HINCRBY', KEYS[3], 'held', -#raws)
end
return #raws
