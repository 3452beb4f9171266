/* http_client.c: the non-blocking HTTP client behind moongate.http: one curl multi per worker,
 * driven by libev through curl_multi_socket_action; a task waits on its transfer via mg_wait. */
#define _GNU_SOURCE
#include "http_client.h"
#include "scheduler.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_MT "moongate.http.stream"
#define DEFAULT_STREAM_BUFFER (1 << 20)
#define MAX_HEADER_BYTES (256 << 10)   /* a response's header block; curl 7.88 has no total cap */

/* What the task parked on a transfer waits for. */
enum { W_NONE, W_RESPONSE, W_HEADERS, W_READ };

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

typedef struct xfer {
    mg_wait wait;            /* first: the scheduler hands it back to xfer_cancel */
    CURL *easy;
    struct curl_slist *req_headers;
    mg_task *task;           /* the task waiting on this transfer, or NULL */
    int waiting;             /* W_* */
    int stream;              /* the body is read with res:read() */
    int in_multi;
    int done;                /* curl finished: result is valid */
    int headers_done;        /* the final response's header block is complete */
    int follow;              /* redirects followed: a 3xx with a Location is not final */
    int has_location;
    int paused;              /* the write callback paused the transfer (reader behind) */
    int too_large;           /* non-stream body passed max_body */
    int in_pending;
    const char *abort_err;   /* set when we aborted the transfer ourselves */
    CURLcode result;
    long status;
    size_t max_body, buf_limit;
    buf hdr, body;
    struct xfer *pnext, *pprev;
    ev_timer idle;           /* res:read()'s idle timeout */
    char errbuf[CURL_ERROR_SIZE];
    char detail[64];         /* our own detail for abort_err */
    char *req_body;          /* a request body: curl sends it with the headers (see prereq_cb) */
    int sent;                /* the request went out at least once */
    int answered;            /* response bytes arrived since the request last went out */
    int counted;             /* a stream counted in st.streams */
    int have_info;           /* the timings below were read from the easy handle */
    curl_off_t t_connect, t_tls, t_first, t_total;   /* microseconds since the start */
    long new_connects, http_version;
} xfer;

typedef struct sockw {
    ev_io io;
} sockw;

static CURLM *multi;
static CURLSH *share;   /* TLS sessions shared by all transfers: reconnects resume them */
static pid_t multi_pid;

/* This process's pid, read once and again after a fork: multi_ready() runs on every request,
 * and a getpid() syscall each time is a measurable share of a proxied call. */
static pid_t self_pid;
static void forget_pid(void) { self_pid = 0; }
static pid_t current_pid(void)
{
    static int registered;
    if (!registered) {
        registered = 1;
        pthread_atfork(NULL, NULL, forget_pid);
    }
    if (!self_pid) self_pid = getpid();
    return self_pid;
}

/* Easy handles of finished transfers, reset and kept for the next request: init and cleanup
 * allocate and free several KB per upstream call otherwise. Reset keeps no request option;
 * connections stay in the multi's cache either way. */
#define EASY_POOL_MAX 64
static CURL *easy_pool[EASY_POOL_MAX];
static int easy_pooled;

static CURL *easy_get(void)
{
    return easy_pooled ? easy_pool[--easy_pooled] : curl_easy_init();
}

static void easy_put(CURL *e)
{
    if (easy_pooled < EASY_POOL_MAX) {
        curl_easy_reset(e);
        easy_pool[easy_pooled++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}
static ev_timer multi_timer;
static xfer *pending_head;
static mg_http_stats st;

MG_API void mg_http_stats_get(mg_http_stats *out) { *out = st; }

static long limit_host, limit_total, limit_idle;

static void apply_limits(void)
{
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, limit_host);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit_total);
    /* 0 would mean no idle cache at all (no reuse); -1 restores curl's own default, an idle
     * cache of 4 connections per transfer added */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, limit_idle > 0 ? limit_idle : -1L);
}

/* ---- buffers --------------------------------------------------------------------------- */

