/* http_server.c: moongate's HTTP/1.1 server. libev accepts and reads, http_parser parses, the
 * request table is built in C and the Lua handler runs in its own task; responses leave with one writev. */
#define _GNU_SOURCE
#include "http_server.h"
#include "log.h"
#include "scheduler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <lauxlib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SERVER_MT "moongate.http_server"
#define RES_MT "moongate.http_response"

#define READ_CHUNK 16384
#define PIPELINE_MAX 65536        /* input buffered while a handler runs */
#define WRITE_HIGH (256 * 1024)   /* res:write waits above this many unsent bytes */
#define WRITE_LOW (64 * 1024)     /* ... and resumes below this */
#define LINGER_TIME 5.0           /* discard input after an error response for at most this */
#define SEND_TIMEOUT 60.0         /* a client that reads nothing of a finished response */

/* ---- small buffers ---------------------------------------------------------------------- */

typedef struct { char *p; size_t len, cap; } buf;

static int buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(buf *b, const void *d, size_t n)
{
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static void buf_free(buf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

/* ---- types ------------------------------------------------------------------------------ */

typedef struct srv srv;
typedef struct conn conn;
typedef struct res res;

struct srv {
    int fd;
    ev_io accept_w;
    ev_timer grace_w, wake_w, accept_retry_w;
    int handler_ref, req_mt_ref, self_ref;
    size_t header_bytes, body_bytes;
    int max_headers, max_conns, accept_full;
    double header_timeout, body_timeout, keepalive_timeout, handler_timeout, stream_idle_timeout;
    int access_log;
    int draining, closed;
    conn *conns;
    int nconns;
    double requests;
    struct { mg_wait w; mg_task *task; } waiter;
    int waiting;
    char host[64];
    int port;
};

enum { C_HEAD, C_BODY, C_HANDLING, C_LINGER };

typedef struct { uint32_t name_off, name_len, val_off, val_len; } hdr;

struct conn {
    srv *s;
    conn *prev, *next;
    int fd;
    ev_io rw, ww;
    ev_timer timer;
    int state;
    int reading, writing;
    http_parser parser;
    buf in;        /* received, not yet parsed */
    buf head;      /* the url then header names and values of the request being read */
    hdr *hdrs;
    int nhdrs, hdrs_cap;
    uint32_t url_len;
    int last_cb;   /* 1 after a header field callback, 2 after a value */
    size_t head_seen;
    buf body;
    int err_status;
    const char *err_msg, *err_code;
    int head_started, nreq, keepalive, is_head, upgrade, headers_done;
    double start;
    res *r;        /* the response of the request in flight */
    buf out;       /* unsent output */
    size_t out_off;
    int after_flush;  /* 1: the response is done, continue once out drains; 2: linger then */
    char remote[64];
};

struct res {
    conn *c;           /* NULL once detached (finished, or the connection is gone) */
    mg_task *task;     /* the handler task, NULL once it ended */
    int ref;           /* registry anchor while c or task holds this response */
    int started, finished, chunked, head_only, no_body, timed_out, keepalive, http10;
    int status;
    double start;
    uint64_t bytes, declared;
    int has_declared;
    const char *method;
    char *path;
    char id[72];
    struct { mg_wait w; res *r; } drain;
    int draining_wait;
};

static http_parser_settings settings;
static buf scratch;   /* response heads are built here (one at a time: one thread) */
static buf logbuf;    /* access log lines */
static int res_mt_ref = LUA_NOREF;
static uint64_t rng_s[2];

/* ---- helpers ------------------------------------------------------------------------------ */

MG_API const char *mg_http_reason(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* JSON string body (no quotes) of s into b. */
static void json_escape(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n + 8);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            buf_add(b, e, 2);
        } else if (ch < 0x20 || ch == 0x7f || ch >= 0x80) {
            /* bytes >= 0x80 are escaped one by one: the line stays valid JSON whatever the input */
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            buf_add(b, e, 6);
        } else {
            buf_add(b, &s[i], 1);
        }
    }
}

MG_API size_t mg_http_error_json(char *out, size_t cap, const char *message, const char *type,
                                 const char *code, const char *request_id)
{
    buf b = {0};
    buf_add(&b, "{\"error\":{\"message\":\"", 21);
    json_escape(&b, message, strlen(message));
    buf_add(&b, "\",\"type\":\"", 10);
    json_escape(&b, type, strlen(type));
    buf_add(&b, "\",\"code\":\"", 10);
    json_escape(&b, code, strlen(code));
    if (request_id && *request_id) {
        buf_add(&b, "\",\"request_id\":\"", 16);
        json_escape(&b, request_id, strlen(request_id));
    }
    buf_add(&b, "\"}}", 3);
    size_t n = b.len;
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(out, b.p, k);
        out[k] = 0;
    }
    buf_free(&b);
    return n;
}

static uint64_t rng_next(void)
{
    uint64_t s1 = rng_s[0];
    const uint64_t s0 = rng_s[1];
    rng_s[0] = s0;
    s1 ^= s1 << 23;
    rng_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_s[1] + s0;
}

static void gen_id(char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int k = 0; k < 2; k++) {
        uint64_t v = rng_next();
        for (int i = 0; i < 16; i++) { out[k * 16 + i] = hex[v & 15]; v >>= 4; }
    }
    out[32] = 0;
}

static int is_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* A client's X-Request-Id is kept when it is 1..64 characters of [A-Za-z0-9._:-]. */
static int sane_id(const char *p, size_t n)
{
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return 1;
}

/* W3C traceparent "00-<32 hex trace id>-<16 hex parent>-<2 hex flags>": the trace id. */
static int traceparent_id(const char *p, size_t n, char *out)
{
    if (n < 55 || p[2] != '-' || p[35] != '-' || p[52] != '-') return 0;
    if (!is_hex(p, 2) || !is_hex(p + 3, 32) || !is_hex(p + 36, 16) || !is_hex(p + 53, 2)) return 0;
    if (!memcmp(p, "ff", 2)) return 0;
    int zero = 1;
    for (int i = 3; i < 35; i++) if (p[i] != '0') zero = 0;
    if (zero) return 0;
    memcpy(out, p + 3, 32);
    out[32] = 0;
    return 1;
}

static const char *http_date(void)
{
    static char date[64];
    static time_t last;
    time_t now = (time_t)ev_now(mg_loop);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return date;
}

static int ieq(const char *a, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = a[i];
        if (ch >= 'A' && ch <= 'Z') ch += 32;
        if (ch != lit[i]) return 0;
    }
    return 1;
}

/* ---- connections: lifecycle --------------------------------------------------------------- */

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_process(conn *c);
static void srv_check_drained(srv *s);

static void res_release(res *r)
{
    if (!r->c && !r->task && r->ref != LUA_NOREF) {
        int ref = r->ref;
        r->ref = LUA_NOREF;
        luaL_unref(mg_L, LUA_REGISTRYINDEX, ref);
    }
}

