/* runtime.h: one worker's runtime: the libev loop, the LuaJIT state with moongate's module
 * paths, and the entry that runs a Lua CLI command as the main task. */
#ifndef MG_RUNTIME_H
#define MG_RUNTIME_H

#include <lua.h>
#include "mg.h"

/* The folder holding lua/ and data/: $MOONGATE_HOME, else the install prefix when running
 * installed, else the source tree the binary was built from. */
MG_API const char *mg_home(void);

/* Create the loop and the Lua state (paths, module searcher, scheduler). */
lua_State *mg_runtime_open(void);
void mg_runtime_close(lua_State *L);

/* Run `lua/moongate/cli/<cmd>.lua` (its returned function gets args) as the main task and
 * drive the loop until it ends; returns the process exit code. */
int mg_runtime_run_command(lua_State *L, const char *cmd, int argc, char **argv);

/* Stop the loop: the main task has ended (exit code) or a signal asked to. */
void mg_runtime_exit(int code);

#endif
