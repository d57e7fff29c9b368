-- EXPIRE every key of KEYS after ARGV[1] seconds (the records of final outcomes, just
-- written by one MSET in the same MULTI; see pipeline/ledger.py write_records).
local ttl = ARGV[1]
for i = 1, #KEYS do
  redis.call('EXPIRE', KEYS[i], ttl)
end
return #KEYS
