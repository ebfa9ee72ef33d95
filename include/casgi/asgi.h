#ifndef CASGI_ASGI_H
#define CASGI_ASGI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "version.h"

/*
 * The ASGI vocabulary as plain C data. Nothing here has a lifetime of its own: every pointer is
 * either borrowed (valid until the callback that received it returns) or owned by the call (valid
 * until casgi_call_end()), as each field says.
 */

/* A byte string that is not NUL-terminated. `base` may be NULL when `len` is 0. */
typedef struct casgi_bytes_s {
    const char *base;
    size_t len;
} casgi_bytes_t;

/* Builds a casgi_bytes_t from a string literal or array: CASGI_BYTES("text/plain"). */
#define CASGI_BYTES(lit) ((casgi_bytes_t){(lit), sizeof(lit) - 1})
/* Builds a casgi_bytes_t from a NUL-terminated string. */
#define CASGI_STR(s) ((casgi_bytes_t){(s), strlen(s)})

/*
 * One header. In a scope, names are lower-cased and values are the raw bytes the client sent
 * (optional whitespace trimmed); order and duplicates are kept. In a response, names may use any
 * case (they are sent as given) and must be tokens; values must not contain CR, LF or NUL.
 */
typedef struct casgi_header_s {
    casgi_bytes_t name;
    casgi_bytes_t value;
} casgi_header_t;

typedef enum {
    CASGI_SCOPE_HTTP = 1,
    CASGI_SCOPE_WEBSOCKET,
    CASGI_SCOPE_LIFESPAN,
} casgi_scope_type_t;

/*
 * An endpoint of a connection. TCP: `host` is the numeric address ("127.0.0.1", "::1") and `port`
 * the port. Unix socket: `host` is the socket path and `port` is -1 (ASGI's [path, None]). When the
 * address is unknown (the client of a Unix socket), `host` is NULL (ASGI's None).
 */
typedef struct casgi_addr_s {
    const char *host;
    int port;
} casgi_addr_t;

/* Extensions the server supports, as bits of casgi_scope_t.extensions. */
enum {
    /* ASGI "http.response.trailers": the app may set `trailers` in http.response.start and then
     * send http.response.trailers. Over HTTP/1.1 they go out as chunked trailers. */
    CASGI_EXT_HTTP_RESPONSE_TRAILERS = 1u << 0,
    /* ASGI "websocket.http.response": before accepting, the app may answer the handshake with
     * any HTTP response (websocket.http.response.start / .body) instead of a plain 403. */
    CASGI_EXT_WEBSOCKET_HTTP_RESPONSE = 1u << 1,
    /* ASGI "http.response.early_hint": before http.response.start the app may send
     * http.response.early_hint with Link values; they go out as a 103 Early Hints response. */
    CASGI_EXT_HTTP_RESPONSE_EARLY_HINT = 1u << 2,
    /* ASGI "http.response.push": over HTTP/2, when the client allows server push, the app may send
     * http.response.push (path + headers) before its response completes; the server sends a
     * PUSH_PROMISE and runs the pushed request as a new http call, as if the client had sent it. */
    CASGI_EXT_HTTP_RESPONSE_PUSH = 1u << 3,
};

/*
 * The connection scope (ASGI spec 2.5). Every pointer, and every byte it points to, is owned by
 * the call and stays valid until casgi_call_end(); the app must not modify it.
 */
typedef struct casgi_scope_s {
    casgi_scope_type_t type;
    const char *asgi_version; /* "3.0" */
    const char *spec_version; /* "2.5" (http), "2.0" (lifespan) */

    /* http and websocket scopes only; zero/NULL in a lifespan scope */
    const char *http_version;   /* "1.0", "1.1" or "2" */
    casgi_bytes_t method;       /* upper-case, e.g. "GET" */
    const char *scheme;         /* "http" or "ws" ("https", "wss" with TLS later) */
    casgi_bytes_t path;         /* root_path + the percent-decoded request path (Uvicorn >= 0.26) */
    casgi_bytes_t raw_path;     /* root_path + the path exactly as sent, without the query */
    casgi_bytes_t query_string; /* without the "?", not decoded */
    casgi_bytes_t root_path;    /* from casgi_config_t.root_path; empty by default */
    const casgi_header_t *headers;
    size_t num_headers;
    casgi_addr_t client;
    casgi_addr_t server;

    /* websocket scopes only: the offered Sec-WebSocket-Protocol values, in order */
    const casgi_bytes_t *subprotocols;
    size_t num_subprotocols;

    /* all scopes */
    void *state;         /* the server's shared state pointer (see casgi_call_set_state) */
    unsigned extensions; /* CASGI_EXT_* bits */
} casgi_scope_t;