static void timer_set(conn *c, double after)
{
    ev_timer_stop(mg_loop, &c->timer);
    ev_timer_set(&c->timer, after, 0.);
    ev_timer_start(mg_loop, &c->timer);
}

static void reading(conn *c, int on)
{
    if (on && !c->reading) ev_io_start(mg_loop, &c->rw);
    if (!on && c->reading) ev_io_stop(mg_loop, &c->rw);
    c->reading = on;
}

/* Fixed-point decimal without printf's float machinery (this runs once per request). */
static int fmt_fixed(char *out, double v, int decimals)
{
    static const double scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    if (v < 0) v = 0;
    unsigned long long n = (unsigned long long)(v * scale[decimals] + 0.5);
    unsigned long long ip = n / (unsigned long long)scale[decimals];
    unsigned long long fp = n % (unsigned long long)scale[decimals];
    char tmp[32];
    int k = 0;
    for (int i = 0; i < decimals; i++) { tmp[k++] = (char)('0' + fp % 10); fp /= 10; }
    tmp[k++] = '.';
    do { tmp[k++] = (char)('0' + ip % 10); ip /= 10; } while (ip);
    for (int i = 0; i < k; i++) out[i] = tmp[k - 1 - i];
    return k;
}

static int fmt_uint(char *out, unsigned long long v)
{
    char tmp[24];
    int k = 0;
    do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (int i = 0; i < k; i++) out[i] = tmp[k - 1 - i];
    return k;
}

static int log_pid;

#define ADD_LIT(b, lit) buf_add((b), lit, sizeof(lit) - 1)

static void access_log(srv *s, res *r, int status, const char *err)
{
    if (!s->access_log) return;
    char num[32];
    buf *b = &logbuf;
    b->len = 0;
    double now = ev_time();   /* not the loop's cached time: durations under a loop turn count */
    ADD_LIT(b, "{\"time\":");
    buf_add(b, num, fmt_fixed(num, now, 6));
    ADD_LIT(b, ",\"level\":\"info\",\"pid\":");
    buf_add(b, num, fmt_uint(num, (unsigned long long)log_pid));
    ADD_LIT(b, ",\"msg\":\"request\",\"request_id\":\"");
    json_escape(b, r->id, strlen(r->id));
    ADD_LIT(b, "\",\"method\":\"");
    buf_add(b, r->method, strlen(r->method));
    ADD_LIT(b, "\",\"path\":\"");
    if (r->path) json_escape(b, r->path, strlen(r->path));
    ADD_LIT(b, "\",\"status\":");
    buf_add(b, num, fmt_uint(num, (unsigned long long)status));
    ADD_LIT(b, ",\"duration_ms\":");
    buf_add(b, num, fmt_fixed(num, (now - r->start) * 1000.0, 3));
    ADD_LIT(b, ",\"bytes\":");
    buf_add(b, num, fmt_uint(num, (unsigned long long)r->bytes));
    if (err) {
        ADD_LIT(b, ",\"error\":\"");
        json_escape(b, err, strlen(err));
        ADD_LIT(b, "\"");
    }
    ADD_LIT(b, "}");
    mg_log_write(b->p, b->len);
    if (b->cap > 65536) buf_free(b);
}

/* Drop the connection now: the client is gone, or the server is closing. A handler still
 * running for it is cancelled (its waits are cancelled and freed), logged as 499. */
static void conn_free(conn *c, int status_for_log, const char *why)
{
    srv *s = c->s;
    ev_io_stop(mg_loop, &c->rw);
    ev_io_stop(mg_loop, &c->ww);
    ev_timer_stop(mg_loop, &c->timer);
    res *r = c->r;
    c->r = NULL;
    if (r) {
        r->c = NULL;
        if (!r->finished) {
            r->finished = 1;
            access_log(s, r, status_for_log ? status_for_log : 499, why);
        }
        if (r->task) mg_task_cancel(r->task);   /* on_exit sees r->c == NULL */
        res_release(r);
    }
    close(c->fd);
    if (c->prev) c->prev->next = c->next; else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (s->accept_full && s->nconns < s->max_conns && s->fd >= 0 && !s->draining) {
        s->accept_full = 0;
        ev_io_start(mg_loop, &s->accept_w);
    }
    buf_free(&c->in);
    buf_free(&c->head);
    buf_free(&c->body);
    buf_free(&c->out);
    free(c->hdrs);
    free(c);
    srv_check_drained(s);
}

/* After an error answer: stop writing, discard what the client still sends for a bounded time,
 * so it reads the status rather than a reset (nginx's lingering close). */
static void conn_linger(conn *c)
{
    c->state = C_LINGER;
    shutdown(c->fd, SHUT_WR);
    c->in.len = 0;
    reading(c, 1);
    timer_set(c, LINGER_TIME);
}

static void conn_reset_for_next(conn *c)
{
    c->state = C_HEAD;
    c->head_started = 0;
    c->head_seen = 0;
    c->err_status = 0;
    c->after_flush = 0;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    buf_free(&c->body);
    if (c->head.cap > 65536) buf_free(&c->head);
    /* nothing of the previous request may be read for the next (an error before its first
     * callback — e.g. a timeout after bare CRLFs — looks at url_len and the headers) */
    c->head.len = 0;
    c->url_len = 0;
    c->nhdrs = 0;
    c->last_cb = 0;
    c->headers_done = 0;
}

/* The response is complete and flushed: next request, or close. */
static void conn_response_done(conn *c, int keepalive)
{
    if (!keepalive || c->s->draining || c->upgrade) {
        /* Unread input (a pipelined request we will not answer) would turn close into a reset. */
        if (c->in.len) conn_linger(c); else conn_free(c, 0, NULL);
        return;
    }
    conn_reset_for_next(c);
    reading(c, 1);
    timer_set(c, c->s->keepalive_timeout);
    if (c->in.len) { conn_process(c); return; }
    /* an idle keep-alive connection holds no buffers: thousands of them cost little */
    buf_free(&c->in);
}

/* Queue or write iov; returns 0, or -1 when the connection failed (the caller frees it). */
static int conn_writev(conn *c, struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    ssize_t w = 0;
    if (c->out.len == c->out_off) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        do w = sendmsg(c->fd, &m, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
            w = 0;
        }
        if ((size_t)w == total) return 0;
        c->out.len = c->out_off = 0;
    }
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if ((size_t)w >= l) { w -= l; continue; }
        if (buf_add(&c->out, (char *)iov[i].iov_base + w, l - w)) return -1;
        w = 0;
    }
    if (!c->writing) { ev_io_start(mg_loop, &c->ww); c->writing = 1; }
    return 0;
}

static size_t conn_pending(conn *c) { return c->out.len - c->out_off; }

/* The request id from X-Request-Id / traceparent once the headers are in, else a new one. */
static void request_id_of(conn *c, char *out)
{
    const char *tp = NULL;
    size_t tpl = 0;
    for (int i = 0; c->headers_done && i < c->nhdrs; i++) {
        hdr *h = &c->hdrs[i];
        const char *name = c->head.p + h->name_off, *val = c->head.p + h->val_off;
        size_t vl = h->val_len;
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t')) vl--;
        if (ieq(name, h->name_len, "x-request-id") && sane_id(val, vl)) {
            memcpy(out, val, vl);
            out[vl] = 0;
            return;
        }
        if (ieq(name, h->name_len, "traceparent")) { tp = val; tpl = vl; }
    }
    if (!(tp && traceparent_id(tp, tpl, out))) gen_id(out);
}

