-- Move the store's chain head (KEYS[1], "<position>:<signature>") forward to
-- ARGV[1]:ARGV[2], never back: writers publish after they commit, in any order, and
-- the newest head must win. Returns the head kept.
local current = redis.call('GET', KEYS[1])
if current then
  local position = tonumber(string.match(current, '^(%d+):'))
  if position and position >= tonumber(ARGV[1]) then
    return current
  end
end
local head = ARGV[1] .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], head)
return head
