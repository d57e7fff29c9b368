-- Which of KEYS do not exist? Returns one 0/1 per key (1 = missing), in order.
-- One call instead of one EXISTS per event: the batch's dedupe costs one round trip.
local out = {}
for i = 1, #KEYS do
  out[i] = 1 - redis.call('EXISTS', KEYS[i])
end
return out