/* An error answer outside any handler (bad request, limits, timeouts), then a lingering close. */
static void conn_error(conn *c, int status, const char *msg, const char *type, const char *code)
{
    char id[72], body[1024], head[512];
    request_id_of(c, id);
    size_t bl = mg_http_error_json(body, sizeof body, msg, type, code, id);
    if (bl >= sizeof body) bl = sizeof body - 1;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
                      "x-request-id: %s\r\ndate: %s\r\nconnection: close\r\n\r\n",
                      status, mg_http_reason(status), bl, id, http_date());
    struct iovec iov[2] = {{head, (size_t)hl}, {body, bl}};
    if (c->s->access_log) {
        res tmp;
        memset(&tmp, 0, sizeof tmp);
        snprintf(tmp.id, sizeof tmp.id, "%s", id);
        tmp.start = c->head_started ? c->start : ev_now(mg_loop);
        tmp.method = c->url_len ? http_method_str(c->parser.method) : "";
        tmp.bytes = bl;
        char path[256] = "";
        if (c->url_len) {
            size_t pl = c->url_len < sizeof path - 1 ? c->url_len : sizeof path - 1;
            memcpy(path, c->head.p, pl);
            path[pl] = 0;
            char *q = strchr(path, '?');
            if (q) *q = 0;
        }
        tmp.path = path;
        access_log(c->s, &tmp, status, msg);
    }
    reading(c, 0);
    ev_timer_stop(mg_loop, &c->timer);
    if (conn_writev(c, iov, 2)) { conn_free(c, 0, NULL); return; }
    if (conn_pending(c)) {
        c->after_flush = 2;
        c->state = C_LINGER;
        timer_set(c, SEND_TIMEOUT);
        return;
    }
    conn_linger(c);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int valid_token(const char *s, size_t n);

static int fail(conn *c, int status, const char *msg, const char *code)
{
    c->err_status = status;
    c->err_msg = msg;
    c->err_code = code;
    http_parser_pause(&c->parser, 1);
    return 0;
}

static int head_over(conn *c) { return c->head.len > c->s->header_bytes; }

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    c->head.len = 0;
    c->nhdrs = 0;
    c->url_len = 0;
    c->last_cb = 0;
    c->body.len = 0;
    c->headers_done = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (buf_add(&c->head, at, n)) return fail(c, 500, "out of memory", "internal_error");
    c->url_len += n;
    if (head_over(c)) return fail(c, 431, "request header fields too large", "header_too_large");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (c->last_cb != 1) {
        if (c->nhdrs >= c->s->max_headers)
            return fail(c, 431, "too many header fields", "too_many_headers");
        if (c->nhdrs == c->hdrs_cap) {
            int cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
            hdr *h = realloc(c->hdrs, cap * sizeof *h);
            if (!h) return fail(c, 500, "out of memory", "internal_error");
            c->hdrs = h;
            c->hdrs_cap = cap;
        }
        hdr *h = &c->hdrs[c->nhdrs++];
        h->name_off = c->head.len;
        h->name_len = h->val_off = h->val_len = 0;
        c->last_cb = 1;
    }
    if (buf_add(&c->head, at, n)) return fail(c, 500, "out of memory", "internal_error");
    c->hdrs[c->nhdrs - 1].name_len += n;
    if (head_over(c)) return fail(c, 431, "request header fields too large", "header_too_large");
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (!c->nhdrs) return 0;
    hdr *h = &c->hdrs[c->nhdrs - 1];
    if (c->last_cb != 2) {
        h->val_off = c->head.len;
        h->val_len = 0;
        c->last_cb = 2;
    }
    if (buf_add(&c->head, at, n)) return fail(c, 500, "out of memory", "internal_error");
    h->val_len += n;
    if (head_over(c)) return fail(c, 431, "request header fields too large", "header_too_large");
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    c->headers_done = 1;
    if (p->http_major != 1 || p->http_minor > 1)
        return fail(c, 505, "http version not supported", "http_version_not_supported");
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->s->body_bytes)
        return fail(c, 413, "request body too large", "body_too_large");
    c->keepalive = http_should_keep_alive(p);
    c->is_head = p->method == HTTP_HEAD;
    c->state = C_BODY;
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
    int hosts = 0;
    for (int i = 0; i < c->nhdrs; i++) {
        hdr *h = &c->hdrs[i];
        /* "Host : x" and other non-token names: a request-smuggling vector (RFC 9112 5.1) */
        if (!valid_token(c->head.p + h->name_off, h->name_len))
            return fail(c, 400, "bad request: invalid header name", "bad_request");
        if (ieq(c->head.p + h->name_off, h->name_len, "host")) hosts++;
        if (!ieq(c->head.p + h->name_off, h->name_len, "expect")) continue;
        if (!ieq(c->head.p + h->val_off, h->val_len, "100-continue"))
            return fail(c, 417, "unsupported expect header", "expectation_failed");
        if (has_body && p->http_minor >= 1) {   /* never a 100 to an HTTP/1.0 client */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            struct iovec iov = {(void *)cont, sizeof cont - 1};
            if (conn_writev(c, &iov, 1)) return fail(c, 400, "write failed", "bad_request");
        }
    }
    /* RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host */
    if (p->http_minor >= 1 && hosts != 1)
        return fail(c, 400, hosts ? "bad request: more than one host header" : "bad request: missing host header",
                    "bad_request");
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0 && p->content_length <= (1u << 26))
        buf_reserve(&c->body, p->content_length);
    timer_set(c, c->s->body_timeout);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (c->body.len + n > c->s->body_bytes) return fail(c, 413, "request body too large", "body_too_large");
    if (buf_add(&c->body, at, n)) return fail(c, 500, "out of memory", "internal_error");
    return 0;
}

/* The size of the next chunk is known before its bytes: refuse one that cannot fit at once. */
static int on_chunk_header(http_parser *p)
{
    conn *c = p->data;
    if (p->content_length > c->s->body_bytes || c->body.len + p->content_length > c->s->body_bytes)
        return fail(c, 413, "request body too large", "body_too_large");
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->state = C_HANDLING;
    http_parser_pause(p, 1);   /* one request at a time: pipelined ones wait in c->in */
    return 0;
}

static void dispatch(conn *c);

