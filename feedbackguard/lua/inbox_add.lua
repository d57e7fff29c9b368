-- Append events to an inbox stream as long as it holds fewer than its cap.
-- KEYS[1] the inbox; ARGV[1] the cap; ARGV[2] the entry field for the event's JSON;
-- ARGV[3] a flag field set to "1" on every entry, or "" for none; ARGV[4..] the
-- events' JSON. Appends, in order, the events that fit and returns {appended, length
-- after}: the caller spools, refuses or keeps the rest. Checking and appending in one
-- script keeps the cap exact however many processes write at once (a length read
-- after each write lets concurrent requests overshoot it; docs/benchmarks.md).
local room = tonumber(ARGV[1]) - redis.call('XLEN', KEYS[1])
local n = math.min(math.max(room, 0), #ARGV - 3)
for i = 1, n do
  if ARGV[3] == '' then
    redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[i + 3])
  else
    redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[i + 3], ARGV[3], '1')
  end
end
return {n, redis.call('XLEN', KEYS[1])}
