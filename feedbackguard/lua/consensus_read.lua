-- The consensus votes of every item of a batch in one call.
-- KEYS: the items' consensus hashes. Returns, per key, its HGETALL reply (a flat
-- field, value, ... list; empty when the item has no votes yet).
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HGETALL', key)
end
return out