static void conn_process(conn *c)
{
    if (c->state == C_LINGER) { c->in.len = 0; return; }
    if (c->state == C_HANDLING) {
        if (c->in.len >= PIPELINE_MAX) reading(c, 0);
        return;
    }
    if (!c->in.len) return;
    if (!c->head_started) {
        c->head_started = 1;
        c->start = ev_now(mg_loop);
        if (c->nreq > 0) timer_set(c, c->s->header_timeout);   /* was the keep-alive idle timer */
    }
    int was_head = c->state == C_HEAD;
    size_t n = http_parser_execute(&c->parser, &settings, c->in.p, c->in.len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->err_status) {
        conn_error(c, c->err_status, c->err_msg,
                   c->err_status >= 500 && c->err_status != 505 ? "server_error" : "invalid_request_error",
                   c->err_code);
        return;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        char msg[160];
        const char *d = http_errno_description(e);
        if (e == HPE_UNEXPECTED_CONTENT_LENGTH)
            d = "content-length with transfer-encoding, or repeated content-length";
        snprintf(msg, sizeof msg, "bad request: %s", d);
        for (char *q = msg; *q; q++) if (*q >= 'A' && *q <= 'Z') *q += 32;
        int status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        conn_error(c, status, msg, "invalid_request_error",
                   status == 431 ? "header_too_large" : "bad_request");
        return;
    }
    if (n < c->in.len) memmove(c->in.p, c->in.p + n, c->in.len - n);
    c->in.len -= n;
    if (was_head && c->state == C_HEAD) {
        c->head_seen += n;
        if (c->head_seen > c->s->header_bytes) {
            conn_error(c, 431, "request header fields too large", "invalid_request_error", "header_too_large");
            return;
        }
    }
    if (c->state == C_HANDLING) {
        http_parser_pause(&c->parser, 0);
        c->upgrade = c->parser.upgrade;
        dispatch(c);
    }
}

/* ---- handlers ------------------------------------------------------------------------------ */

static void on_task_exit(mg_task *t, int ok, const char *err, void *ud);
static int res_send_error(res *r, int status, const char *msg, const char *type, const char *code);

/* The request target: origin-form "/p?q", absolute-form "http://h/p?q", or "*". */
typedef struct { const char *path, *query; size_t path_len, query_len; } target;

static target split_target(conn *c)
{
    target t;
    const char *u = c->head.p, *end = c->head.p + c->url_len;
    if (u < end && *u != '/' && *u != '*') {
        const char *sch = memmem(u, end - u, "://", 3);
        if (sch) {
            const char *sl = memchr(sch + 3, '/', end - sch - 3);
            u = sl ? sl : end;
        }
    }
    const char *frag = memchr(u, '#', end - u);
    if (frag) end = frag;
    const char *q = memchr(u, '?', end - u);
    const char *pe = q ? q : end;
    t.path = pe > u ? u : "/";
    t.path_len = pe > u ? (size_t)(pe - u) : 1;
    t.query = q ? q + 1 : "";
    t.query_len = q ? (size_t)(end - q - 1) : 0;
    return t;
}

static void push_req(lua_State *L, conn *c, res *r, const target *tg)
{
    srv *s = c->s;
    lua_createtable(L, 0, 12);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, tg->path, tg->path_len);
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, tg->query, tg->query_len);
    lua_setfield(L, -2, "query");

    /* headers: lower-case names; repeats joined with ", " ("; " for cookie) */
    lua_createtable(L, 0, c->nhdrs);
    const char *rid = NULL, *tp = NULL;
    size_t rid_len = 0, tp_len = 0;
    for (int i = 0; i < c->nhdrs; i++) {
        hdr *h = &c->hdrs[i];
        char *name = c->head.p + h->name_off;
        for (uint32_t k = 0; k < h->name_len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z') name[k] += 32;
        const char *val = c->head.p + h->val_off;
        size_t vl = h->val_len;
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t')) vl--;
        if (h->name_len == 12 && !memcmp(name, "x-request-id", 12)) { rid = val; rid_len = vl; }
        else if (h->name_len == 11 && !memcmp(name, "traceparent", 11)) { tp = val; tp_len = vl; }
        lua_pushlstring(L, name, h->name_len);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushlstring(L, val, vl);
        } else {
            int cookie = h->name_len == 6 && !memcmp(name, "cookie", 6);
            lua_pushstring(L, cookie ? "; " : ", ");
            lua_pushlstring(L, val, vl);
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");

    if (rid && sane_id(rid, rid_len)) {
        memcpy(r->id, rid, rid_len);
        r->id[rid_len] = 0;
    } else if (!(tp && traceparent_id(tp, tp_len, r->id))) {
        gen_id(r->id);
    }
    lua_pushstring(L, r->id);
    lua_setfield(L, -2, "id");

    lua_pushlstring(L, c->body.p ? c->body.p : "", c->body.len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, c->remote);
    lua_setfield(L, -2, "remote");
    lua_pushstring(L, r->http10 ? "1.0" : "1.1");
    lua_setfield(L, -2, "version");
    lua_pushnumber(L, c->start);
    lua_setfield(L, -2, "start");
    if (s->req_mt_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->req_mt_ref);
        lua_setmetatable(L, -2);
    }
}

static void dispatch(conn *c)
{
    srv *s = c->s;
    lua_State *L = mg_L;
    c->nreq++;
    s->requests++;
    if (c->in.len >= PIPELINE_MAX) reading(c, 0); else reading(c, 1);   /* notice a client gone */
    timer_set(c, s->handler_timeout);

    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler_ref);
    /* the path (for the access log) lives in the userdata's tail: no finalizer needed */
    target tg = split_target(c);
    size_t pl = tg.path_len < 2048 ? tg.path_len : 2048;
    res *r = lua_newuserdata(L, sizeof *r + pl + 1);
    memset(r, 0, sizeof *r);
    r->path = (char *)(r + 1);
    memcpy(r->path, tg.path, pl);
    r->path[pl] = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, res_mt_ref);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    r->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->c = c;
    r->start = c->start;
    r->keepalive = c->keepalive;
    r->head_only = c->is_head;
    r->http10 = c->parser.http_minor == 0;
    r->method = http_method_str(c->parser.method);
    c->r = r;
    push_req(L, c, r, &tg);     /* fn res req */
    buf_free(&c->body);         /* req.body holds its own copy: do not keep two of a 20 MB body */
    lua_insert(L, -2);          /* fn req res */
    mg_task *t = mg_task_spawn(L, 2);
    lua_pop(L, 1);
    r->task = t;
    mg_task_set_deadline(t, ev_now(mg_loop) + s->handler_timeout);
    mg_task_on_exit(t, on_task_exit, r);
}

static void on_task_exit(mg_task *t, int ok, const char *err, void *ud)
{
    res *r = ud;
    r->task = NULL;
    if (r->c && !r->finished) {
        conn *c = r->c;
        if (!r->started) {
            /* the server's Lua dispatcher normally answers; this is the backstop */
            if (r->timed_out)
                res_send_error(r, 504, "the request handler timed out", "server_error", "timeout");
            else
                res_send_error(r, 500, "internal server error", "server_error", "internal_error");
        } else {
            /* a stream cut short: the client must not mistake it for a complete response */
            conn_free(c, r->timed_out ? 504 : 500, r->timed_out ? "handler timed out" : "stream ended early");
        }
    }
    res_release(r);
}

