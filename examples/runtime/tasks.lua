-- Tasks, waits, cancellation: the example from docs/runtime.md.
local mg = require "moongate"

local slow = mg.spawn(function(n)
  mg.sleep(0.2)
  return n * 2
end, 21)

print(slow:wait())
print(mg.spawn(mg.sleep, 5):wait(0.1))

local stuck = mg.spawn(function() mg.sleep(60) end)
print(stuck:cancel())
print(stuck:wait())

print(mg.spawn(function() error("boom", 0) end):wait())
