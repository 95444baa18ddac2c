-- Strings: concatenation, table.concat, gsub, string.rep and patterns over
-- argv[1] MB of text in total (big strings come from mmap).
local mb = tonumber(arg and arg[1]) or 8
local parts = {}
for i = 1, 1000 do parts[i] = string.format("%05d:%s", i, string.rep("x", i % 37)) end
local line = table.concat(parts, ",")
local total, count = 0, 0
while total < mb * 1024 * 1024 do
  local s = string.rep(line, 4)
  local replaced, n = s:gsub("x+", "y")
  total = total + #s
  count = count + n
end
print(string.format("processed %d bytes, %d replacements", total, count))
local words = {}
for w in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do words[#words + 1] = w:upper() end
print(table.concat(words, " "), #line, line:sub(1, 24))
print(string.format("%q", "tab\there"), ("%d %5.2f %x"):format(42, math.pi, 255))
