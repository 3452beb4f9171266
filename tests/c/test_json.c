/* test_json.c: moongate._json through a bare Lua state (no runtime needed): exact outputs
 * for the cases cJSON gets wrong, and a round-trip of the bundled data under ASan. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_moongate__json(lua_State *L);

static const char *checks =
    "local json = require 'moongate.json'\n"
    "local ffi = require 'ffi'\n"
    "local function eq(want, got, what) if want ~= got then\n"
    "  error(('%s: want %s, got %s'):format(what, tostring(want), tostring(got)), 2) end end\n"
    "eq('0.30000000000000004', json.encode(0.1 + 0.2), 'shortest float')\n"
    "eq('9007199254740992', json.encode(2^53), '2^53')\n"
    "local big = json.decode('9007199254740993')\n"
    "eq(true, ffi.istype('int64_t', big) and big == 9007199254740993LL, '2^53+1 exact')\n"
    "eq('9007199254740993', json.encode(big), '2^53+1 printed')\n"
    "eq('a\\0b', json.decode(json.encode('a\\0b')), 'nul survives')\n"
    "eq('\"\\\\ufffd\"', json.encode('\\255'), 'invalid utf-8')\n"
    "eq('[]', json.encode(json.decode('[]')), 'empty array')\n"
    "eq('{}', json.encode(json.decode('{}')), 'empty object')\n"
    "local v, err = json.decode('{\"a\":1,}')\n"
    "eq(\"invalid json at byte 8: expected string key near '}'\", err, 'error offset')\n"
    "v, err = json.decode('99999999999999999999')\n"
    "eq('number out of range', err, 'out of range')\n"
    "v, err = json.encode(0/0)\n"
    "eq('cannot encode nan', err, 'nan')\n"
    /* every byte value in a string, through both directions */
    "local all = {} for i = 0, 255 do all[#all + 1] = string.char(i) end\n"
    "local s = table.concat(all)\n"
    "local ascii = s:sub(1, 128)\n"
    "eq(ascii, json.decode(json.encode(ascii)), 'all ascii bytes')\n"
    "eq(128 * 6 + 2 + #json.encode(ascii) - 2, #json.encode(s), 'high bytes each one U+FFFD')\n"
    /* a larger document: decode, encode, decode again, same result */
    "local parts = {}\n"
    "for i = 1, 2000 do parts[i] = ('{\"id\":%d,\"f\":%.17g,\"s\":\"x\\\\n\\\\u00e9%d\",\"a\":[true,false,null],\"o\":{}}'):format(i * 7919, i / 3, i) end\n"
    "local doc = '[' .. table.concat(parts, ',') .. ']'\n"
    "local t = assert(json.decode(doc))\n"
    "local out = assert(json.encode(t))\n"
    "local t2 = assert(json.decode(out))\n"
    "local function same(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true end\n"
    "eq(true, same(t, t2), 'decode(encode(decode(doc))) == decode(doc)')\n"
    "eq(#out, #json.encode(t2), 're-encode length')\n"
    "eq(2000, #t2, 'array length')\n"
    "eq(2000 / 3, t2[2000].f, 'float exact')\n"
    "eq('x\\n\\195\\1692000', t2[2000].s, 'escapes')\n";

int main(void) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    const char *home = getenv("MOONGATE_HOME");
    if (!home) home = ".";
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", home, home);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_moongate__json);
    lua_setfield(L, -2, "moongate._json");
    lua_pop(L, 2);
    int rc = luaL_loadstring(L, checks) || lua_pcall(L, 0, 0, 0);
    if (rc) {
        fprintf(stderr, "test_json: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    printf("test_json: ok\n");
    return 0;
}