/* ---- responses ---------------------------------------------------------------------------- */

static int valid_token(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 32 || ch >= 127 || strchr("()<>@,;:\\\"/[]?={}", ch)) return 0;
    }
    return 1;
}

static int valid_value(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == 0) return 0;
    return 1;
}

enum { H_CL = 1, H_TE = 2, H_CONN = 4, H_RID = 8, H_DATE = 16, H_CLOSE = 32, H_FRAMED = 64 };

static int add_header(lua_State *L, buf *b, const char *name, size_t nl, int vidx, int *seen)
{
    size_t vl;
    const char *v = lua_tolstring(L, vidx, &vl);
    if (!v) return luaL_error(L, "header '%s': value must be a string or a number", name);
    if (!valid_value(v, vl)) return luaL_error(L, "header '%s': value contains CR, LF or NUL", name);
    int flag = 0;
    if (ieq(name, nl, "content-length")) flag = H_CL;
    else if (ieq(name, nl, "transfer-encoding")) flag = H_TE;
    else if (ieq(name, nl, "connection")) flag = ieq(v, vl, "close") ? H_CONN | H_CLOSE : H_CONN;
    else if (ieq(name, nl, "x-request-id")) flag = H_RID;
    else if (ieq(name, nl, "date")) flag = H_DATE;
    /* a whole response is framed by the server: the handler's own framing would contradict it */
    if ((*seen & H_FRAMED) && (flag & (H_CL | H_TE))) return 0;
    *seen |= flag;
    buf_add(b, name, nl);
    buf_add(b, ": ", 2);
    buf_add(b, v, vl);
    buf_add(b, "\r\n", 2);
    return 0;
}

/* The connection header, once the caller has settled r->keepalive. */
static void add_connection(res *r, buf *b, int seen)
{
    if (r->c && r->c->s->draining) r->keepalive = 0;
    if (seen & H_CLOSE) r->keepalive = 0;
    if (seen & H_CONN) return;
    if (!r->keepalive) ADD_LIT(b, "connection: close\r\n");
    else if (r->http10) ADD_LIT(b, "connection: keep-alive\r\n");
}

/* Status line and headers into b; the caller's header table is at hidx (or nil). Raises on bad
 * headers (a handler bug). Returns the H_* flags of the headers the handler set. framed: the
 * server sets content-length itself (the handler's content-length / transfer-encoding are
 * dropped). The connection header is the caller's (add_connection). */
static int build_head(lua_State *L, res *r, buf *b, int status, int hidx, const char **cl_value, int framed)
{
    char num[24];
    const char *reason = mg_http_reason(status);
    ADD_LIT(b, "HTTP/1.1 ");
    buf_add(b, num, fmt_uint(num, (unsigned long long)status));
    buf_add(b, " ", 1);
    buf_add(b, reason, strlen(reason));
    ADD_LIT(b, "\r\n");
    int seen = framed ? H_FRAMED : 0;
    if (hidx && lua_istable(L, hidx)) {
        lua_pushnil(L);
        while (lua_next(L, hidx)) {
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "header names must be strings");
            size_t nl;
            const char *name = lua_tolstring(L, -2, &nl);
            if (!valid_token(name, nl)) return luaL_error(L, "invalid header name '%s'", name);
            if (lua_istable(L, -1)) {
                int m = (int)lua_objlen(L, -1);
                for (int i = 1; i <= m; i++) {
                    lua_rawgeti(L, -1, i);
                    add_header(L, b, name, nl, lua_gettop(L), &seen);
                    lua_pop(L, 1);
                }
            } else {
                add_header(L, b, name, nl, lua_gettop(L), &seen);
                if (ieq(name, nl, "content-length") && cl_value) *cl_value = lua_tostring(L, -1);
            }
            lua_pop(L, 1);
        }
    } else if (hidx && !lua_isnil(L, hidx)) {
        return luaL_error(L, "headers must be a table");
    }
    if (!(seen & H_RID)) {
        buf_add(b, "x-request-id: ", 14);
        buf_add(b, r->id, strlen(r->id));
        buf_add(b, "\r\n", 2);
    }
    if (!(seen & H_DATE)) {
        const char *d = http_date();
        buf_add(b, "date: ", 6);
        buf_add(b, d, strlen(d));
        buf_add(b, "\r\n", 2);
    }
    return seen;
}

static int status_has_body(int status) { return !(status < 200 || status == 204 || status == 304); }

/* The response is complete on our side: log, detach, and go on when the bytes are out. */
static void res_complete(res *r)
{
    conn *c = r->c;
    r->finished = 1;
    access_log(c->s, r, r->status, NULL);
    int keep = r->keepalive;
    r->c = NULL;
    c->r = NULL;
    res_release(r);   /* r may be collected from here on */
    if (conn_pending(c)) {
        c->after_flush = keep ? 1 : 3;
        reading(c, 0);
        timer_set(c, SEND_TIMEOUT);
        return;
    }
    conn_response_done(c, keep);
}

/* The whole response in one writev. Returns -1 when the connection failed (and is freed). */
static int res_send_body(lua_State *L, res *r, int status, int hidx, const char *body, size_t bl)
{
    conn *c = r->c;
    buf *head = &scratch;
    head->len = 0;
    int seen = build_head(L, r, head, status, hidx, NULL, 1);   /* may raise: nothing is sent then */
    add_connection(r, head, seen);
    r->status = status;
    r->started = 1;
    char cl[64];
    int withbody = status_has_body(status);
    if (withbody) {
        ADD_LIT(head, "content-length: ");
        buf_add(head, cl, fmt_uint(cl, (unsigned long long)bl));
        ADD_LIT(head, "\r\n\r\n");
    } else {
        buf_add(head, "\r\n", 2);
    }
    if (!withbody || r->head_only) bl = 0;
    struct iovec iov[2] = {{head->p, head->len}, {(void *)body, bl}};
    r->bytes = bl;
    if (conn_writev(c, iov, bl ? 2 : 1)) { conn_free(c, 499, "write failed"); return -1; }
    if (scratch.cap > 65536) buf_free(&scratch);
    res_complete(r);
    return 0;
}

static int res_send_error(res *r, int status, const char *msg, const char *type, const char *code)
{
    char body[1024];
    size_t bl = mg_http_error_json(body, sizeof body, msg, type, code, r->id);
    if (bl >= sizeof body) bl = sizeof body - 1;
    lua_State *L = mg_L;
    int top = lua_gettop(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "application/json");
    lua_setfield(L, -2, "content-type");
    int rc = res_send_body(L, r, status, lua_gettop(L), body, bl);
    lua_settop(L, top);
    return rc;
}

static res *check_res(lua_State *L) { return luaL_checkudata(L, 1, RES_MT); }

static int closed(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
}

