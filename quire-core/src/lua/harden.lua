-- Hardening of the sandbox's base library, run once when the VM is made
-- (see lua/mod.rs). Pipeline code cannot reach the locals below.
local charge, out_of_memory, budget_spent, refuse_close, plain = ...
local raw_load, select, type, error, tostring, tonumber = load, select, type, error, tostring, tonumber
local rawget, raw_rawset, getmetatable, raw_setmetatable = rawget, rawset, getmetatable, setmetatable
local pcall, format, gsub, tointeger = pcall, string.format, string.gsub, math.tointeger

-- A library function called by a wrapper below reports errors as if the
-- wrapper were not there: at the caller's line, under its own name (called
-- through pcall, it can only call itself '?'), a memory error still one.
local function raise(name, err)
  if err == "not enough memory" then out_of_memory() end
  if type(err) ~= "string" then error(err, 0) end
  error((gsub(err, "to '%?'", "to '" .. name .. "'", 1)), 3)
end
local function forward(name, ok, ...)
  if ok then return ... end
  raise(name, (...))
end
-- Always a tail call, so that level 3 of `raise` is the wrapper's caller.
local function call(name, f, ...)
  return forward(name, pcall(f, ...))
end

-- Text chunks only: a binary chunk can break the VM's memory safety. And no
-- to-be-closed variables (see refuse_close), so the text is read whole first.
local concat = table.concat
load = function(chunk, name, mode, ...)
  if type(chunk) == "function" then
    local parts = {}
    while true do
      local piece = chunk()
      if piece == nil or piece == "" then break end
      if type(piece) ~= "string" then return nil, "reader function must return a string" end
      parts[#parts + 1] = piece
    end
    chunk = concat(parts)
  end
  if type(chunk) == "string" then
    local refusal = refuse_close(chunk, name)
    if refusal then return nil, refusal end
  end
  if select("#", ...) > 0 then return call("load", raw_load, chunk, name, "t", ...) end
  return call("load", raw_load, chunk, name, "t")
end

local raw_collect = collectgarbage
local allowed = { collect = true, count = true, step = true, isrunning = true }
-- Stopping or retuning the collector would let a pipeline defeat the memory
-- limit. A collection takes time in proportion to the heap, so it is charged
-- one instruction per byte in use.
collectgarbage = function(opt, ...)
  opt = opt or "collect"
  if not allowed[opt] then
    error("collectgarbage: option '" .. tostring(opt) .. "' is not allowed in the sandbox", 2)
  end
  if opt == "collect" or opt == "step" then charge(raw_collect("count") * 1024) end
  return call("collectgarbage", raw_collect, opt, ...)
end

-- An error raised by one of quire-ci's own functions (runtime.sh, require,
-- runtime.jobs ...) is, in the VM, a userdata: pipeline code that catches one
-- gets its message instead, a string like any other Lua error's, which it
-- can match and concatenate. `plain` leaves every other value as it is.
local raw_pcall, raw_resume = pcall, coroutine.resume
local function caught(ok, ...)
  if ok then return true, ... end
  return false, plain((...))
end
_G.pcall = function(f, ...)
  return caught(raw_pcall(f, ...))
end
coroutine.resume = function(co, ...)
  return caught(raw_resume(co, ...))
end

-- Lua calls a message handler where the error is raised: for an error the
-- instruction hook raises, inside the hook, where hooks are off, so an
-- endless handler could never be stopped. Once the budget is spent the
-- error passes through unhandled.
local raw_xpcall = xpcall
xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then return call("xpcall", raw_xpcall, f, handler, ...) end
  return raw_xpcall(f, function(e)
    if budget_spent() then return e end
    return handler(plain(e))
  end, ...)
end

-- Finalizers run with the instruction hook switched off, so an endless __gc
-- could never be stopped. An object gets one only through setmetatable.
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  return call("setmetatable", raw_setmetatable, t, mt)
end

-- A table whose metatable is locked as "read-only" (the global `runtime`)
-- refuses writes, rawset's too.
rawset = function(t, k, v)
  if getmetatable(t) == "read-only" then error("the table is read-only", 2) end
  return call("rawset", raw_rawset, t, k, v)
end

-- string.rep("", 2^62) copies nothing 2^62 times, in C. (Copying something
-- needs memory first, which the memory limit bounds.)
local raw_rep = string.rep
string.rep = function(s, n, sep)
  if s == "" and (sep == nil or sep == "") and tointeger(n) then return "" end
  return call("rep", raw_rep, s, n, sep)
end

-- table.move loops over the range it is given, in C.
local raw_move = table.move
table.move = function(a1, f, e, t, a2)
  local first, last = tonumber(f), tonumber(e)
  if first and last and last >= first then charge((last + 0.0) - first + 1) end
  return call("move", raw_move, a1, f, e, t, a2)
end

-- table.insert and table.remove shift elements up to #t in C, and #t can be
-- huge for a table of a few elements (or whatever __len says): here, in Lua,
-- every shift is counted.
local function bad_argument(n, fname, why)
  error(format("bad argument #%d to '%s' (%s)", n, fname, why), 3)
end
local function check_table(t, fname)
  if type(t) ~= "table" then bad_argument(1, fname, "table expected, got " .. type(t)) end
end
local function check_integer(v, n, fname)
  local i = tointeger(v)
  if i == nil then
    bad_argument(n, fname, type(v) == "number" and "number has no integer representation"
      or "number expected, got " .. type(v))
  end
  return i
end
local function length(t)
  local n = #t
  if tointeger(n) == nil then error("object length is not an integer", 3) end
  return tointeger(n)
end
table.insert = function(t, ...)
  check_table(t, "insert")
  local e = length(t) + 1
  local nargs = select("#", ...)
  if nargs == 1 then
    t[e] = ...
    return
  elseif nargs ~= 2 then
    error("wrong number of arguments to 'insert'", 2)
  end
  local pos, value = ...
  pos = check_integer(pos, 2, "insert")
  if pos < 1 or pos > e then bad_argument(2, "insert", "position out of bounds") end
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = value
end
table.remove = function(t, pos)
  check_table(t, "remove")
  local size = length(t)
  if pos == nil then
    pos = size
  else
    pos = check_integer(pos, 2, "remove")
    if pos ~= size and (pos < 1 or pos > size + 1) then
      bad_argument(2, "remove", "position out of bounds")
    end
  end
  local value = t[pos]
  for i = pos, size - 1 do t[i] = t[i + 1] end
  t[pos < size and size or pos] = nil
  return value
end

dofile, loadfile = nil, nil
string.dump = nil
os = { time = os.time, date = os.date, clock = os.clock }
-- The string metatable is shared by every string; keep pipeline code from replacing it.
getmetatable("").__metatable = false