static int buf_add(buf *b, const char *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- the notify list: transfers whose waiter may be ready, handled after curl returns ---- */

static void pending_add(xfer *x)
{
    if (x->in_pending) return;
    x->in_pending = 1;
    x->pprev = NULL;
    x->pnext = pending_head;
    if (pending_head) pending_head->pprev = x;
    pending_head = x;
}

static void pending_remove(xfer *x)
{
    if (!x->in_pending) return;
    if (x->pprev) x->pprev->pnext = x->pnext; else pending_head = x->pnext;
    if (x->pnext) x->pnext->pprev = x->pprev;
    x->pnext = x->pprev = NULL;
    x->in_pending = 0;
}

/* ---- transfer lifetime ------------------------------------------------------------------ */

/* Detach and free the easy handle (closing its connection if the transfer was cut short). */
static void easy_release(xfer *x)
{
    if (!x->easy) return;
    if (x->in_multi) {
        curl_multi_remove_handle(multi, x->easy);
        x->in_multi = 0;
        st.active--;
    }
    if (x->paused) {
        x->paused = 0;
        st.paused--;
    }
    easy_put(x->easy);
    x->easy = NULL;
    st.handles--;
    curl_slist_free_all(x->req_headers);
    x->req_headers = NULL;
}

static void xfer_free(xfer *x)
{
    easy_release(x);
    pending_remove(x);
    ev_timer_stop(mg_loop, &x->idle);
    if (x->stream) st.buffered -= (int64_t)x->body.len;
    buf_free(&x->hdr);
    buf_free(&x->body);
    free(x->req_body);
    free(x);
}

/* Read the transfer's timings and connection facts before its easy handle goes. */
static void capture_info(xfer *x)
{
    if (!x->easy) return;
    curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &x->t_connect);
    curl_easy_getinfo(x->easy, CURLINFO_APPCONNECT_TIME_T, &x->t_tls);
    curl_easy_getinfo(x->easy, CURLINFO_STARTTRANSFER_TIME_T, &x->t_first);
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &x->t_total);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &x->new_connects);
    curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &x->http_version);
    x->have_info = 1;
}

/* {reused, http_version, connect, tls, first_byte[, total]}: seconds from the request's
 * start to each point (connect and tls are 0 on a reused connection). */
static void push_info(lua_State *co, xfer *x, int with_total)
{
    lua_createtable(co, 0, 6);
    lua_pushboolean(co, x->new_connects == 0);
    lua_setfield(co, -2, "reused");
    const char *v = x->http_version == CURL_HTTP_VERSION_2_0 ? "2"
                  : x->http_version == CURL_HTTP_VERSION_3 ? "3"
                  : x->http_version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1";
    lua_pushstring(co, v);
    lua_setfield(co, -2, "http_version");
    lua_pushnumber(co, (lua_Number)x->t_connect / 1e6);
    lua_setfield(co, -2, "connect");
    lua_pushnumber(co, (lua_Number)x->t_tls / 1e6);
    lua_setfield(co, -2, "tls");
    lua_pushnumber(co, (lua_Number)x->t_first / 1e6);
    lua_setfield(co, -2, "first_byte");
    if (with_total) {
        lua_pushnumber(co, (lua_Number)x->t_total / 1e6);
        lua_setfield(co, -2, "total");
    }
}

/* A stream is done with: no longer counted as open. */
static void stream_retire(xfer *x)
{
    if (!x->counted) return;
    x->counted = 0;
    st.streams--;
}

/* ---- curl -> Lua values ------------------------------------------------------------------ */

static const char *error_name(xfer *x)
{
    if (x->abort_err) return x->abort_err;
    if (x->too_large) return "body too large";
    switch (x->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "resolve failed";
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:    /* only connect_timeout is left to curl */
        return "connect failed";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: return "reset";
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return "closed";
    case CURLE_TOO_MANY_REDIRECTS: return "too many redirects";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: return "tls failed";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3: return "bad response";
    case CURLE_OUT_OF_MEMORY: return "out of memory";
    default: return "failed";
    }
}

