-- SET KEYS[i] to ARGV[i + 1] for every key, with an expiry of ARGV[1] seconds, or
-- none when ARGV[1] is 0 (records still waiting for a decision never expire).
-- One command for a whole batch of decision records: a MULTI of SETs costs several
-- times more in redis-py's packing and reply parsing (docs/benchmarks.md).
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  if ttl > 0 then
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl)
  else
    redis.call('SET', KEYS[i], ARGV[i + 1])
  end
end
return #KEYS
