/*
 * hello.so: the demo and benchmark app, loaded by the runner (`casgi hello.so`).
 *
 *   GET  /        "Hello, World!" with a Content-Length: the benchmark's hot path, so it allocates
 *                 nothing and answers from static data inside the entry call
 *   GET  /json    a small JSON document
 *   GET  /stream  five chunks, each sent when the previous one was taken (chunked framing)
 *   POST /echo    the request body streamed back as it arrives (receive/send backpressure)
 *   GET  /slow    "slow\n" after a 100 ms timer on the server's loop
 *   anything else 404
 *
 * HEAD works on every GET route because the server drops the body. The module is built without
 * linking casgi: the runner exports the casgi_ functions it calls.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <casgi.h>

#include "lifespan_ack.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A casgi_bytes_t initialiser for static data, where CASGI_BYTES's compound literal is not one. */
#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
#define IS(bytes, lit) equals((bytes), (lit), sizeof(lit) - 1)

static const char hello_body[] = "Hello, World!";
static const char json_body[] = "{\"message\":\"Hello, World!\"}";
static const char slow_body[] = "slow\n";
static const char not_found_body[] = "Not Found";

/* The lengths are spelled out so that no response formats a number at run time. */
_Static_assert(sizeof(hello_body) - 1 == 13, "hello_headers' content-length");
_Static_assert(sizeof(json_body) - 1 == 27, "json_headers' content-length");
_Static_assert(sizeof(slow_body) - 1 == 5, "slow_headers' content-length");
_Static_assert(sizeof(not_found_body) - 1 == 9, "not_found_headers' content-length");

static const casgi_header_t hello_headers[] = {
    {LIT("content-type"), LIT("text/plain")},
    {LIT("content-length"), LIT("13")},
};
static const casgi_header_t json_headers[] = {
    {LIT("content-type"), LIT("application/json")},
    {LIT("content-length"), LIT("27")},
};
static const casgi_header_t slow_headers[] = {
    {LIT("content-type"), LIT("text/plain")},
    {LIT("content-length"), LIT("5")},
};
static const casgi_header_t not_found_headers[] = {
    {LIT("content-type"), LIT("text/plain")},
    {LIT("content-length"), LIT("9")},
};
/* No content-length: the body's size is not known up front, so the server frames it chunked. */
static const casgi_header_t stream_headers[] = {
    {LIT("content-type"), LIT("text/plain")},
};
static const casgi_header_t echo_headers[] = {
    {LIT("content-type"), LIT("application/octet-stream")},
};

#define STREAM_CHUNKS 5
#define SLOW_DELAY_MS 100

static int equals(casgi_bytes_t bytes, const char *lit, size_t len)
{
    return bytes.len == len && memcmp(bytes.base, lit, len) == 0;
}

static int send_start(casgi_call_t *call, int status, const casgi_header_t *headers, size_t n)
{
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_START,
                        .start = {.status = status, .headers = headers, .num_headers = n}};

    return casgi_send(call, &ev, NULL, NULL);
}

/*
 * A whole response at once. Neither send needs a callback: the server copies both events before
 * casgi_send() returns, and nothing else is left to do once they are queued.
 */
static int respond(casgi_call_t *call, int status, const casgi_header_t *headers, size_t n,
                   const char *body, size_t len)
{
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY, .body = {.body = {body, len}}};
    int rc;

    rc = send_start(call, status, headers, n);
    if (rc == 0)
        rc = casgi_send(call, &ev, NULL, NULL);
    return rc;
}

/* A client that left is how web requests often end, not a failure of the app. */
static void end(casgi_call_t *call, int rc)
{
    casgi_call_end(call, rc == CASGI_EDISCONNECTED ? 0 : rc);
}

/* ---- GET /stream -------------------------------------------------------------------------- */

typedef struct stream_s {
    int sent;
} stream_t;

static void stream_end(casgi_call_t *call, stream_t *st, int rc)
{
    end(call, rc);
    free(st); /* after casgi_call_end(): a cancelled callback may still have been handed `st` */
}

static void on_stream_sent(casgi_call_t *call, int status, void *data);

/*
 * Sends the next chunk from a stack buffer (the server copies it). The last chunk needs no
 * callback and ends the call; so does a failed send.
 */
static void stream_next(casgi_call_t *call, stream_t *st)
{
    char chunk[32];
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};
    int last = ++st->sent == STREAM_CHUNKS;
    int rc;

    ev.body.body.base = chunk;
    ev.body.body.len = (size_t)snprintf(chunk, sizeof(chunk), "chunk %d\n", st->sent);
    ev.body.more_body = !last;
    rc = casgi_send(call, &ev, last ? NULL : on_stream_sent, st);
    if (rc != 0 || last)
        stream_end(call, st, rc);
}

/* Runs when the server can take more: the next chunk goes out only then (backpressure). */
static void on_stream_sent(casgi_call_t *call, int status, void *data)
{
    if (status == CASGI_ECANCELED)
        return; /* the call is ending; whoever ended it frees `data` */
    if (status != 0)
        stream_end(call, data, status);
    else
        stream_next(call, data);
}

