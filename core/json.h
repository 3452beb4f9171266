/* json.h: the JSON string escaping json.c does, for the other encoders in the core (otlp.c). */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <stddef.h>

/* Writes len bytes of s as JSON string text (without the quotes) at out, which has room for
 * len * 6 bytes; returns the end of what it wrote. Invalid UTF-8 becomes \ufffd, so the
 * output is always valid JSON. */
char *mg_json_escape(char *out, const char *s, size_t len);

#endif
