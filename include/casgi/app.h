#ifndef CASGI_APP_H
#define CASGI_APP_H

#include <uv.h>

#include "asgi.h"

/*
 * The handler contract.
 *
 * For every application instance (one HTTP request, one lifespan session) the server calls the
 * app's entry point once with an opaque call, the scope and the app's data. The app then talks to
 * the server only through casgi_receive() and casgi_send() on that call, now or later, from any
 * callback on the same loop (a timer, a database reply). When the app is finished with the call,
 * the moral equivalent of an ASGI coroutine returning, it calls casgi_call_end() exactly once;
 * after that the call pointer is invalid.
 *
 * Callback promise (libuv's): when a function that takes a callback returns an error, the callback
 * never runs. When it returns 0, the callback runs exactly once, and never from inside the function
 * that registered it. casgi_call_end() completes any receive or send still pending with
 * CASGI_ECANCELED before it returns (and casgi_server_shutdown() does so for a pending start).
 *
 * Everything happens on the loop's thread; none of these functions is thread-safe.
 */
typedef struct casgi_call_s casgi_call_t;

/* The entry point. `scope` is owned by the call and valid until casgi_call_end(). */
typedef void (*casgi_app_fn)(casgi_call_t *call, const casgi_scope_t *scope, void *app_data);

typedef struct casgi_app_s {
    casgi_app_fn entry;
    void *data; /* passed back as app_data; the server never touches it */
} casgi_app_t;

/*
 * Completes casgi_receive(). On success `status` is 0 and `event` is the next event (borrowed until
 * the callback returns). Otherwise `status` is negative (CASGI_ECANCELED) and `event` is NULL.
 */
typedef void (*casgi_receive_cb)(casgi_call_t *call, int status, const casgi_event_t *event,
                                 void *data);

/*
 * Completes casgi_send(). `status` is 0 when the event was taken and the server can take more
 * (the backpressure signal: like `await send()` returning), CASGI_EDISCONNECTED when the client
 * left before the event could be written, or another negative code.
 */
typedef void (*casgi_send_cb)(casgi_call_t *call, int status, void *data);

/*
 * Asks for the next event of the call. For http: http.request events carry the body in order; the
 * last has more_body == 0. After that, or when the client is gone, the next receive waits until the
 * client disconnects or the response is complete and then yields http.disconnect (at once when the
 * response is already complete, as in Uvicorn). On HTTP/1.1 with "Expect: 100-continue", the first
 * receive that finds no body yet, before the response started, sends the "100 Continue".
 *
 * Returns 0, CASGI_EBUSY (a receive is already pending) or CASGI_ESTATE (NULL call or callback, or
 * an ended call that is still allocated). After casgi_call_end() the call pointer
 * is invalid: the server may reuse the memory for the connection's next request.
 */
CASGI_EXTERN int casgi_receive(casgi_call_t *call, casgi_receive_cb cb, void *data);

/*
 * Sends one event. The event and all bytes it points to are borrowed only until casgi_send()
 * returns. Misuse is reported here and never reaches the wire: CASGI_ESTATE (body before start, a
 * second start, anything after the response completed), CASGI_EEVENT (a type that does not belong
 * to this scope, or websocket text that is not UTF-8), CASGI_ESTATUS, CASGI_EHEADER (a header
 * that would split the response, or a
 * content-length that is not a decimal number or contradicts another), CASGI_EBUSY (a send
 * callback is still pending and this send has one too; or, for websocket.send, more than the
 * high-water mark plus ws_max_size is already waiting for a client that does not read: wait for
 * the callback of an earlier send, so send with callbacks when the peer may be slow).
 * CASGI_ELENGTH when the body disagrees
 * with the declared Content-Length (more bytes, or a final event leaving it short): the
 * connection is then aborted, because the response can no longer be completed correctly.
 * CASGI_EDISCONNECTED when the client has already left (ASGI's OSError), or when the server itself
 * answered the request (a 413 or a 400 for a bad body). CASGI_ENOMEM.
 *
 * `cb` may be NULL: then nothing is called back, and the app gets no backpressure signal. When not
 * NULL it runs once the server's buffer for this call is below its high-water mark again.
 */
CASGI_EXTERN int casgi_send(casgi_call_t *call, const casgi_event_t *event, casgi_send_cb cb,
                            void *data);

/*
 * Ends the application instance. `error` is 0 when the app returned normally, or any negative code
 * when it failed (an exception, in ASGI terms). The server then applies Uvicorn's policy in one
 * place: an http call whose response has not started gets a 500; one whose response started but
 * did not complete is aborted (the connection is closed, so the client never takes a truncated body
 * for a complete one). Pending receive/send callbacks complete with CASGI_ECANCELED before this
 * returns. Returns 0 (CASGI_ESTATE for NULL). The call pointer is invalid afterwards; a second end
 * is undefined (it may hit the connection's next call), though a still-allocated ended call answers
 * CASGI_ESTATE.
 */
CASGI_EXTERN int casgi_call_end(casgi_call_t *call, int error);

/* A per-call pointer for the app; NULL until set. */
CASGI_EXTERN void *casgi_call_get_data(const casgi_call_t *call);
CASGI_EXTERN void casgi_call_set_data(casgi_call_t *call, void *data);

/* The loop the server runs on, so the app can start its own handles (timers, requests). */
CASGI_EXTERN uv_loop_t *casgi_call_get_loop(const casgi_call_t *call);

/*
 * Sets the server's shared state pointer, which every later scope carries in `state` (ASGI's
 * lifespan state). Meant for the lifespan call during startup; the pointer is the app's to own.
 */
CASGI_EXTERN void casgi_call_set_state(casgi_call_t *call, void *state);

#endif
