/* test_http_server.c: the server's C helpers: reason phrases and OpenAI-shaped error bodies
 * (escaping, truncation, the request id). */
#include "http_server.h"

#include <stdio.h>
#include <string.h>

static int failed;

#define CHECK_STR(got, want) do { \
    if (strcmp((got), (want))) { printf("FAIL %s:%d: got [%s], want [%s]\n", __FILE__, __LINE__, (got), (want)); failed = 1; } \
} while (0)

int main(void)
{
    CHECK_STR(mg_http_reason(200), "OK");
    CHECK_STR(mg_http_reason(413), "Content Too Large");
    CHECK_STR(mg_http_reason(431), "Request Header Fields Too Large");
    CHECK_STR(mg_http_reason(499), "Client Closed Request");
    CHECK_STR(mg_http_reason(505), "HTTP Version Not Supported");
    CHECK_STR(mg_http_reason(299), "Unknown");

    char out[512];
    size_t n = mg_http_error_json(out, sizeof out, "request body too large", "invalid_request_error",
                                  "body_too_large", "abc");
    CHECK_STR(out, "{\"error\":{\"message\":\"request body too large\",\"type\":\"invalid_request_error\","
                   "\"code\":\"body_too_large\",\"request_id\":\"abc\"}}");
    if (n != strlen(out)) { printf("FAIL length %zu\n", n); failed = 1; }

    /* quotes, backslashes, control characters and non-ASCII bytes stay valid JSON */
    mg_http_error_json(out, sizeof out, "a \"q\" \\ \n\x01 \xc3\xa9", "t", "c", NULL);
    CHECK_STR(out, "{\"error\":{\"message\":\"a \\\"q\\\" \\\\ \\u000a\\u0001 \\u00c3\\u00a9\",\"type\":\"t\",\"code\":\"c\"}}");

    /* a small buffer: truncated and terminated, the needed length returned */
    char small[16];
    n = mg_http_error_json(small, sizeof small, "message", "type", "code", "id");
    if (strlen(small) != 15 || n <= 15) { printf("FAIL truncation: %zu [%s]\n", n, small); failed = 1; }

    if (!failed) puts("ok");
    return failed;
}
