-- moongate.metrics: counters, gauges and histograms summed across every worker, rendered in the
-- Prometheus text format (GET /metrics).
--
-- An update lands in this worker's own tables: no lock and no shared-memory call on the request
-- path. flush() adds what accumulated to the shared dict "metrics" (a tick every second, and
-- before each scrape), so a scrape sees every worker's figures at most one tick old.
local shared = require "moongate.shared"

local M = {}

local format, concat, sort = string.format, table.concat, table.sort
local tostring, pairs, ipairs, type = tostring, pairs, ipairs, type

local SEP, FIELD = "\31", "\30"   -- between label values; between a key's parts in the dict

local defs, order = {}, {}        -- name -> definition, in registration order
local dict

local function store()
  if not dict then dict = shared.dict("metrics") end
  return dict
end

-- Label values -> this series' key. Values are strings or numbers; nil becomes "".
local function key_of(n, a, b, c, d, e)
  if n == 0 then return "" end
  a = a == nil and "" or tostring(a)
  if n == 1 then return a end
  b = b == nil and "" or tostring(b)
  if n == 2 then return a .. SEP .. b end
  c = c == nil and "" or tostring(c)
  if n == 3 then return a .. SEP .. b .. SEP .. c end
  d = d == nil and "" or tostring(d)
  if n == 4 then return a .. SEP .. b .. SEP .. c .. SEP .. d end
  e = e == nil and "" or tostring(e)
  return a .. SEP .. b .. SEP .. c .. SEP .. d .. SEP .. e
end

local Counter, Histogram, Gauge = {}, {}, {}
Counter.__index, Histogram.__index, Gauge.__index = Counter, Histogram, Gauge