/* Push nil, err, detail onto co. Returns 3. */
static int push_error(lua_State *co, xfer *x)
{
    lua_pushnil(co);
    lua_pushstring(co, error_name(x));
    if (x->abort_err && x->detail[0]) lua_pushstring(co, x->detail);
    else if (x->abort_err) lua_pushstring(co, x->abort_err);
    else if (x->too_large) lua_pushfstring(co, "body larger than %f bytes", (lua_Number)x->max_body);
    else lua_pushstring(co, x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result));
    return 3;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* The header block's "Name: value" lines -> {lower-case name = value}, repeats joined ", ". */
static void push_headers(lua_State *co, buf *b)
{
    lua_newtable(co);
    const char *p = b->p, *end = b->p + b->len;
    char name[256];
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol) eol = end;
        const char *le = eol;
        if (le > p && le[-1] == '\r') le--;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p && (size_t)(colon - p) < sizeof name) {
            size_t nl = (size_t)(colon - p);
            for (size_t i = 0; i < nl; i++) name[i] = (char)lower((unsigned char)p[i]);
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushlstring(co, name, nl);
            lua_pushvalue(co, -1);
            lua_rawget(co, -3);
            if (lua_isstring(co, -1)) {
                lua_pushliteral(co, ", ");
                lua_pushlstring(co, v, (size_t)(ve - v));
                lua_concat(co, 3);
            } else {
                lua_pop(co, 1);
                lua_pushlstring(co, v, (size_t)(ve - v));
            }
            lua_rawset(co, -3);
        }
        p = next;
    }
}

static int push_chunk_or_end(lua_State *co, xfer *x);

/* Push the results of a request wait: status, headers, body-or-stream; or nil, err, detail.
 * Frees x unless it became a stream. */
static int push_response(lua_State *co, xfer *x)
{
    if (x->done && x->result != CURLE_OK && !(x->stream && x->headers_done)) {
        int n = push_error(co, x);
        xfer_free(x);
        return n;
    }
    capture_info(x);   /* a stream still has its handle: the timings up to the headers */
    lua_pushinteger(co, x->status);
    push_headers(co, &x->hdr);
    buf_free(&x->hdr);
    if (!x->stream) {
        lua_pushlstring(co, x->body.p ? x->body.p : "", x->body.len);
        push_info(co, x, 1);
        xfer_free(x);
        return 4;
    }
    xfer **box = lua_newuserdata(co, sizeof *box);
    *box = x;
    luaL_getmetatable(co, STREAM_MT);
    lua_setmetatable(co, -2);
    x->counted = 1;
    st.streams++;
    push_info(co, x, 0);
    return 4;
}

/* Hand the buffered body to the reader and let a paused transfer go on. */
static void take_body(lua_State *co, xfer *x)
{
    lua_pushlstring(co, x->body.p, x->body.len);
    st.buffered -= (int64_t)x->body.len;
    x->body.len = 0;
    if (x->body.cap > 4 * x->buf_limit) buf_free(&x->body);
    if (x->paused && x->easy) {
        x->paused = 0;
        st.paused--;
        curl_easy_pause(x->easy, CURLPAUSE_CONT);   /* may call write_cb again right away */
    }
}

/* A stream read's results: chunk | nil (end of body) | nil, err, detail. */
static int push_chunk_or_end(lua_State *co, xfer *x)
{
    if (x->body.len) {
        take_body(co, x);
        return 1;
    }
    if (x->result == CURLE_OK && !x->abort_err) {
        lua_pushnil(co);
        return 1;
    }
    return push_error(co, x);
}

/* Wake x's waiter if what it waits for has happened. */
static void deliver(xfer *x)
{
    mg_task *t = x->task;
    if (!t) return;
    switch (x->waiting) {
    case W_RESPONSE: if (!x->done) return; break;
    case W_HEADERS: if (!x->done && !x->headers_done) return; break;
    case W_READ: if (!x->done && !x->body.len) return; break;
    default: return;
    }
    int waiting = x->waiting;
    x->task = NULL;
    x->waiting = W_NONE;
    lua_State *co = mg_task_thread(t);
    lua_checkstack(co, 8);
    int n;
    if (waiting == W_READ) {
        ev_timer_stop(mg_loop, &x->idle);
        n = push_chunk_or_end(co, x);
    } else {
        n = push_response(co, x);   /* may free x */
    }
    mg_task_wake(t, n);
}