/* res:send(status, headers, body) -> true | nil, "closed"   [-0, +1..2, e] */
static int l_res_send(lua_State *L)
{
    res *r = check_res(L);
    int status = (int)luaL_checkinteger(L, 2);
    size_t bl = 0;
    const char *body = luaL_optlstring(L, 4, "", &bl);
    if (status < 200 || status > 999) return luaL_argerror(L, 2, "status must be 200..999");
    if (r->started) return luaL_error(L, "response already started");
    if (!r->c) return closed(L);
    if (res_send_body(L, r, status, 3, body, bl)) return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* res:error(status, message, type, code) -> true | nil, "closed": an OpenAI-shaped JSON error
 * carrying the request id.   [-0, +1..2, e] */
static int l_res_error(lua_State *L)
{
    res *r = check_res(L);
    int status = (int)luaL_checkinteger(L, 2);
    const char *msg = luaL_checkstring(L, 3);
    const char *type = luaL_optstring(L, 4, status >= 500 ? "server_error" : "invalid_request_error");
    const char *code = luaL_optstring(L, 5, "error");
    if (r->started) return luaL_error(L, "response already started");
    if (!r->c) return closed(L);
    if (res_send_error(r, status, msg, type, code)) return closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* res:start(status, headers) -> true | nil, "closed": send the head of a streamed response;
 * chunked unless headers carry content-length.   [-0, +1..2, e] */
static int l_res_start(lua_State *L)
{
    res *r = check_res(L);
    int status = (int)luaL_checkinteger(L, 2);
    if (status < 200 || status > 999) return luaL_argerror(L, 2, "status must be 200..999");
    if (r->started) return luaL_error(L, "response already started");
    if (!r->c) return closed(L);
    buf *head = &scratch;
    head->len = 0;
    const char *cl = NULL;
    int seen = build_head(L, r, head, status, lua_gettop(L) >= 3 ? 3 : 0, &cl, 0);   /* may raise */
    r->status = status;
    r->started = 1;
    if (!status_has_body(status)) {
        r->no_body = 1;
    } else if (seen & H_CL) {
        r->has_declared = 1;
        r->declared = cl ? strtoull(cl, NULL, 10) : 0;
    } else if (seen & H_TE) {
        r->chunked = 0;     /* the handler frames the body itself; only the close ends it for sure */
        r->keepalive = 0;
    } else if (r->http10) {
        r->keepalive = 0;   /* HTTP/1.0 has no chunking: the end of the body is the close */
    } else {
        r->chunked = 1;
        ADD_LIT(head, "transfer-encoding: chunked\r\n");
    }
    add_connection(r, head, seen);
    ADD_LIT(head, "\r\n");
    struct iovec iov = {head->p, head->len};
    int rc = conn_writev(r->c, &iov, 1);
    if (scratch.cap > 65536) buf_free(&scratch);
    if (rc) { conn_free(r->c, 499, "write failed"); return closed(L); }
    /* The handler's deadline bounds the time to the first byte. A started response is
     * bounded by the time between writes instead, so a long stream is never cut for being
     * long, and a stalled one is. */
    if (r->task) mg_task_set_deadline(r->task, 0);
    timer_set(r->c, r->c->s->stream_idle_timeout);
    lua_pushboolean(L, 1);
    return 1;
}

static void drain_cancel(mg_wait *w)
{
    res *r = ((struct { mg_wait w; res *r; } *)w)->r;
    r->draining_wait = 0;
}

/* res:write(chunk) -> true | nil, "closed"; waits while too much is unsent (backpressure)
 * [-0, +1..2, y] */
static int l_res_write(lua_State *L)
{
    res *r = check_res(L);
    size_t n;
    const char *d = luaL_checklstring(L, 2, &n);
    if (!r->started) return luaL_error(L, "res:write before res:start");
    if (r->finished && r->c == NULL) return closed(L);
    if (r->finished) return luaL_error(L, "res:write after res:finish");
    if (!r->c) return closed(L);
    if (!n || r->head_only || r->no_body) { lua_pushboolean(L, 1); return 1; }
    if (r->has_declared && r->bytes + n > r->declared)
        return luaL_error(L, "res:write past the declared content-length (%llu)", (unsigned long long)r->declared);
    conn *c = r->c;
    int rc;
    if (r->chunked) {
        char pre[24];
        int pl = snprintf(pre, sizeof pre, "%zx\r\n", n);
        struct iovec iov[3] = {{pre, (size_t)pl}, {(void *)d, n}, {"\r\n", 2}};
        rc = conn_writev(c, iov, 3);
    } else {
        struct iovec iov = {(void *)d, n};
        rc = conn_writev(c, &iov, 1);
    }
    if (rc) { conn_free(c, 499, "write failed"); return closed(L); }
    r->bytes += n;
    timer_set(c, c->s->stream_idle_timeout);
    if (conn_pending(c) > WRITE_HIGH && mg_task_current(L)) {
        r->drain.w.cancel = drain_cancel;
        r->drain.w.sleep = 0;
        r->drain.r = r;
        r->draining_wait = 1;
        return mg_task_wait(L, &r->drain.w, -1);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* res:finish() -> true | nil, "closed": end a streamed response.   [-0, +1..2, e] */
static int l_res_finish(lua_State *L)
{
    res *r = check_res(L);
    if (!r->started) return luaL_error(L, "res:finish before res:start");
    if (r->finished) { if (!r->c) return closed(L); lua_pushboolean(L, 1); return 1; }
    if (!r->c) return closed(L);
    conn *c = r->c;
    if (r->chunked && !r->head_only) {
        struct iovec iov = {"0\r\n\r\n", 5};
        if (conn_writev(c, &iov, 1)) { conn_free(c, 499, "write failed"); return closed(L); }
    }
    if (r->has_declared && r->bytes != r->declared && !r->head_only) r->keepalive = 0;
    if (!r->chunked && !r->has_declared && !r->no_body) r->keepalive = 0;
    res_complete(r);
    lua_pushboolean(L, 1);
    return 1;
}

/* res:abort() -> true: drop the connection now, without (the rest of) an answer. Before any
 * byte of the answer the close is a TCP reset (SO_LINGER 0); after res:start it is a plain close,
 * so the client sees a truncated body. Logged with status 444. Idempotent.   [-0, +1, -] */
static int l_res_abort(lua_State *L)
{
    res *r = check_res(L);
    conn *c = r->c;
    if (c) {
        if (!r->started) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        conn_free(c, 444, "aborted by the handler");
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* res.started, res.finished, res.id, or a method   [-0, +1, -] */
static int l_res_index(lua_State *L)
{
    res *r = check_res(L);
    const char *k = lua_tostring(L, 2);
    if (k && !strcmp(k, "started")) { lua_pushboolean(L, r->started); return 1; }
    if (k && !strcmp(k, "finished")) { lua_pushboolean(L, r->finished); return 1; }
    if (k && !strcmp(k, "id")) { lua_pushstring(L, r->id); return 1; }
    if (k && !strcmp(k, "status")) { if (r->status) lua_pushinteger(L, r->status); else lua_pushnil(L); return 1; }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}



/* ---- I/O callbacks ------------------------------------------------------------------------ */

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, rw));
    if (buf_reserve(&c->in, READ_CHUNK)) { conn_free(c, 499, "out of memory"); return; }
    ssize_t n;
    do n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len); while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->in.len += n;
        if (c->state == C_BODY) timer_set(c, c->s->body_timeout);   /* idle time between reads */
        conn_process(c);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    /* EOF or error: the client is gone (or done, when lingering) */
    conn_free(c, 499, "client closed the connection");
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, ww));
    while (conn_pending(c)) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, conn_pending(c), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) { conn_free(c, 499, "client closed the connection"); return; }
        c->out_off += n;
    }
    res *r = c->r;
    if (r && r->draining_wait && conn_pending(c) < WRITE_LOW && r->task) {
        /* a streaming handler waits in res:write: wake it last, it may free this connection */
        if (!conn_pending(c)) {
            c->out.len = c->out_off = 0;
            ev_io_stop(loop, &c->ww);
            c->writing = 0;
        }
        r->draining_wait = 0;
        lua_pushboolean(mg_task_thread(r->task), 1);
        mg_task_wake(r->task, 1);
        return;
    }
    if (conn_pending(c)) return;
    c->out.len = c->out_off = 0;
    if (c->out.cap > 1 << 20) buf_free(&c->out);
    ev_io_stop(loop, &c->ww);
    c->writing = 0;
    int af = c->after_flush;
    c->after_flush = 0;
    if (af == 1) conn_response_done(c, 1);
    else if (af == 3) conn_response_done(c, 0);
    else if (af == 2) conn_linger(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, timer));
    switch (c->state) {
    case C_HEAD:
        if (c->head_started || c->nreq == 0)
            conn_error(c, 408, "request header timeout", "invalid_request_error", "request_timeout");
        else
            conn_free(c, 0, NULL);   /* an idle keep-alive connection */
        return;
    case C_BODY:
        conn_error(c, 408, "request body timeout", "invalid_request_error", "request_timeout");
        return;
    case C_HANDLING: {
        res *r = c->r;
        if (r && !r->finished && r->task) {
            r->timed_out = 1;
            mg_task_cancel(r->task);   /* on_exit answers 504 (or cuts a started stream) */
            return;
        }
        conn_free(c, 0, NULL);   /* a client that does not read its response */
        return;
    }
    default:
        conn_free(c, 0, NULL);
        return;
    }
}

