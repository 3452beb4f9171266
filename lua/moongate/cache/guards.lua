-- moongate.cache.guards: what two similar questions must share before one's answer may stand
-- for the other's, whatever their embeddings say: the same numbers, dates, named entities
-- (capitalised words, identifiers, quoted strings) and the same presence of a negation.
local M = {}

local lower, gsub = string.lower, string.gsub

-- Number words read as numbers, so "two" and "2" agree.
local NUMBER_WORDS = {
  zero = 0, one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7, eight = 8, nine = 9,
  ten = 10, eleven = 11, twelve = 12, thirteen = 13, fourteen = 14, fifteen = 15, sixteen = 16,
  seventeen = 17, eighteen = 18, nineteen = 19, twenty = 20, thirty = 30, forty = 40, fifty = 50,
  sixty = 60, seventy = 70, eighty = 80, ninety = 90, hundred = 100, thousand = 1000, million = 1e6,
  billion = 1e9, first = 1, second = 2, third = 3, fourth = 4, fifth = 5, half = 0.5, dozen = 12,
  once = 1, twice = 2, single = 1, double = 2, triple = 3, pair = 2,
}

local MONTHS = {
  january = "jan", february = "feb", march = "mar", april = "apr", may = "may", june = "jun",
  july = "jul", august = "aug", september = "sep", october = "oct", november = "nov", december = "dec",
  jan = "jan", feb = "feb", mar = "mar", apr = "apr", jun = "jun", jul = "jul", aug = "aug",
  sep = "sep", sept = "sep", oct = "oct", nov = "nov", dec = "dec",
}
local DAYS = {
  monday = "mon", tuesday = "tue", wednesday = "wed", thursday = "thu", friday = "fri",
  saturday = "sat", sunday = "sun", today = "today", tomorrow = "tomorrow", yesterday = "yesterday",
  tonight = "today", weekend = "weekend",
}
-- "may" and "march" are also verbs: only capitalised they name a month
local AMBIGUOUS_MONTH = { may = true, mar = true, march = true }

local NEGATIONS = {
  ["not"] = true, no = true, never = true, none = true, nobody = true, nothing = true,
  neither = true, nor = true, without = true, cannot = true, nowhere = true, ["isn't"] = true,
  ["aren't"] = true, ["wasn't"] = true, ["weren't"] = true, ["don't"] = true, ["doesn't"] = true,
  ["didn't"] = true, ["can't"] = true, ["won't"] = true, ["shouldn't"] = true, ["wouldn't"] = true,
  ["couldn't"] = true, ["mustn't"] = true, ["haven't"] = true, ["hasn't"] = true, ["hadn't"] = true,
  ["shan't"] = true, ["needn't"] = true, ["ain't"] = true, except = true, excluding = true,
}

-- Capitalised words that name nothing: a sentence's first word, pronouns, question words.
local PLAIN = {}
for w in ([[i am a an the what which who whom whose when where why how is are was were be do does
  did can could should would will shall may might must have has had please tell explain describe
  give show list name define compare find get make let in on at for to of from by with about
  and or but if my our your their its this that these those there here it we you they he she
  hi hello hey ok okay yes so any some all each every quick help summarize summarise write
  create generate suggest recommend translate convert calculate check book reserve send set reset
  add remove delete update change open close start stop run use turn buy order cancel print read
  say ask go look search call pick choose fix install configure enable disable need want know
  also then now just only not no never does doesn't don't isn't aren't can't won't]]):gmatch("%S+") do
  PLAIN[w] = true
end

local function add(set, v) set[v] = true end

local function sorted(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, "|")
end

local function number_text(s)
  s = gsub(s, ",", "")
  local n = tonumber(s)
  if not n then return s end
  if n == math.floor(n) and math.abs(n) < 1e15 then return string.format("%d", n) end
  return string.format("%.10g", n)
end

--- guards.features(text) -> { numbers =, dates =, entities =, negation = } (numbers, dates and
--- entities as sorted "|"-joined strings, negation a boolean)
function M.features(text)
  local numbers, dates, entities = {}, {}, {}
  local negation = false
  -- quoted strings: an exact name the user chose
  for q in text:gmatch('"([^"]+)"') do add(entities, "q:" .. lower(q)) end
  for q in text:gmatch("“([^”]+)”") do add(entities, "q:" .. lower(q)) end
  for q in text:gmatch("`([^`]+)`") do add(entities, "q:" .. lower(q)) end
  -- numbers with digits (1,000 / 3.5 / 2024 / 10%), also inside identifiers (gpt-4o keeps "4")
  for n in text:gmatch("%d[%d,]*%.?%d*") do
    n = gsub(n, "[,%.]$", "")
    add(numbers, number_text(n))
  end
  for word in text:gmatch("[%w_%-%.'/@]+") do
    local w = gsub(word, "^[%.%-']+", "")
    w = gsub(w, "[%.%-']+$", "")
    if w ~= "" then
      local lw = lower(w)
      local ident = w:find("[%w]_[%w]") or w:find("%l%u") or w:find("%a%d") or w:find("%d%a")
        or w:find("[%w][%.%-/@][%w]") and w:find("%d") or w:find("^%u%u+%d*$")
      if NEGATIONS[lw] or lw:find("n't$") then negation = true end
      local num = NUMBER_WORDS[lw]
      if num then add(numbers, number_text(tostring(num))) end
      local month = MONTHS[lw]
      local cap = w:find("^%u") ~= nil
      if month and (not AMBIGUOUS_MONTH[lw] or cap) and (#lw > 3 or cap or lw == "may") then
        add(dates, month)
      elseif DAYS[lw] then
        add(dates, DAYS[lw])
      elseif ident and not w:find("^%d+$") then
        add(entities, lw)
      elseif cap and not PLAIN[lw] and not num then
        add(entities, lw)   -- a capitalised word that is not a question word: a name
      end
    end
  end
  return { numbers = sorted(numbers), dates = sorted(dates), entities = sorted(entities), negation = negation }
end

--- guards.agree(a, b) -> true | false, which guard differs ("numbers", "dates", "entities",
--- "negation")
function M.agree(a, b)
  if a.numbers ~= b.numbers then return false, "numbers" end
  if a.dates ~= b.dates then return false, "dates" end
  if a.entities ~= b.entities then return false, "entities" end
  if a.negation ~= b.negation then return false, "negation" end
  return true
end

--- guards.normalize(text) -> the question as it is embedded: case-folded, spaces collapsed,
--- trailing punctuation dropped
function M.normalize(text)
  local s = lower(text)
  s = gsub(s, "%s+", " ")
  s = gsub(s, "^ ", "")
  s = gsub(s, "[%s%?%.!]+$", "")
  return s
end

return M
