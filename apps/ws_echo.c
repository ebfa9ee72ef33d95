/*
 * ws_echo.so: the WebSocket echo app, loaded by the runner (`casgi ws_echo.so`), and what
 * WebSocket conformance suites (Autobahn's fuzzingclient) and the WebSocket benchmarks drive.
 *
 *   websocket, any path  accepted without a subprotocol; every message comes back exactly as it
 *                        came (text as text, bytes as bytes, any size the server lets through),
 *                        in order, until the client leaves
 *   http, any path       404
 *
 * One message at a time: the next receive is asked for only when the send of the previous echo
 * has called back, i.e. once the server's output buffer is below its high-water mark. A client
 * that sends faster than it reads is therefore slowed to the pace it reads (reading pauses once
 * --ws-max-queue messages wait), and the app itself holds no message: the server copies the
 * bytes before casgi_send() returns. Like hello.so, the module links neither casgi nor libuv.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides */

#include <stddef.h>

#include <casgi.h>

#include "lifespan_ack.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A casgi_bytes_t initialiser for static data, where CASGI_BYTES's compound literal is not one. */
#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static const char not_found_body[] = "Not Found";
_Static_assert(sizeof(not_found_body) - 1 == 9, "not_found_headers' content-length");
static const casgi_header_t not_found_headers[] = {
    {LIT("content-type"), LIT("text/plain")},
    {LIT("content-length"), LIT("9")},
};

/*
 * The client leaving, or the server closing the socket for a protocol error, is how an echo
 * session ends; neither is a failure of the app.
 */
static void end(casgi_call_t *call, int rc)
{
    casgi_call_end(call, rc == CASGI_EDISCONNECTED ? 0 : rc);
}

/* ---- websocket ---------------------------------------------------------------------------- */

static void on_message(casgi_call_t *call, int status, const casgi_event_t *event, void *data);

/* The echo was taken and the server can take more: only now ask for the next message. */
static void on_echo_sent(casgi_call_t *call, int status, void *data)
{
    int rc = status;

    if (status == CASGI_ECANCELED)
        return; /* the call is ending; nothing of ours to free */
    if (rc == 0)
        rc = casgi_receive(call, on_message, NULL);
    if (rc != 0)
        end(call, rc);
}

/*
 * websocket.receive goes straight back as websocket.send with the same kind and bytes (borrowed
 * until this callback returns; casgi_send() copies them). websocket.disconnect ends the call.
 */
static void on_message(casgi_call_t *call, int status, const casgi_event_t *event, void *data)
{
    casgi_event_t echo = {.type = CASGI_EVENT_WEBSOCKET_SEND};
    int rc = status;

    (void)data;
    if (status == CASGI_ECANCELED)
        return;
    if (rc == 0 && event->type == CASGI_EVENT_WEBSOCKET_RECEIVE) {
        echo.message = event->message;
        rc = casgi_send(call, &echo, on_echo_sent, NULL);
        if (rc != 0)
            end(call, rc);
        return;
    }
    end(call, rc); /* websocket.disconnect (0), or a failed receive */
}

/* The first event is websocket.connect: accept it, then start the echo loop. */
static void on_connect(casgi_call_t *call, int status, const casgi_event_t *event, void *data)
{
    casgi_event_t accept = {.type = CASGI_EVENT_WEBSOCKET_ACCEPT};
    int rc = status;

    (void)data;
    if (status == CASGI_ECANCELED)
        return;
    if (rc == 0 && event->type != CASGI_EVENT_WEBSOCKET_CONNECT) {
        end(call, 0); /* websocket.disconnect: the client left during the handshake */
        return;
    }
    if (rc == 0)
        rc = casgi_send(call, &accept, NULL, NULL);
    if (rc == 0)
        rc = casgi_receive(call, on_message, NULL);
    if (rc != 0)
        end(call, rc);
}

/* ---- entry -------------------------------------------------------------------------------- */

static void ws_echo_entry(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    casgi_event_t start = {.type = CASGI_EVENT_HTTP_RESPONSE_START,
                           .start = {.status = 404,
                                     .headers = not_found_headers,
                                     .num_headers = ARRAY_SIZE(not_found_headers)}};
    casgi_event_t body = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY,
                          .body = {.body = LIT(not_found_body)}};
    int rc;

    (void)app_data;
    switch (scope->type) {
    case CASGI_SCOPE_WEBSOCKET:
        rc = casgi_receive(call, on_connect, NULL);
        if (rc != 0)
            end(call, rc);
        break;
    case CASGI_SCOPE_LIFESPAN:
        lifespan_ack_start(call);
        break;
    default:
        rc = casgi_send(call, &start, NULL, NULL);
        if (rc == 0)
            rc = casgi_send(call, &body, NULL, NULL);
        end(call, rc);
        break;
    }
}

/* What the runner looks up by default ("ws_echo.so" means "ws_echo.so:app"). */
CASGI_EXTERN casgi_app_t app = {.entry = ws_echo_entry};
