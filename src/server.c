/*
 * The server: listeners, the live connections, the task queue that keeps the callback promise,
 * lifespan, and the graceful-shutdown state machine (Uvicorn's Server and ServerState).
 */
#include <stdlib.h>

#include "conn.h"
#include "lifespan.h"
#include "listener.h"
#include "server.h"

void casgi__server_handle_closed(casgi_server_t *server);

/*
 * Under the sanitizers the pools keep nothing: a block given back is freed at once and a take is
 * a malloc, so a use after free of a pooled object (a connection, a request state, a stream, a
 * buffer) is AddressSanitizer's to see instead of being hidden by the next user of the block.
 */
#ifdef CASGI_SANITIZED
#define POOL_KEEP(n) 0
#else
#define POOL_KEEP(n) (n)
#endif

/* ---- the task queue --------------------------------------------------------------------- */

void casgi__server_defer(casgi_server_t *server, casgi__task_t *task)
{
    if (task->queued || task->running)
        return;
    task->queued = 1;
    /* Queued work keeps the loop alive until it ran: the callback promise must hold even when
     * nothing else is on the loop (a start with no listener yet, lifespan shutdown after the last
     * connection closed). */
    if (casgi__list_empty(&server->tasks) && server->phase < CASGI__SERVER_CLOSING)
        uv_ref((uv_handle_t *)&server->prepare);
    casgi__list_insert_tail(&server->tasks, &task->node);
}

void casgi__server_cancel(casgi_server_t *server, casgi__task_t *task)
{
    (void)server;
    if (!task->queued)
        return;
    task->queued = 0;
    casgi__list_remove(&task->node);
}

/*
 * Runs deferred work until none is left, then writes each connection's output once. Hooked to both
 * prepare (work queued by timers and close callbacks, before the loop sleeps) and check (work
 * queued by reads in this turn).
 */
static void run_pending(casgi_server_t *server)
{
    do {
        while (!casgi__list_empty(&server->tasks)) {
            casgi__list_t *node = server->tasks.next;
            casgi__task_t *task = container_of(node, casgi__task_t, node);
            casgi__list_remove(node);
            task->queued = 0;
            task->run(task);
        }
        while (!casgi__list_empty(&server->flushes)) {
            casgi__list_t *node = server->flushes.next;
            casgi__conn_t *conn = container_of(node, casgi__conn_t, flush_node);
            casgi__list_remove(node);
            conn->flush_queued = 0;
            casgi__conn_flush(conn);
        }
    } while (!casgi__list_empty(&server->tasks));
    uv_unref((uv_handle_t *)&server->prepare);
}

static void on_prepare(uv_prepare_t *handle)
{
    run_pending(handle->data);
}
static void on_check(uv_check_t *handle)
{
    run_pending(handle->data);
}

/* ---- creation ----------------------------------------------------------------------------- */

static int copy_config(casgi_server_t *server, const casgi_config_t *cfg)
{
    server->cfg = *cfg;
    server->root_path = strdup(cfg->root_path ? cfg->root_path : "");
    if (server->root_path == NULL)
        return CASGI_ENOMEM;
    server->cfg.root_path = server->root_path;
    if (cfg->num_headers == 0) {
        server->cfg.headers = NULL;
        return 0;
    }
    /* One block: the array first, then every name and value. */
    size_t size = cfg->num_headers * sizeof(casgi_header_t);
    for (size_t i = 0; i < cfg->num_headers; i++)
        size += cfg->headers[i].name.len + cfg->headers[i].value.len;
    casgi_header_t *headers = malloc(size);
    if (headers == NULL)
        return CASGI_ENOMEM;
    char *p = (char *)(headers + cfg->num_headers);
    for (size_t i = 0; i < cfg->num_headers; i++) {
        const casgi_header_t *src = &cfg->headers[i];
        memcpy(p, src->name.base, src->name.len);
        headers[i].name = (casgi_bytes_t){p, src->name.len};
        p += src->name.len;
        memcpy(p, src->value.base, src->value.len);
        headers[i].value = (casgi_bytes_t){p, src->value.len};
        p += src->value.len;
    }
    server->default_headers = headers;
    server->cfg.headers = headers;
    return 0;
}

static void on_limit_task(casgi__task_t *task);

static void on_start_task(casgi__task_t *task)
{
    casgi_server_t *server = container_of(task, casgi_server_t, start_task);
    casgi__server_startup_done(server, 0, NULL);
}

