#ifndef CASGI_SERVER_H
#define CASGI_SERVER_H

#include <uv.h>

#include "app.h"
#include "config.h"

/*
 * The server: an opaque object living on a loop the caller owns. It registers no signal handlers,
 * keeps no globals, and after casgi_server_shutdown() completes it has no handle left on the loop.
 * As with any libuv server, the process should ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)): libuv
 * writes with write(2), and a write to a peer that reset would otherwise kill the process.
 *
 * Life cycle:
 *   casgi_server_new()          allocate, copy the config
 *   casgi_server_listen_*()     bind and listen (connections wait in the backlog)
 *   casgi_server_start()        lifespan startup, then accept connections
 *   casgi_server_shutdown()     graceful stop; the callback runs after every handle is closed
 *   casgi_server_free()         release the memory
 */

/* Start-up result. `message` is the app's lifespan.startup.failed message or NULL (borrowed). */
typedef void (*casgi_start_cb)(casgi_server_t *server, int status, const char *message, void *data);
/* Shutdown result: 0, or CASGI_ESHUTDOWN with the app's lifespan.shutdown.failed message. */
typedef void (*casgi_shutdown_cb)(casgi_server_t *server, int status, const char *message,
                                  void *data);

/*
 * Creates a server on `loop` serving `app`. The config and the app struct are validated and
 * copied (app->data is kept as a pointer). Returns 0 and sets
 * *out, or CASGI_ECONFIG / CASGI_ENOMEM (leaving *out untouched).
 */
CASGI_EXTERN int casgi_server_new(uv_loop_t *loop, const casgi_config_t *cfg,
                                  const casgi_app_t *app, casgi_server_t **out);

/*
 * Binds and listens on TCP. `host` is a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "::");
 * port 0 picks a free port (read it back with casgi_server_get_port()). Returns 0, CASGI_ESTATE
 * (after shutdown started), CASGI_ENOMEM or a libuv code (UV_EADDRINUSE, UV_EINVAL, ...).
 */
CASGI_EXTERN int casgi_server_listen_tcp(casgi_server_t *server, const char *host, int port);
/*
 * Binds and listens on a Unix domain socket path; a stale socket file there is replaced, and the
 * file is removed at shutdown. Returns 0, CASGI_ESTATE, CASGI_ENOMEM or a libuv code.
 */
CASGI_EXTERN int casgi_server_listen_unix(casgi_server_t *server, const char *path);
/*
 * Listens on an inherited, already bound socket (TCP or Unix). On success the server owns the fd
 * and closes it at shutdown. On failure it stays the caller's, except when listen(2) itself
 * failed after the handle adopted it (then it is closed). Returns 0,
 * CASGI_ESTATE, CASGI_ENOMEM or a libuv code.
 */
CASGI_EXTERN int casgi_server_listen_fd(casgi_server_t *server, int fd);

/* The port of the index-th TCP listener (in listen order), or a negative code (UV_EINVAL). */
CASGI_EXTERN int casgi_server_get_port(const casgi_server_t *server, unsigned index);

/*
 * Runs lifespan startup (per cfg.lifespan) and then starts accepting on every listener. `cb` runs
 * once, later: status 0, or CASGI_ESTARTUP with the app's message (nothing is accepted then; shut
 * down and free), or CASGI_ECANCELED when casgi_server_shutdown() came first. Returns 0,
 * CASGI_ESTATE (already started) or CASGI_ENOMEM.
 */
CASGI_EXTERN int casgi_server_start(casgi_server_t *server, casgi_start_cb cb, void *data);

/*
 * If casgi_server_start() has not reported yet, its callback runs first, inside this call, with
 * CASGI_ECANCELED.
 * Graceful shutdown: stop accepting, close idle connections at once, let in-flight requests finish
 * (up to cfg.timeout_graceful_shutdown, then close them), run lifespan shutdown, close every
 * handle. `cb` runs once, later, after the last handle closed. Returns 0 or CASGI_ESTATE (a
 * shutdown is already under way; use casgi_server_shutdown_force() to cut it short).
 */
CASGI_EXTERN int casgi_server_shutdown(casgi_server_t *server, casgi_shutdown_cb cb, void *data);

/*
 * Cuts a graceful shutdown short. While connections drain: closes every connection now and stops
 * waiting for the app: calls it still holds see http.disconnect and become orphans, which keep
 * the server's memory (not its handles) until they end (see casgi_server_free()). During
 * lifespan shutdown: stops waiting for the app and closes the server's handles. Returns 0 or
 * CASGI_ESTATE (no shutdown under way).
 */
CASGI_EXTERN int casgi_server_shutdown_force(casgi_server_t *server);

/*
 * Frees the server. Call it only after the shutdown callback ran: casgi_server_shutdown() works in
 * every state (also after a failed listen or a failed start) and is what closes the handles. When
 * a forced shutdown left calls the app still holds, the memory is released when the last of them
 * ends; their pending callbacks then only complete through casgi_call_end() (CASGI_ECANCELED).
 */
CASGI_EXTERN void casgi_server_free(casgi_server_t *server);

/* A snapshot of counters. */
typedef struct casgi_server_stats_s {
    uint64_t connections_total;
    uint64_t connections_open;
    uint64_t requests_total;
    uint64_t calls_active;
} casgi_server_stats_t;
CASGI_EXTERN void casgi_server_stats(const casgi_server_t *server, casgi_server_stats_t *out);

#endif