local function define(mt, kind, name, help, labels, extra)
  local d = defs[name]
  if d then
    if d.kind ~= kind then error("metrics: " .. name .. " is already a " .. d.kind, 3) end
    return d
  end
  labels = labels or {}
  if #labels > 5 then error("metrics: at most 5 labels", 3) end
  d = setmetatable({ kind = kind, name = name, help = help, labels = labels, n = #labels, pending = {} }, mt)
  if extra then for k, v in pairs(extra) do d[k] = v end end
  defs[name] = d
  order[#order + 1] = name
  return d
end

--- metrics.counter(name, help, {label names}) -> counter; counter:inc(by, label values...)
function M.counter(name, help, labels) return define(Counter, "counter", name, help, labels) end

function Counter:inc(by, a, b, c, d, e)
  local k = key_of(self.n, a, b, c, d, e)
  local p = self.pending
  p[k] = (p[k] or 0) + (by or 1)
end

--- metrics.gauge(name, help, {label names}) -> gauge; gauge:set(value, label values...) sets this
--- worker's value (a worker label is added); gauge:collect(fn) has fn() return
--- { {value, label values...}, ... } at scrape time instead (for state already shared).
function M.gauge(name, help, labels) return define(Gauge, "gauge", name, help, labels) end

function Gauge:set(v, a, b, c, d, e)
  self.pending[key_of(self.n, a, b, c, d, e)] = v
end

function Gauge:collect(fn) self.collector = fn; return self end

-- Default buckets for latencies in seconds: 0.5 ms to 60 s.
M.LATENCY = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

--- metrics.histogram(name, help, {label names}, buckets?) -> histogram;
--- histogram:observe(value, label values...)
function M.histogram(name, help, labels, buckets)
  return define(Histogram, "histogram", name, help, labels, { buckets = buckets or M.LATENCY })
end

function Histogram:observe(v, a, b, c, d, e)
  local k = key_of(self.n, a, b, c, d, e)
  local s = self.pending[k]
  if not s then s = { sum = 0 }; self.pending[k] = s end
  local bk = self.buckets
  local i = 1
  while bk[i] and v > bk[i] do i = i + 1 end     -- i = #bk + 1: above the last bound (+Inf)
  s[i] = (s[i] or 0) + 1
  s.sum = s.sum + v
end

-- ---- shared across workers -------------------------------------------------------------------

local worker_id
local function worker()
  if not worker_id then
    local ok, process = pcall(require, "moongate._process")
    worker_id = tostring(ok and process.worker and process.worker() or 0)
  end
  return worker_id
end

--- metrics.flush(): add this worker's pending updates to the shared dict.
function M.flush()
  local s = store()
  for _, name in ipairs(order) do
    local d = defs[name]
    local p = d.pending
    if next(p) ~= nil then
      d.pending = {}
      local base = name .. FIELD
      if d.kind == "counter" then
        for k, v in pairs(p) do s.incr(base .. k, v, 0) end
      elseif d.kind == "gauge" then
        -- a worker's gauge lives a few ticks: a worker that is gone stops being reported
        for k, v in pairs(p) do s.set(base .. k .. FIELD .. worker(), v, 30) end
      else
        for k, h in pairs(p) do
          local kb = base .. k .. FIELD
          for i = 1, #d.buckets + 1 do
            local c = h[i]
            if c then s.incr(kb .. i, c, 0) end
          end
          s.incr(kb .. "sum", h.sum, 0)
        end
      end
    end
  end
end

-- ---- the text format ---------------------------------------------------------------------------

local function escape(v)
  return (v:gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function split(s, sep)
  local out, i = {}, 1
  while true do
    local j = s:find(sep, i, true)
    if not j then out[#out + 1] = s:sub(i); return out end
    out[#out + 1] = s:sub(i, j - 1)
    i = j + 1
  end
end

local function labels_text(names, values, extra_name, extra_value)
  local parts = {}
  for i, n in ipairs(names) do parts[#parts + 1] = n .. '="' .. escape(values[i] or "") .. '"' end
  if extra_name then parts[#parts + 1] = extra_name .. '="' .. extra_value .. '"' end
  if #parts == 0 then return "" end
  return "{" .. concat(parts, ",") .. "}"
end

local function number(v)
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  if v ~= v then return "NaN" end
  if v == math.floor(v) and math.abs(v) < 1e15 then return format("%d", v) end
  return format("%.17g", v)
end

local function bound(b) return format("%.15g", b) end

--- metrics.render() -> the Prometheus text exposition of every metric
function M.render()
  M.flush()
  local s = store()
  local series = {}   -- name -> { [label key] = { field = value } }
  for _, key in ipairs(s.keys()) do
    local parts = split(key, FIELD)
    local name = parts[1]
    if defs[name] then
      local v = s.get(key)
      if v ~= nil then
        local byname = series[name]
        if not byname then byname = {}; series[name] = byname end
        local lk = parts[2] or ""
        local entry = byname[lk]
        if not entry then entry = {}; byname[lk] = entry end
        entry[parts[3] or ""] = v
      end
    end
  end
  local out = {}
  local function line(s1) out[#out + 1] = s1 end
  for _, name in ipairs(order) do
    local d = defs[name]
    line("# HELP " .. name .. " " .. d.help)
    line("# TYPE " .. name .. " " .. d.kind)
    local byname = series[name] or {}
    local keys = {}
    for k in pairs(byname) do keys[#keys + 1] = k end
    sort(keys)
    if d.kind == "counter" then
      for _, k in ipairs(keys) do
        local values = d.n > 0 and split(k, SEP) or {}
        line(name .. labels_text(d.labels, values) .. " " .. number(byname[k][""]))
      end
    elseif d.kind == "gauge" then
      if d.collector then
        local ok, rows = pcall(d.collector)
        if ok and type(rows) == "table" then
          for _, row in ipairs(rows) do
            local values = {}
            for i = 1, d.n do values[i] = tostring(row[i + 1]) end
            line(name .. labels_text(d.labels, values) .. " " .. number(row[1]))
          end
        end
      end
      for _, k in ipairs(keys) do
        local values = d.n > 0 and split(k, SEP) or {}
        local workers = {}
        for w in pairs(byname[k]) do workers[#workers + 1] = w end
        sort(workers)
        for _, w in ipairs(workers) do
          line(name .. labels_text(d.labels, values, "worker", w) .. " " .. number(byname[k][w]))
        end
      end
    else
      for _, k in ipairs(keys) do
        local values = d.n > 0 and split(k, SEP) or {}
        local e = byname[k]
        local cum = 0
        for i, b in ipairs(d.buckets) do
          cum = cum + (tonumber(e[tostring(i)]) or 0)
          line(name .. "_bucket" .. labels_text(d.labels, values, "le", bound(b)) .. " " .. number(cum))
        end
        cum = cum + (tonumber(e[tostring(#d.buckets + 1)]) or 0)
        line(name .. "_bucket" .. labels_text(d.labels, values, "le", "+Inf") .. " " .. number(cum))
        line(name .. "_sum" .. labels_text(d.labels, values) .. " " .. number(tonumber(e.sum) or 0))
        line(name .. "_count" .. labels_text(d.labels, values) .. " " .. number(cum))
      end
    end
  end
  return concat(out, "\n") .. "\n"
end

-- ---- the tick --------------------------------------------------------------------------------

local ticking, samplers = false, {}

--- metrics.sampler(fn): fn() runs at each tick (before the flush) to set this worker's gauges.
function M.sampler(fn) samplers[#samplers + 1] = fn end

--- metrics.start(interval): flush every interval seconds in a background task of this worker
--- (once; later calls change nothing).
function M.start(interval)
  if ticking then return end
  ticking = true
  local moongate = require "moongate"
  moongate.spawn(function()
    while true do
      moongate.sleep(interval or 1)
      for _, fn in ipairs(samplers) do pcall(fn) end
      local ok, err = pcall(M.flush)
      if not ok then
        local log = package.loaded["moongate.log"]
        if log then log.warn("metrics flush failed", { error = tostring(err) }) end
      end
    end
  end)
end

--- metrics.reset(): forget this worker's pending updates and the shared series (tests).
function M.reset()
  for _, d in pairs(defs) do d.pending = {} end
  store().flush_all()
end

return M
