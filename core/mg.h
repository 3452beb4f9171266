/* mg.h: the return codes and small conventions shared by every mg_* function.
 * Mirrored in lua/moongate/base.lua; bump MG_ABI_VERSION when a signature changes. */
#ifndef MG_H
#define MG_H

#include <stddef.h>
#include <stdint.h>

#define MG_ABI_VERSION 1

enum {
    MG_OK = 0,        /* done */
    MG_ERROR = -1,    /* failed; *err says why */
    MG_AGAIN = -2,    /* would block: try again when the watcher fires */
    MG_DECLINED = -5, /* not found / not applicable */
    MG_BUSY = -3,     /* resource in use */
};

/* Export marker for the C ABI reached from Lua through ffi.C. */
#define MG_API __attribute__((visibility("default")))

MG_API int mg_abi_version(void);
MG_API const char *mg_version(void);

#endif
