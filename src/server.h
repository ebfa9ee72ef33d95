#ifndef CASGI_SERVER_INTERNAL_H
#define CASGI_SERVER_INTERNAL_H

#include "buf.h"
#include "date.h"
#include "internal.h"
#include "log.h"

/*
 * Deferred work. Anything that must call the app "later" (the callback promise) queues a task;
 * the server runs queued tasks in its prepare and check phases, until none is left, and only then
 * writes out every connection's output once: callbacks first, one write per connection per turn.
 */
typedef struct casgi__task_s {
    casgi__list_t node;
    void (*run)(struct casgi__task_s *task);
    int queued;
    /* Nonzero while the owner's run loop is on the stack, a loop that looks at everything again
     * before it returns: deferring the task then asks for nothing, so casgi__server_defer() does
     * not queue it (the app answering from inside that loop would otherwise cost a second pass
     * per request or message). */
    unsigned running;
} casgi__task_t;

typedef struct casgi__lifespan_s casgi__lifespan_t;

/*
 * Connection deadlines of one duration. Each is set at "now + ms" with the same ms and now never
 * goes back, so appending keeps the list sorted: a FIFO serves as the priority queue, and setting
 * a deadline is two pointer moves instead of a timer-heap update per request.
 */
#define CASGI__DEADLINE_LISTS                                                                      \
    8 /* 6 durations exist: keep-alive, request head, linger, close wait, ping interval, ping      \
         timeout */
typedef struct casgi__deadlines_s {
    uint64_t ms;
    casgi__list_t conns; /* by casgi__conn_t.deadline_node, earliest first */
} casgi__deadlines_t;
typedef struct casgi__conn_s casgi__conn_t;

typedef enum {
    CASGI__SERVER_NEW = 0,
    CASGI__SERVER_STARTING,
    CASGI__SERVER_RUNNING,
    CASGI__SERVER_STOPPING, /* draining connections and calls */
    CASGI__SERVER_LIFESPAN_SHUTDOWN,
    CASGI__SERVER_CLOSING, /* closing its own handles */
    CASGI__SERVER_CLOSED,
} casgi__server_state_t;

struct casgi_server_s {
    uv_loop_t *loop;
    casgi_config_t cfg; /* strings and header arrays below are the server's own copies */
    char *root_path;
    casgi_header_t *default_headers;
    casgi_app_t app;
    casgi__logger_t log;
    casgi__date_t date;
    casgi__pool_t pool;         /* connection buffers */
    casgi__pool_t http1_states; /* of finished requests, for the next ones: keep-alive requests
                                   allocate nothing */
    casgi__pool_t h2_streams;   /* likewise for HTTP/2 streams */
    casgi__pool_t conn_states;  /* closed connections' structs: an accept allocates nothing */
    casgi__slab_t slab;         /* small blocks for nghttp2 (its per-stream allocations) */
    void *state;                /* ASGI lifespan state shared into every scope */

    casgi__server_state_t phase;
    casgi__list_t listeners;
    casgi__list_t conns;
    casgi__list_t tasks;
    casgi__list_t flushes;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t timer;          /* the graceful-shutdown deadline */
    uv_timer_t deadline_timer; /* the earliest connection deadline */
    uint64_t deadline_due;     /* loop time deadline_timer is set for; 0 = not running */
    casgi__deadlines_t deadlines[CASGI__DEADLINE_LISTS];
    unsigned num_deadline_lists;
    unsigned handles_open;

    uint64_t num_conns;
    uint64_t num_calls; /* http calls the app still holds */
    casgi_server_stats_t stats;
    int limit_reported;
    unsigned forced : 1;   /* shutdown_force: stop waiting for apps to end their calls */
    unsigned orphaned : 1; /* freed by the embedder while apps still hold calls */

    casgi__lifespan_t *lifespan;
    casgi__task_t start_task;
    casgi__task_t limit_task;
    casgi_start_cb start_cb;
    void *start_data;
    casgi_shutdown_cb shutdown_cb;
    void *shutdown_data;
    int shutdown_status;
    char *shutdown_message;
};

void casgi__server_defer(casgi_server_t *server, casgi__task_t *task);
void casgi__server_cancel(casgi_server_t *server, casgi__task_t *task);

/* Bookkeeping hooks for the layers below. */
void casgi__server_conn_opened(casgi_server_t *server, casgi__conn_t *conn);
void casgi__server_conn_closed(casgi_server_t *server, casgi__conn_t *conn);
void casgi__server_call_started(casgi_server_t *server);
void casgi__server_call_ended(casgi_server_t *server);
void casgi__server_request_done(casgi_server_t *server);
/* 1 when a new request must be refused with 503 (limit_concurrency). */
int casgi__server_over_limit(const casgi_server_t *server);
static inline int casgi__server_stopping(const casgi_server_t *server)
{
    return server->phase >= CASGI__SERVER_STOPPING;
}

/* From lifespan.c: the outcome of startup and shutdown. `message` is borrowed. */
void casgi__server_startup_done(casgi_server_t *server, int status, const char *message);
void casgi__server_lifespan_shutdown_done(casgi_server_t *server, int status, const char *message);

#endif
