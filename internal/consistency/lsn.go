package consistency

import "fmt"

// HexLSN renders a position as the 16 hex digits that Redis scripts compare.
func HexLSN(lsn uint64) string { return fmt.Sprintf("%016x", lsn) }

// LuaCompareLSN defines cmplsn(a, b) for Redis scripts: the sign of a-b for
// two strings that start with HexLSN positions. It compares 32-bit halves as
// numbers, since Lua's string order follows the server's locale and its
// numbers are doubles.
const LuaCompareLSN = `
local function cmplsn(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if ah ~= bh then return ah < bh and -1 or 1 end
  local al, bl = tonumber(string.sub(a, 9, 16), 16), tonumber(string.sub(b, 9, 16), 16)
  if al ~= bl then return al < bl and -1 or 1 end
  return 0
end
`