int casgi_server_new(uv_loop_t *loop, const casgi_config_t *cfg, const casgi_app_t *app,
                     casgi_server_t **out)
{
    if (loop == NULL || app == NULL || app->entry == NULL || out == NULL ||
        casgi_config_validate(cfg, NULL) != 0)
        return CASGI_ECONFIG;
    casgi_server_t *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return CASGI_ENOMEM;
    if (copy_config(server, cfg) != 0) {
        free(server->root_path);
        free(server);
        return CASGI_ENOMEM;
    }
    server->loop = loop;
    server->app = *app;
    server->pool.max = POOL_KEEP(256); /* up to 4 MiB kept for reuse; the rest back to malloc */
    server->http1_states.max = POOL_KEEP(1024);
    server->h2_streams.max = POOL_KEEP(1024);
    server->conn_states.max = POOL_KEEP(1024);
    casgi__slab_init(&server->slab, POOL_KEEP(256));
    server->state = cfg->state;
    server->log.level = cfg->log_level;
    server->log.fn = cfg->log_fn ? cfg->log_fn : casgi__log_stderr;
    server->log.data = cfg->log_fn ? cfg->log_data : NULL;
    casgi__list_init(&server->listeners);
    casgi__list_init(&server->conns);
    casgi__list_init(&server->tasks);
    casgi__list_init(&server->flushes);
    casgi__list_init(&server->start_task.node);
    server->start_task.run = on_start_task;
    casgi__list_init(&server->limit_task.node);
    server->limit_task.run = on_limit_task;

    uv_prepare_init(loop, &server->prepare);
    uv_check_init(loop, &server->check);
    uv_timer_init(loop, &server->timer);
    uv_timer_init(loop, &server->deadline_timer);
    server->prepare.data = server->check.data = server->timer.data = server;
    server->deadline_timer.data = server;
    uv_prepare_start(&server->prepare, on_prepare);
    uv_check_start(&server->check, on_check);
    /* The queue alone must not keep the embedder's loop alive; sockets and timers do that. */
    uv_unref((uv_handle_t *)&server->prepare);
    uv_unref((uv_handle_t *)&server->check);
    uv_unref((uv_handle_t *)&server->timer);
    uv_unref((uv_handle_t *)&server->deadline_timer); /* the connections keep the loop alive */
    server->handles_open = 4;
    *out = server;
    return 0;
}

/* ---- listening ---------------------------------------------------------------------------- */

int casgi_server_listen_tcp(casgi_server_t *server, const char *host, int port)
{
    if (server->phase >= CASGI__SERVER_STOPPING)
        return CASGI_ESTATE;
    return casgi__listener_new_tcp(server, host, port);
}

int casgi_server_listen_unix(casgi_server_t *server, const char *path)
{
    if (server->phase >= CASGI__SERVER_STOPPING)
        return CASGI_ESTATE;
    return casgi__listener_new_unix(server, path);
}

int casgi_server_listen_fd(casgi_server_t *server, int fd)
{
    if (server->phase >= CASGI__SERVER_STOPPING)
        return CASGI_ESTATE;
    return casgi__listener_new_fd(server, fd);
}

int casgi_server_get_port(const casgi_server_t *server, unsigned index)
{
    for (casgi__list_t *n = server->listeners.next; n != &server->listeners; n = n->next) {
        const casgi__listener_t *l = container_of(n, casgi__listener_t, node);
        if (l->is_pipe || l->closing)
            continue;
        if (index-- == 0)
            return l->port;
    }
    return UV_EINVAL;
}

/* ---- start-up ----------------------------------------------------------------------------- */

int casgi_server_start(casgi_server_t *server, casgi_start_cb cb, void *data)
{
    if (server->phase != CASGI__SERVER_NEW)
        return CASGI_ESTATE;
    server->phase = CASGI__SERVER_STARTING;
    server->start_cb = cb;
    server->start_data = data;
    if (server->cfg.lifespan == CASGI_LIFESPAN_OFF) {
        casgi__server_defer(server, &server->start_task);
        return 0;
    }
    CASGI_LOG(&server->log, CASGI_LOG_INFO, "Waiting for application startup.");
    int err = casgi__lifespan_new(server, &server->lifespan);
    if (err) {
        server->phase = CASGI__SERVER_NEW;
        return err;
    }
    return 0;
}

