-- GC stress: many short-lived tables and closures, a weak table, full and
-- incremental collections, finalizers. Rounds are argv[1].
local rounds = tonumber(arg and arg[1]) or 20
local finalized = 0
local weak = setmetatable({}, { __mode = "v" })
local keep = {}
for r = 1, rounds do
  local t = {}
  for i = 1, 5000 do
    t[i] = { i, tostring(i), function() return i * r end }
  end
  for i = 1, 100 do
    weak[i] = setmetatable({}, { __gc = function() finalized = finalized + 1 end })
  end
  keep[r % 8] = t
  if r % 5 == 0 then collectgarbage("collect") else collectgarbage("step", 64) end
end
keep = nil
collectgarbage("collect")
collectgarbage("collect")
local alive = 0
for _ in pairs(weak) do alive = alive + 1 end
print(string.format("rounds %d finalized %d weak entries left %d", rounds, finalized, alive))
collectgarbage("generational")
local sum = 0
for i = 1, 200000 do local x = { i } sum = sum + x[1] end
print("generational sum", sum)
