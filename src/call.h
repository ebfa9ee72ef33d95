#ifndef CASGI_CALL_H
#define CASGI_CALL_H

#include "buf.h"
#include "server.h"

/*
 * One application instance (Uvicorn's RequestResponseCycle): the scope, the pending receive and
 * send callbacks, and the ASGI ordering rules. It does not know which protocol carries it; the
 * protocol supplies these operations.
 */
typedef struct casgi__call_ops_s {
    /* Puts an event on the wire; it already passed the ordering checks. 0 or a code. */
    int (*send)(casgi_call_t *call, const casgi_event_t *event);
    /* A receive or a send callback became pending: deliver or complete it later. */
    void (*wake)(casgi_call_t *call);
    /* The app failed mid-response: cut the response short so it cannot look complete. */
    void (*abort)(casgi_call_t *call);
    /* The app ended the call; the protocol releases it after this returns. */
    void (*end)(casgi_call_t *call, int error);
} casgi__call_ops_t;

typedef enum {
    CASGI__RESPONSE_NONE = 0,
    CASGI__RESPONSE_STARTED,
    CASGI__RESPONSE_TRAILERS, /* body done, trailers announced and pending */
    CASGI__RESPONSE_COMPLETE,
} casgi__response_t;

struct casgi_call_s {
    const casgi__call_ops_t *ops;
    casgi_server_t *server;
    casgi_scope_t scope;
    void *user_data;

    casgi__response_t response;
    int trailers_announced;
    int status; /* of the response, for the access log */
    unsigned ended : 1;
    unsigned disconnected : 1;

    casgi_receive_cb recv_cb;
    void *recv_data;
    casgi_send_cb send_cb;
    void *send_data;
};

/* Resets a call for a new application instance. */
void casgi__call_init(casgi_call_t *call, const casgi__call_ops_t *ops, casgi_server_t *server);
/* Hands the call to the app's entry point. */
void casgi__call_start(casgi_call_t *call);
/* Completes the pending receive with `event`. */
void casgi__call_deliver(casgi_call_t *call, const casgi_event_t *event);
/*
 * Completes a pending http receive from what the protocol holds, by ASGI's rules: http.disconnect
 * once the client is `gone`, the call disconnected or the response complete; else the buffered
 * request `body` (the callback borrows it; the caller empties it afterwards), with more_body
 * until the request is `complete`; else nothing, when no byte is waiting and the request is not
 * over, or `final_delivered` (the last http.request already went).
 */
typedef enum {
    CASGI__DELIVERED_NOTHING = 0,
    CASGI__DELIVERED_BODY,
    CASGI__DELIVERED_DISCONNECT,
} casgi__delivered_t;
casgi__delivered_t casgi__call_deliver_http(casgi_call_t *call, int gone, const casgi__buf_t *body,
                                            int complete, int final_delivered);
/*
 * Access-log lines in Uvicorn's format, at INFO; nothing when the access log is off. HTTP:
 * '127.0.0.1:5000 - "GET /p?q HTTP/1.1" 200 0.123ms', `target` as the client sent it and
 * `start` the uv_hrtime() of its first byte. WebSocket: '127.0.0.1:5000 - "WebSocket /p"
 * [accepted]'.
 */
void casgi__call_log_request(const casgi_call_t *call, casgi_bytes_t target, uint64_t start);
void casgi__call_log_websocket(const casgi_call_t *call, const char *outcome);
/* Completes the pending send callback, if any, with `status`. */
void casgi__call_send_done(casgi_call_t *call, int status);
/* Completes whatever is pending with CASGI_ECANCELED. */
void casgi__call_cancel(casgi_call_t *call);

#endif