static void conn_new(srv *s, int fd, struct sockaddr_storage *sa)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) { close(fd); return; }
    c->s = s;
    c->fd = fd;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(c->remote, sizeof c->remote, "%s:%d", ip, port);
    } else if (sa->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(c->remote, sizeof c->remote, "[%s]:%d", ip, port);
    }
    ev_io_init(&c->rw, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->ww, conn_write_cb, fd, EV_WRITE);
    /* libev invokes pending watchers highest priority first: reads run before the scheduler's
     * check watcher, so a handler spawned by a read starts in the same loop iteration. */
    ev_set_priority(&c->rw, 1);
    ev_set_priority(&c->ww, 1);
    ev_init(&c->timer, conn_timer_cb);
    conn_reset_for_next(c);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    reading(c, 1);
    timer_set(c, s->header_timeout);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    srv *s = (srv *)((char *)w - offsetof(srv, accept_w));
    for (int i = 0; i < 64; i++) {
        if (s->nconns >= s->max_conns) {
            /* at the limit: leave new connections in the kernel's backlog until one closes */
            ev_io_stop(mg_loop, &s->accept_w);
            s->accept_full = 1;
            return;
        }
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept4(s->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: pause accepting for a moment instead of spinning on it */
                mg_log("error", "accept: %s; pausing accept for 100 ms (%d connections open)",
                       strerror(errno), s->nconns);
                ev_io_stop(mg_loop, &s->accept_w);
                ev_timer_set(&s->accept_retry_w, 0.1, 0.);
                ev_timer_start(mg_loop, &s->accept_retry_w);
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_new(s, fd, &sa);
    }
}

/* ---- the server object ------------------------------------------------------------------- */

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    srv *s = (srv *)((char *)w - offsetof(srv, accept_retry_w));
    if (s->fd >= 0 && !s->draining) ev_io_start(loop, &s->accept_w);
}

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    srv *s = (srv *)((char *)w - offsetof(srv, wake_w));
    if (!s->waiting) return;
    s->waiting = 0;
    mg_task *t = s->waiter.task;
    s->waiter.task = NULL;
    lua_pushboolean(mg_task_thread(t), 1);
    mg_task_wake(t, 1);
}

/* Wake the task in server:wait() once the server is drained; from the loop, not from inside
 * whatever freed the last connection. */
static void srv_check_drained(srv *s)
{
    if (!s->waiting) return;
    if (!s->closed && !(s->draining && s->nconns == 0)) return;
    if (!ev_is_active(&s->wake_w)) {
        ev_timer_set(&s->wake_w, 0., 0.);
        ev_timer_start(mg_loop, &s->wake_w);
    }
}

static void srv_close_all(srv *s)
{
    ev_timer_stop(mg_loop, &s->grace_w);
    if (s->fd >= 0) {
        ev_io_stop(mg_loop, &s->accept_w);
        ev_timer_stop(mg_loop, &s->accept_retry_w);
        close(s->fd);
        s->fd = -1;
    }
    s->draining = 1;
    while (s->conns) conn_free(s->conns, 503, "server shut down");
    s->closed = 1;
    if (s->self_ref != LUA_NOREF) {
        luaL_unref(mg_L, LUA_REGISTRYINDEX, s->self_ref);
        s->self_ref = LUA_NOREF;
    }
    srv_check_drained(s);
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    srv *s = (srv *)((char *)w - offsetof(srv, grace_w));
    if (s->nconns) mg_log("warn", "grace period over: closing %d connection(s)", s->nconns);
    srv_close_all(s);
}

static srv *check_srv(lua_State *L) { return luaL_checkudata(L, 1, SERVER_MT); }