static void run_pending(void)
{
    while (pending_head) {
        xfer *x = pending_head;
        pending_remove(x);
        deliver(x);   /* may run Lua, which may start or free transfers */
    }
}

/* After every curl_multi_socket_action: collect finished transfers, then wake their tasks. */
static void after_action(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (!x) continue;
        x->done = 1;
        x->result = rc;
        if (!x->status) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->status);
        if (rc == CURLE_OK) x->headers_done = 1;
        capture_info(x);
        easy_release(x);
        pending_add(x);
    }
    run_pending();
}

/* ---- curl callbacks: never run Lua here, only record and queue ------------------------- */

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    x->answered = 1;
    if (x->headers_done) return len;   /* trailers */
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
        /* a new response (1xx, a redirect, the final one): start over */
        x->hdr.len = 0;
        x->has_location = 0;
        const char *s = memchr(p, ' ', len);
        x->status = s ? strtol(s + 1, NULL, 10) : 0;
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        long s = x->status;
        if (s >= 100 && s < 200) return len;
        if (x->follow && x->has_location && (s == 301 || s == 302 || s == 303 || s == 307 || s == 308))
            return len;   /* curl follows it */
        x->headers_done = 1;
        if (x->waiting == W_HEADERS) pending_add(x);
        return len;
    }
    if (len > 9 && !strncasecmp(p, "location:", 9)) x->has_location = 1;
    if (x->hdr.len + len > MAX_HEADER_BYTES) {
        x->abort_err = "bad response";
        snprintf(x->detail, sizeof x->detail, "response headers larger than %d bytes", MAX_HEADER_BYTES);
        return 0;
    }
    if (buf_add(&x->hdr, p, len)) return 0;
    return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (!x->stream) {
        if (x->max_body && x->body.len + len > x->max_body) {
            x->too_large = 1;
            return 0;
        }
        return buf_add(&x->body, p, len) ? 0 : len;
    }
    if (x->body.len >= x->buf_limit) {
        /* the reader is behind: curl keeps this chunk and stops reading the socket */
        if (!x->paused) {
            x->paused = 1;
            st.paused++;
        }
        return CURL_WRITEFUNC_PAUSE;
    }
    if (buf_add(&x->body, p, len)) return 0;
    st.buffered += (int64_t)len;
    x->headers_done = 1;
    if (x->waiting == W_READ || x->waiting == W_HEADERS) pending_add(x);
    return len;
}

/* CURLOPT_PREREQFUNCTION: called each time the request is about to go out on a connection.
 * A second time with no response in between is libcurl resending after a reused connection
 * died unanswered ("Connection died, retrying a fresh connect"). The upstream may have acted on
 * that request: resending a body behind the caller's back would bypass its retry policy, so that
 * case fails as "reset". A resend after a response (a redirect, an auth challenge) goes ahead. */
static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    xfer *x = ud;
    if (x->sent && !x->answered) {
        x->abort_err = "reset";
        snprintf(x->detail, sizeof x->detail, "connection lost before any response (not resent)");
        return CURL_PREREQFUNC_ABORT;
    }
    x->sent = 1;
    x->answered = 0;
    return CURL_PREREQFUNC_OK;
}

static curl_socket_t open_socket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s != CURL_SOCKET_BAD) {
        st.sockets++;
        st.connects++;
    }
    return s;
}

static int close_socket_cb(void *ud, curl_socket_t s)
{
    st.sockets--;
    return close(s);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    int action = ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(multi, w->fd, action, &running);   /* may free w */
    after_action();
}

static void multi_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    int running;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    after_action();
}

/* CURLMOPT_SOCKETFUNCTION: mirror what curl wants to poll on an ev_io per socket. */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
    sockw *w = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            ev_io_stop(mg_loop, &w->io);
            free(w);
            curl_multi_assign(multi, s, NULL);
        }
        return 0;
    }
    int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) return -1;
        ev_io_init(&w->io, io_cb, s, events);
        curl_multi_assign(multi, s, w);
    } else {
        ev_io_stop(mg_loop, &w->io);
        ev_io_set(&w->io, s, events);
    }
    ev_io_start(mg_loop, &w->io);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one ev_timer for the whole multi (the evhiperfifo wiring). */