void casgi__server_startup_done(casgi_server_t *server, int status, const char *message)
{
    if (server->phase != CASGI__SERVER_STARTING)
        return; /* shut down meanwhile; casgi_server_shutdown() reported the start */
    if (status == 0) {
        server->phase = CASGI__SERVER_RUNNING;
        if (server->cfg.lifespan != CASGI_LIFESPAN_OFF)
            CASGI_LOG(&server->log, CASGI_LOG_INFO, "Application startup complete.");
        for (casgi__list_t *n = server->listeners.next; n != &server->listeners;) {
            casgi__listener_t *l = container_of(n, casgi__listener_t, node);
            n = n->next;
            casgi__listener_start(l);
        }
    } else {
        CASGI_LOG(&server->log, CASGI_LOG_ERROR, "%s", message ? message : "startup failed");
        CASGI_LOG(&server->log, CASGI_LOG_ERROR, "Application startup failed. Exiting.");
    }
    casgi_start_cb cb = server->start_cb;
    server->start_cb = NULL;
    if (cb)
        cb(server, status, message, server->start_data);
}

/* ---- bookkeeping -------------------------------------------------------------------------- */

static void check_drained(casgi_server_t *server);

void casgi__server_conn_opened(casgi_server_t *server, casgi__conn_t *conn)
{
    casgi__list_insert_tail(&server->conns, &conn->node);
    server->num_conns++;
    server->stats.connections_total++;
}

void casgi__server_conn_closed(casgi_server_t *server, casgi__conn_t *conn)
{
    (void)conn;
    server->num_conns--;
    check_drained(server);
}

void casgi__server_call_started(casgi_server_t *server)
{
    server->num_calls++;
}

static void server_release(casgi_server_t *server);

void casgi__server_call_ended(casgi_server_t *server)
{
    server->num_calls--;
    if (server->orphaned) {
        if (server->num_calls == 0)
            server_release(server);
        return;
    }
    check_drained(server);
}

void casgi__server_request_done(casgi_server_t *server)
{
    server->stats.requests_total++;
    if (server->cfg.limit_max_requests && !server->limit_reported &&
        server->stats.requests_total >= server->cfg.limit_max_requests) {
        server->limit_reported = 1;
        /* Reported from the queue: the embedder will likely shut down, which must not happen
         * inside the send that completed this response. */
        casgi__server_defer(server, &server->limit_task);
    }
}

static void on_limit_task(casgi__task_t *task)
{
    casgi_server_t *server = container_of(task, casgi_server_t, limit_task);
    CASGI_LOG(&server->log, CASGI_LOG_WARNING, "Maximum request limit of %llu exceeded.",
              (unsigned long long)server->cfg.limit_max_requests);
    if (server->cfg.limit_cb)
        server->cfg.limit_cb(server, server->cfg.limit_data);
}

int casgi__server_over_limit(const casgi_server_t *server)
{
    uint64_t limit = server->cfg.limit_concurrency;
    return limit && (server->num_conns > limit || server->num_calls >= limit);
}

void casgi_server_stats(const casgi_server_t *server, casgi_server_stats_t *out)
{
    *out = server->stats;
    out->connections_open = server->num_conns;
    out->calls_active = server->num_calls;
}

/* ---- shutdown ----------------------------------------------------------------------------- */

static void close_all_conns(casgi_server_t *server)
{
    for (casgi__list_t *n = server->conns.next; n != &server->conns; n = n->next)
        casgi__conn_close(container_of(n, casgi__conn_t, node));
}

static void on_server_handle_closed(uv_handle_t *handle)
{
    casgi__server_handle_closed(handle->data);
}

void casgi__server_handle_closed(casgi_server_t *server)
{
    if (--server->handles_open > 0 || server->phase != CASGI__SERVER_CLOSING)
        return;
    server->phase = CASGI__SERVER_CLOSED;
    casgi_shutdown_cb cb = server->shutdown_cb;
    server->shutdown_cb = NULL;
    if (cb)
        cb(server, server->shutdown_status, server->shutdown_message, server->shutdown_data);
}

static void close_handles(casgi_server_t *server)
{
    server->phase = CASGI__SERVER_CLOSING;
    uv_timer_stop(&server->timer);
    uv_close((uv_handle_t *)&server->prepare, on_server_handle_closed);
    uv_close((uv_handle_t *)&server->check, on_server_handle_closed);
    uv_close((uv_handle_t *)&server->timer, on_server_handle_closed);
    uv_close((uv_handle_t *)&server->deadline_timer, on_server_handle_closed);
}

