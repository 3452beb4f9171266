/* http_server.h: moongate's HTTP/1.1 server on libev and http_parser. Each request runs its
 * Lua handler in a task of its own; Lua reaches it through `require "moongate._http_server"`. */
#ifndef MG_HTTP_SERVER_H
#define MG_HTTP_SERVER_H

#include <lua.h>
#include "mg.h"

/* The Lua module: listen(opts) -> server | nil, err. See lua/moongate/server.lua and
 * docs/server.md for the options, the request table and the response object. */
MG_API int luaopen_moongate__http_server(lua_State *L);

/* Reason phrase of an HTTP status ("OK", "Not Found"), "Unknown" for codes it does not know. */
MG_API const char *mg_http_reason(int status);

/* Append the JSON body of an error in OpenAI's shape to out (at most cap bytes, NUL-terminated);
 * returns the length it needed (as snprintf). */
MG_API size_t mg_http_error_json(char *out, size_t cap, const char *message, const char *type,
                                 const char *code, const char *request_id);

#endif