static int timer_fn(CURLM *m, long timeout_ms, void *ud)
{
    ev_timer_stop(mg_loop, &multi_timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&multi_timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(mg_loop, &multi_timer);
    }
    return 0;
}

/* The multi is created on first use, so each forked worker gets its own. */
static int multi_ready(void)
{
    if (multi && multi_pid == current_pid()) return 0;
    if (multi) ev_timer_stop(mg_loop, &multi_timer);   /* the parent's, inherited through fork */
    easy_pooled = 0;   /* pooled handles, if any, are the parent's too */
    multi = curl_multi_init();   /* a parent's multi, if any, is left to the parent */
    if (!multi) return -1;
    multi_pid = current_pid();
    /* With CURLOPT_NOSIGNAL curl does not shield its writes from SIGPIPE (TLS writes can raise
     * it): a vanished upstream must be an error, never the end of the worker. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    share = curl_share_init();   /* one thread: no lock callbacks needed */
    if (share) curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    ev_timer_init(&multi_timer, multi_timer_cb, 0., 0.);
    apply_limits();
    return 0;
}

MG_API int mg_http_configure(long max_host_connections, long max_connections, long max_idle)
{
    if (max_host_connections < 0 || max_connections < 0 || max_idle < 0) return MG_ERROR;
    limit_host = max_host_connections;
    limit_total = max_connections;
    limit_idle = max_idle;
    if (multi && multi_pid == current_pid()) apply_limits();
    return MG_OK;
}

/* ---- waits ------------------------------------------------------------------------------ */

/* The scheduler ends the wait (timeout, deadline, task cancelled): a request is abandoned and
 * freed; a stream read aborts the transfer, the stream object stays until closed. */
static void xfer_cancel(mg_wait *w)
{
    xfer *x = (xfer *)w;
    int waiting = x->waiting;
    x->task = NULL;
    x->waiting = W_NONE;
    pending_remove(x);
    if (waiting == W_READ) {
        /* the stream is dead now: its connection, handle and buffer go at once; only the
         * small struct waits for close or the GC (later reads: nil, "timeout") */
        ev_timer_stop(mg_loop, &x->idle);
        easy_release(x);
        x->done = 1;
        x->abort_err = "timeout";
        st.buffered -= (int64_t)x->body.len;
        buf_free(&x->body);
        stream_retire(x);
        return;
    }
    xfer_free(x);
}

/* res:read()'s own idle timeout: the reader gets nil, "timeout"; the stream stays open. */
static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    xfer *x = (xfer *)((char *)w - offsetof(xfer, idle));
    mg_task *t = x->task;
    if (!t || x->waiting != W_READ) return;
    x->task = NULL;
    x->waiting = W_NONE;
    pending_remove(x);
    lua_State *co = mg_task_thread(t);
    lua_pushnil(co);
    lua_pushliteral(co, "timeout");
    mg_task_wake(t, 2);
}

/* ---- Lua API ---------------------------------------------------------------------------- */

static double opt_seconds(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return -1;
    return luaL_checknumber(L, idx);
}

/* The url parses and its scheme is http or https; else raises the argument error. The last few
 * urls that passed are remembered: a gateway calls the same few upstream urls all day, and
 * parsing one costs about as much as the rest of setting the request up. */
#define URLS_KEPT 8
static void check_url(lua_State *L, const char *url)
{
    static char kept[URLS_KEPT][512];
    static int next_slot;
    size_t n = strlen(url);
    if (n == 0 || n >= sizeof kept[0]) n = 0;   /* not remembered: always parsed */
    for (int i = 0; n && i < URLS_KEPT; i++)
        if (!memcmp(kept[i], url, n + 1)) return;
    CURLU *u = curl_url();
    if (!u) luaL_error(L, "out of memory");
    char *scheme = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    int http_scheme = scheme && (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
    curl_free(scheme);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK) luaL_argerror(L, 2, lua_pushfstring(L, "invalid url (%s)", curl_url_strerror(uc)));
    if (!http_scheme) luaL_argerror(L, 2, "url scheme must be http or https");
    if (n) {
        memcpy(kept[next_slot], url, n + 1);
        next_slot = (next_slot + 1) % URLS_KEPT;
    }
}