static void stream_start(casgi_call_t *call)
{
    stream_t *st = malloc(sizeof(*st));
    int rc;

    if (st == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    st->sent = 0;
    rc = send_start(call, 200, stream_headers, ARRAY_SIZE(stream_headers));
    if (rc != 0)
        stream_end(call, st, rc);
    else
        stream_next(call, st);
}

/* ---- POST /echo --------------------------------------------------------------------------- */

typedef struct echo_s {
    int started;
} echo_t;

static void echo_end(casgi_call_t *call, echo_t *st, int rc)
{
    end(call, rc);
    free(st);
}

static void on_echo_sent(casgi_call_t *call, int status, void *data);

/*
 * Each piece of the request body goes straight back out, and the next receive waits for that
 * send's callback: a client that uploads faster than it downloads is slowed to the pace it reads.
 */
static void on_echo_request(casgi_call_t *call, int status, const casgi_event_t *event, void *data)
{
    echo_t *st = data;
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};
    int rc = 0;

    if (status == CASGI_ECANCELED)
        return;
    if (status != 0 || event->type != CASGI_EVENT_HTTP_REQUEST) {
        echo_end(call, st, status); /* http.disconnect: the client left mid-upload */
        return;
    }
    if (!st->started) {
        rc = send_start(call, 200, echo_headers, ARRAY_SIZE(echo_headers));
        st->started = 1;
    }
    if (rc == 0 && event->request.more_body && event->request.body.len == 0) {
        /* An empty piece gives nothing to wait for; ask for the next one at once. */
        rc = casgi_receive(call, on_echo_request, st);
        if (rc != 0)
            echo_end(call, st, rc);
        return;
    }
    if (rc == 0) {
        ev.body.body = event->request.body; /* borrowed until we return; casgi_send copies it */
        ev.body.more_body = event->request.more_body;
        rc = casgi_send(call, &ev, ev.body.more_body ? on_echo_sent : NULL, st);
    }
    if (rc != 0 || !ev.body.more_body)
        echo_end(call, st, rc);
}

static void on_echo_sent(casgi_call_t *call, int status, void *data)
{
    int rc = status;

    if (status == CASGI_ECANCELED)
        return;
    if (rc == 0)
        rc = casgi_receive(call, on_echo_request, data);
    if (rc != 0)
        echo_end(call, data, rc);
}

static void echo_start(casgi_call_t *call)
{
    echo_t *st = malloc(sizeof(*st));
    int rc;

    if (st == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    st->started = 0;
    rc = casgi_receive(call, on_echo_request, st);
    if (rc != 0)
        echo_end(call, st, rc);
}

/* ---- GET /slow ---------------------------------------------------------------------------- */

/* The timer is a handle on the server's loop, so it is freed in its close callback, not before. */
typedef struct slow_s {
    uv_timer_t timer;
    casgi_call_t *call;
} slow_t;

static void on_slow_close(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_slow_timer(uv_timer_t *timer)
{
    slow_t *st = timer->data;

    /* A client gone meanwhile makes respond() return CASGI_EDISCONNECTED; end() accepts that. */
    end(st->call, respond(st->call, 200, slow_headers, ARRAY_SIZE(slow_headers), slow_body,
                          sizeof(slow_body) - 1));
    uv_close((uv_handle_t *)timer, on_slow_close);
}

static void slow_start(casgi_call_t *call)
{
    slow_t *st = malloc(sizeof(*st));
    int rc;

    if (st == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    st->call = call;
    rc = uv_timer_init(casgi_call_get_loop(call), &st->timer);
    if (rc != 0) {
        free(st); /* not a handle yet: nothing to close */
        casgi_call_end(call, rc);
        return;
    }
    st->timer.data = st;
    rc = uv_timer_start(&st->timer, on_slow_timer, SLOW_DELAY_MS, 0);
    if (rc != 0) {
        casgi_call_end(call, rc);
        uv_close((uv_handle_t *)&st->timer, on_slow_close);
    }
}

/* ---- entry -------------------------------------------------------------------------------- */

static void hello_entry(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    int get;

    (void)app_data;
    if (scope->type == CASGI_SCOPE_LIFESPAN) {
        lifespan_ack_start(call);
        return;
    }
    if (scope->type != CASGI_SCOPE_HTTP) {
        casgi_call_end(call, 0); /* a WebSocket the app does not accept is refused */
        return;
    }

    /* Routes are relative to the mount point: path carries root_path (ASGI). */
    casgi_bytes_t path = scope->path;
    if (path.len >= scope->root_path.len &&
        memcmp(path.base, scope->root_path.base, scope->root_path.len) == 0) {
        path.base += scope->root_path.len;
        path.len -= scope->root_path.len;
    }
    get = IS(scope->method, "GET") || IS(scope->method, "HEAD");
    if (get && IS(path, "/"))
        end(call, respond(call, 200, hello_headers, ARRAY_SIZE(hello_headers), hello_body,
                          sizeof(hello_body) - 1));
    else if (get && IS(path, "/json"))
        end(call, respond(call, 200, json_headers, ARRAY_SIZE(json_headers), json_body,
                          sizeof(json_body) - 1));
    else if (get && IS(path, "/stream"))
        stream_start(call);
    else if (get && IS(path, "/slow"))
        slow_start(call);
    else if (IS(scope->method, "POST") && IS(path, "/echo"))
        echo_start(call);
    else
        end(call, respond(call, 404, not_found_headers, ARRAY_SIZE(not_found_headers),
                          not_found_body, sizeof(not_found_body) - 1));
}

/* What the runner looks up by default ("hello.so" means "hello.so:app"). */
CASGI_EXTERN casgi_app_t app = {.entry = hello_entry};