static double opt_num(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Limits from the table at t; absent keys keep their current values. */
static void read_limits(lua_State *L, int t, srv *s)
{
    s->header_bytes = (size_t)opt_num(L, t, "header_bytes", (double)s->header_bytes);
    s->max_headers = (int)opt_num(L, t, "headers", s->max_headers);
    s->body_bytes = (size_t)opt_num(L, t, "body_bytes", (double)s->body_bytes);
    s->header_timeout = opt_num(L, t, "header_timeout", s->header_timeout);
    s->body_timeout = opt_num(L, t, "body_timeout", s->body_timeout);
    s->keepalive_timeout = opt_num(L, t, "keepalive_timeout", s->keepalive_timeout);
    s->handler_timeout = opt_num(L, t, "handler_timeout", s->handler_timeout);
    s->stream_idle_timeout = opt_num(L, t, "stream_idle_timeout", s->stream_idle_timeout);
    s->max_conns = (int)opt_num(L, t, "connections", s->max_conns);
    lua_getfield(L, t, "access_log");
    if (!lua_isnil(L, -1)) s->access_log = lua_toboolean(L, -1);
    lua_pop(L, 1);
    uint32_t mh = s->header_bytes + 4096 > 80 * 1024 ? (uint32_t)s->header_bytes + 4096 : 80 * 1024;
    http_parser_set_max_header_size(mh);
}

/* server:set_limits{header_bytes=, headers=, body_bytes=, header_timeout=, body_timeout=,
 * keepalive_timeout=, handler_timeout=, stream_idle_timeout=, access_log=}: for requests that start from now on
 * (a SIGHUP reload).   [-0, +0, e] */
static int l_srv_set_limits(lua_State *L)
{
    srv *s = check_srv(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    read_limits(L, 2, s);
    return 0;
}

/* listen{host=, port=, reuseport=, backlog=, handler=fn(req, res), req_mt=, header_bytes=,
 * headers=, body_bytes=, header_timeout=, body_timeout=, keepalive_timeout=, handler_timeout=,
 * stream_idle_timeout=, access_log=} -> server | nil, err   [-0, +1..2, e] */
static int l_listen(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    int port = (int)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "handler");
    luaL_checktype(L, -1, LUA_TFUNCTION);
    int top = lua_gettop(L);

    log_pid = (int)getpid();   /* listen runs in the worker, after the fork */
    if (!rng_s[0] && !rng_s[1]) {
        if (getrandom(rng_s, sizeof rng_s, 0) != sizeof rng_s) {
            rng_s[0] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
            rng_s[1] = (uint64_t)(ev_time() * 1e6);
        }
        if (!rng_s[0] && !rng_s[1]) rng_s[0] = 1;
        http_parser_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
        settings.on_chunk_header = on_chunk_header;
    }

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(*host ? host : NULL, ps, &hints, &ai);
    if (gai) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot resolve %s: %s", host, gai_strerror(gai));
        return 2;
    }
    lua_getfield(L, 1, "reuseport");
    int reuseport = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int backlog = (int)opt_num(L, 1, "backlog", 511);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, backlog)) {
        int e = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot listen on %s:%d: %s", host, port, strerror(e));
        return 2;
    }
    freeaddrinfo(ai);

    srv *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, SERVER_MT);
    lua_setmetatable(L, -2);
    s->fd = fd;
    s->self_ref = s->req_mt_ref = LUA_NOREF;
    lua_pushvalue(L, top);
    s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, 1, "req_mt");
    if (lua_istable(L, -1)) s->req_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX); else lua_pop(L, 1);
    s->header_bytes = 65536;
    s->max_headers = 100;
    s->body_bytes = 20 * 1048576;
    s->header_timeout = 10;
    s->body_timeout = 60;
    s->keepalive_timeout = 75;
    s->handler_timeout = 60;
    s->stream_idle_timeout = 60;
    s->access_log = 1;
    s->max_conns = 10000;
    read_limits(L, 1, s);

    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    if (sa.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, s->host, sizeof s->host);
        s->port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, s->host, sizeof s->host);
        s->port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    }
    ev_io_init(&s->accept_w, accept_cb, fd, EV_READ);
    ev_io_start(mg_loop, &s->accept_w);
    ev_init(&s->grace_w, grace_cb);
    ev_init(&s->wake_w, wake_cb);
    ev_init(&s->accept_retry_w, accept_retry_cb);
    lua_pushvalue(L, -1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* server:address() -> host, port   [-0, +2, -] */
static int l_srv_address(lua_State *L)
{
    srv *s = check_srv(L);
    lua_pushstring(L, s->host);
    lua_pushinteger(L, s->port);
    return 2;
}

/* server:stop([grace]): stop accepting, close idle connections, answer in-flight requests with
 * "connection: close"; after grace seconds close whatever is left.   [-0, +0, -] */
static int l_srv_stop(lua_State *L)
{
    srv *s = check_srv(L);
    double grace = luaL_optnumber(L, 2, 30);
    if (s->closed || s->draining) return 0;
    s->draining = 1;
    if (s->fd >= 0) {
        ev_io_stop(mg_loop, &s->accept_w);
        ev_timer_stop(mg_loop, &s->accept_retry_w);
        close(s->fd);
        s->fd = -1;
    }
    conn *c = s->conns;
    while (c) {
        conn *next = c->next;
        if (c->state == C_HEAD && !c->head_started) conn_free(c, 0, NULL);
        c = next;
    }
    if (s->nconns) {
        ev_timer_set(&s->grace_w, grace, 0.);
        ev_timer_start(mg_loop, &s->grace_w);
    } else {
        srv_close_all(s);
    }
    srv_check_drained(s);
    return 0;
}

/* server:close(): close everything now, cancelling running handlers.   [-0, +0, -] */
static int l_srv_close(lua_State *L)
{
    srv *s = check_srv(L);
    if (!s->closed) srv_close_all(s);
    return 0;
}

static void srv_wait_cancel(mg_wait *w)
{
    srv *s = (srv *)((char *)w - offsetof(srv, waiter.w));
    s->waiting = 0;
    s->waiter.task = NULL;
    ev_timer_stop(mg_loop, &s->wake_w);
}

/* server:wait([timeout]) -> true once stopped and drained (or closed) | nil, "timeout"
 * [-0, +1..2, y] */
static int l_srv_wait(lua_State *L)
{
    srv *s = check_srv(L);
    double timeout = luaL_optnumber(L, 2, -1);
    if (s->closed || (s->draining && s->nconns == 0)) { lua_pushboolean(L, 1); return 1; }
    if (s->waiting) return luaL_error(L, "another task already waits on this server");
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "not in a task");
    s->waiting = 1;
    s->waiter.task = t;
    s->waiter.w.cancel = srv_wait_cancel;
    s->waiter.w.sleep = 0;
    return mg_task_wait(L, &s->waiter.w, timeout);
}

/* server:stats() -> {connections=, requests=, draining=}   [-0, +1, -] */
static int l_srv_stats(lua_State *L)
{
    srv *s = check_srv(L);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, s->nconns);
    lua_setfield(L, -2, "connections");
    lua_pushnumber(L, s->requests);
    lua_setfield(L, -2, "requests");
    lua_pushboolean(L, s->draining);
    lua_setfield(L, -2, "draining");
    return 1;
}

MG_API int luaopen_moongate__http_server(lua_State *L)
{
    if (luaL_newmetatable(L, SERVER_MT)) {
        static const luaL_Reg m[] = {{"address", l_srv_address}, {"stop", l_srv_stop},
                                     {"close", l_srv_close}, {"wait", l_srv_wait},
                                     {"stats", l_srv_stats}, {"set_limits", l_srv_set_limits},
                                     {NULL, NULL}};
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
        luaL_register(L, NULL, m);
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, RES_MT)) {
        static const luaL_Reg m[] = {{"send", l_res_send}, {"error", l_res_error},
                                     {"start", l_res_start}, {"write", l_res_write},
                                     {"finish", l_res_finish}, {"abort", l_res_abort},
                                     {NULL, NULL}};
        lua_newtable(L);
        luaL_register(L, NULL, m);
        lua_pushcclosure(L, l_res_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pushvalue(L, -1);
    res_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {{"listen", l_listen}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