typedef enum {
    /* receive, http */
    CASGI_EVENT_HTTP_REQUEST = 1,
    CASGI_EVENT_HTTP_DISCONNECT,
    /* send, http */
    CASGI_EVENT_HTTP_RESPONSE_START,
    CASGI_EVENT_HTTP_RESPONSE_BODY,
    CASGI_EVENT_HTTP_RESPONSE_TRAILERS,
    /* receive, lifespan */
    CASGI_EVENT_LIFESPAN_STARTUP,
    CASGI_EVENT_LIFESPAN_SHUTDOWN,
    /* send, lifespan */
    CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE,
    CASGI_EVENT_LIFESPAN_STARTUP_FAILED,
    CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE,
    CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED,
    /* receive, websocket */
    CASGI_EVENT_WEBSOCKET_CONNECT,
    CASGI_EVENT_WEBSOCKET_RECEIVE,    /* .message */
    CASGI_EVENT_WEBSOCKET_DISCONNECT, /* .close: the client's code and reason, 1006 if dropped */
    /* send, websocket */
    CASGI_EVENT_WEBSOCKET_ACCEPT,              /* .accept */
    CASGI_EVENT_WEBSOCKET_SEND,                /* .message */
    CASGI_EVENT_WEBSOCKET_CLOSE,               /* .close; before accept: a 403 */
    CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START, /* .start, before accept (denial response) */
    CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_BODY,  /* .body */
    /* send, http, extensions (see CASGI_EXT_*) */
    CASGI_EVENT_HTTP_RESPONSE_EARLY_HINT, /* .early_hint, before http.response.start */
    CASGI_EVENT_HTTP_RESPONSE_PUSH,       /* .push, after start and before the body completes */
} casgi_event_type_t;

/*
 * One ASGI message. Fill only the member that matches `type`; zero-initialise the rest
 * (`casgi_event_t ev = {.type = ...}`), so that fields added later take their ASGI default.
 *
 * Events delivered to a receive callback are borrowed until that callback returns: copy the body
 * if you need it later. Events passed to casgi_send() are borrowed until casgi_send() returns: the
 * server copies the bytes into the connection's output buffer (written once per loop turn), so the
 * app may free or reuse its buffers as soon as casgi_send() returns.
 */
typedef struct casgi_event_s {
    casgi_event_type_t type;
    union {
        /* http.request (receive) */
        struct {
            casgi_bytes_t body;
            int more_body;
        } request;
        /* http.response.start (send) */
        struct {
            int status; /* 200..999: informational responses are not final */
            const casgi_header_t *headers;
            size_t num_headers;
            int trailers; /* 1: trailers will follow (requires CASGI_EXT_HTTP_RESPONSE_TRAILERS) */
        } start;
        /* http.response.body (send) */
        struct {
            casgi_bytes_t body;
            int more_body;
        } body;
        /* http.response.trailers (send) */
        struct {
            const casgi_header_t *headers;
            size_t num_headers;
            int more_trailers;
        } trailers;
        /* http.response.early_hint (send): each value becomes one "link" header of the 103 */
        struct {
            const casgi_bytes_t *links;
            size_t num_links;
        } early_hint;
        /* http.response.push (send): a GET of `path` (absolute path, may carry a query) with
         * the request headers the pushed request should have (no pseudo-headers) */
        struct {
            casgi_bytes_t path;
            const casgi_header_t *headers;
            size_t num_headers;
        } push;
        /* lifespan.startup.failed, lifespan.shutdown.failed (send) */
        struct {
            casgi_bytes_t message;
        } failed;
        /* websocket.receive, websocket.send: ASGI's "text" (is_text = 1, UTF-8) or "bytes" */
        struct {
            int is_text;
            casgi_bytes_t data;
        } message;
        /* websocket.accept (send) */
        struct {
            casgi_bytes_t subprotocol;     /* one of scope->subprotocols, or empty for none */
            const casgi_header_t *headers; /* extra response headers */
            size_t num_headers;
        } accept;
        /* websocket.close (send), websocket.disconnect (receive) */
        struct {
            int code;             /* 0 in a send means 1000 */
            casgi_bytes_t reason; /* UTF-8, at most 123 bytes */
        } close;
    };
} casgi_event_t;

/* "http.request", "http.response.start", ... for a type; "?" for anything else. */
CASGI_EXTERN const char *casgi_event_type_name(casgi_event_type_t type);

#endif