static void check_drained(casgi_server_t *server)
{
    if (server->phase != CASGI__SERVER_STOPPING || server->num_conns > 0 ||
        (server->num_calls > 0 && !server->forced))
        return;
    uv_timer_stop(&server->timer);
    server->phase = CASGI__SERVER_LIFESPAN_SHUTDOWN;
    if (server->lifespan != NULL && casgi__lifespan_wants_shutdown(server->lifespan)) {
        CASGI_LOG(&server->log, CASGI_LOG_INFO, "Waiting for application shutdown.");
        casgi__lifespan_shutdown(server->lifespan);
    } else {
        close_handles(server);
    }
}

void casgi__server_lifespan_shutdown_done(casgi_server_t *server, int status, const char *message)
{
    if (server->phase != CASGI__SERVER_LIFESPAN_SHUTDOWN)
        return;
    if (status == 0) {
        CASGI_LOG(&server->log, CASGI_LOG_INFO, "Application shutdown complete.");
    } else {
        CASGI_LOG(&server->log, CASGI_LOG_ERROR, "%s", message ? message : "shutdown failed");
        CASGI_LOG(&server->log, CASGI_LOG_ERROR, "Application shutdown failed. Exiting.");
        server->shutdown_status = status;
        if (message)
            server->shutdown_message = strdup(message);
    }
    close_handles(server);
}

static void on_graceful_timeout(uv_timer_t *timer)
{
    casgi_server_t *server = timer->data;
    CASGI_LOG(&server->log, CASGI_LOG_ERROR,
              "Cancel %llu running connection(s), timeout graceful shutdown exceeded",
              (unsigned long long)server->num_conns);
    close_all_conns(server);
}

int casgi_server_shutdown(casgi_server_t *server, casgi_shutdown_cb cb, void *data)
{
    if (server->phase >= CASGI__SERVER_STOPPING)
        return CASGI_ESTATE;
    server->phase = CASGI__SERVER_STOPPING;
    server->shutdown_cb = cb;
    server->shutdown_data = data;
    CASGI_LOG(&server->log, CASGI_LOG_INFO, "Shutting down");
    if (server->start_cb) {
        /* Startup never finished: its callback still runs exactly once. */
        casgi_start_cb start_cb = server->start_cb;
        server->start_cb = NULL;
        start_cb(server, CASGI_ECANCELED, NULL, server->start_data);
    }
    for (casgi__list_t *n = server->listeners.next; n != &server->listeners; n = n->next)
        casgi__listener_close(container_of(n, casgi__listener_t, node));
    for (casgi__list_t *n = server->conns.next; n != &server->conns; n = n->next) {
        casgi__conn_t *conn = container_of(n, casgi__conn_t, node);
        if (conn->proto && conn->proto->on_shutdown)
            conn->proto->on_shutdown(conn);
    }
    if (server->num_conns > 0) {
        CASGI_LOG(&server->log, CASGI_LOG_INFO, "Waiting for connections to close.");
        if (server->cfg.timeout_graceful_shutdown > 0)
            uv_timer_start(&server->timer, on_graceful_timeout,
                           server->cfg.timeout_graceful_shutdown, 0);
    }
    check_drained(server);
    return 0;
}

int casgi_server_shutdown_force(casgi_server_t *server)
{
    switch (server->phase) {
    case CASGI__SERVER_STOPPING:
        server->forced = 1;
        if (server->num_calls > 0)
            CASGI_LOG(&server->log, CASGI_LOG_WARNING,
                      "Forced shutdown: %llu call(s) still held by the application",
                      (unsigned long long)server->num_calls);
        close_all_conns(server);
        check_drained(server);
        return 0;
    case CASGI__SERVER_LIFESPAN_SHUTDOWN: close_handles(server); return 0;
    default: return CASGI_ESTATE;
    }
}

void casgi_server_free(casgi_server_t *server)
{
    if (server == NULL)
        return;
    CASGI_ASSERT(server->phase == CASGI__SERVER_CLOSED);
    if (server->num_calls > 0) {
        /* After a forced shutdown the app may still hold calls; they keep reaching the server's
         * config and loop pointer, so the memory goes when the last of them ends. */
        server->orphaned = 1;
        return;
    }
    server_release(server);
}

static void server_release(casgi_server_t *server)
{
    if (server->lifespan)
        casgi__lifespan_free(server->lifespan);
    casgi__pool_clear(&server->pool);
    casgi__pool_clear(&server->http1_states);
    casgi__pool_clear(&server->h2_streams);
    casgi__pool_clear(&server->conn_states);
    casgi__slab_clear(&server->slab);
    free(server->root_path);
    free(server->default_headers);
    free(server->shutdown_message);
    free(server);
}