/* A request body given by pointer rather than as a Lua string (a string.buffer's contents, through
 * the FFI: mg_http_stage_body), for the _http.request call that follows at once with body = true,
 * which copies it: a large body is not made a Lua string only to be copied again. */
static struct {
    const char *p;
    size_t n;
} staged;

MG_API void mg_http_stage_body(const char *p, size_t n)
{
    staged.p = p;
    staged.n = n;
}

/* _http.request(method, url, header_lines, body|true|nil, timeout|nil, connect_timeout|nil, stream,
 *               max_redirects, max_body, stream_buffer, ca_file|nil, insecure, decompress)
 *   -> status, headers, body, info | status, headers, stream, info | nil, err, detail   [-0, +4, y]
 * Arguments are validated by lua/moongate/http.lua; this checks only what keeps C safe. */
static int l_request(lua_State *L)
{
    const char *method = luaL_checkstring(L, 1);
    const char *url = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    size_t body_len = 0;
    const char *body = NULL;
    if (lua_type(L, 4) == LUA_TBOOLEAN) { /* the staged body, taken once */
        body = staged.p, body_len = staged.n;
        staged.p = NULL, staged.n = 0;
        if (!body) return luaL_error(L, "http.request: no staged body");
    } else if (!lua_isnoneornil(L, 4)) {
        body = luaL_checklstring(L, 4, &body_len);
    }
    double timeout = opt_seconds(L, 5);
    double connect_timeout = opt_seconds(L, 6);
    int stream = lua_toboolean(L, 7);
    long max_redirects = (long)luaL_optinteger(L, 8, 0);
    double max_body = luaL_optnumber(L, 9, 0);
    double stream_buffer = luaL_optnumber(L, 10, DEFAULT_STREAM_BUFFER);
    const char *ca_file = luaL_optstring(L, 11, NULL);
    int insecure = lua_toboolean(L, 12);
    int decompress = lua_toboolean(L, 13);

    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "http.request: not in a task (use moongate.spawn or moongate run)");

    check_url(L, url);

    double deadline = mg_task_deadline(t);
    if (timeout == 0 || (deadline > 0 && deadline <= ev_time())) {
        lua_pushnil(L);   /* no time left: do not even start */
        lua_pushliteral(L, "timeout");
        return 2;
    }

    if (multi_ready()) return luaL_error(L, "cannot create the curl multi handle");
    xfer *x = calloc(1, sizeof *x);
    if (!x) return luaL_error(L, "out of memory");
    x->easy = easy_get();
    if (!x->easy) {
        free(x);
        return luaL_error(L, "out of memory");
    }
    st.handles++;
    st.requests++;
    x->stream = stream;
    /* beyond 2^52 bytes a limit is no limit (and the cast stays defined) */
    x->max_body = max_body > 0 && max_body < 0x1p52 ? (size_t)max_body : 0;
    x->buf_limit = stream_buffer > 0 && stream_buffer < 0x1p52 ? (size_t)stream_buffer : DEFAULT_STREAM_BUFFER;
    x->follow = max_redirects > 0;
    x->wait.cancel = xfer_cancel;
    ev_timer_init(&x->idle, idle_cb, 0., 0.);

    int nh = (int)lua_objlen(L, 3);
    for (int i = 1; i <= nh; i++) {
        lua_rawgeti(L, 3, i);
        const char *line = lua_tostring(L, -1);
        struct curl_slist *l = line ? curl_slist_append(x->req_headers, line) : NULL;
        lua_pop(L, 1);
        if (!l) {
            xfer_free(x);
            return luaL_error(L, "http.request: bad header line");
        }
        x->req_headers = l;
    }

    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (share) curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->req_headers);
    if (decompress) curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");   /* all curl decodes */
    if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    if (insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (connect_timeout > 0 && connect_timeout < 1e6) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_timeout * 1000 + 0.5));
    if (max_redirects > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, max_redirects);
    }
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (body && body_len) {
        x->req_body = malloc(body_len);
        if (!x->req_body) {
            xfer_free(x);
            return luaL_error(L, "out of memory");
        }
        memcpy(x->req_body, body, body_len);
        /* POSTFIELDS, not a read callback: curl sends a small body in the headers' write */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
        if (strcmp(method, "POST")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
        if (strcmp(method, "POST")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLMcode mc = curl_multi_add_handle(multi, e);
    if (mc != CURLM_OK) {
        xfer_free(x);
        lua_pushnil(L);
        lua_pushliteral(L, "failed");
        lua_pushstring(L, curl_multi_strerror(mc));
        return 3;
    }
    x->in_multi = 1;
    st.active++;
    x->task = t;
    x->waiting = stream ? W_HEADERS : W_RESPONSE;
    return mg_task_wait(L, &x->wait, timeout);
}

static xfer **check_stream(lua_State *L)
{
    return luaL_checkudata(L, 1, STREAM_MT);
}

/* _http.read(stream, idle_timeout|nil) -> chunk | nil | nil, err, detail   [-0, +1..3, y] */
static int l_read(lua_State *L)
{
    xfer **box = check_stream(L);
    double idle = opt_seconds(L, 2);
    xfer *x = *box;
    if (!x) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (x->task) return luaL_error(L, "http stream: another task is already reading it");
    if (x->body.len || x->done) return push_chunk_or_end(L, x);
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "http stream: read works only inside moongate tasks");
    x->task = t;
    x->waiting = W_READ;
    if (idle >= 0) {
        ev_timer_set(&x->idle, idle, 0.);
        ev_timer_start(mg_loop, &x->idle);
    }
    return mg_task_wait(L, &x->wait, -1);
}

/* _http.close(stream): abort the transfer if it still runs and free everything; a task
 * blocked in read gets nil, "closed". Idempotent; also the __gc.   [-0, +0, -] */
static int l_close(lua_State *L)
{
    xfer **box = check_stream(L);
    xfer *x = *box;
    if (!x) return 0;
    *box = NULL;
    stream_retire(x);
    mg_task *t = x->task;
    x->task = NULL;
    x->waiting = W_NONE;
    xfer_free(x);
    if (t) {
        lua_State *co = mg_task_thread(t);
        lua_pushnil(co);
        lua_pushliteral(co, "closed");
        mg_task_wake(t, 2);
    }
    return 0;
}

/* __gc of a stream: as close, but no task is woken (nothing can still be waiting on an
 * unreachable stream, and at lua_close the tasks themselves may be gone).   [-0, +0, -] */
static int l_gc(lua_State *L)
{
    xfer **box = check_stream(L);
    xfer *x = *box;
    if (!x) return 0;
    *box = NULL;
    stream_retire(x);
    x->task = NULL;
    x->waiting = W_NONE;
    xfer_free(x);
    return 0;
}

/* _http.stats() -> {active=, handles=, streams=, sockets=, paused=, buffered=, connects=,
 * requests=}   [-0, +1, -] */
static int l_stats(lua_State *L)
{
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, st.active); lua_setfield(L, -2, "active");
    lua_pushinteger(L, st.handles); lua_setfield(L, -2, "handles");
    lua_pushinteger(L, st.streams); lua_setfield(L, -2, "streams");
    lua_pushinteger(L, st.sockets); lua_setfield(L, -2, "sockets");
    lua_pushinteger(L, st.paused); lua_setfield(L, -2, "paused");
    lua_pushnumber(L, (lua_Number)st.buffered); lua_setfield(L, -2, "buffered");
    lua_pushnumber(L, (lua_Number)st.connects); lua_setfield(L, -2, "connects");
    lua_pushnumber(L, (lua_Number)st.requests); lua_setfield(L, -2, "requests");
    return 1;
}

MG_API int luaopen_moongate__http(lua_State *L)
{
    if (luaL_newmetatable(L, STREAM_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {
        {"request", l_request}, {"read", l_read}, {"close", l_close}, {"stats", l_stats}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
