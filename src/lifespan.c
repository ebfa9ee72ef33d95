#include <stdlib.h>

#include "call.h"
#include "lifespan.h"

typedef struct report_s {
    int pending;
    int status;
    char *message;
} report_t;

struct casgi__lifespan_s {
    casgi_server_t *server;
    casgi_call_t call;
    casgi__task_t task;
    unsigned entered : 1;
    unsigned ended : 1;
    unsigned startup_delivered : 1;
    unsigned startup_answered : 1;
    unsigned startup_ok : 1;
    unsigned shutdown_requested : 1;
    unsigned shutdown_delivered : 1;
    unsigned shutdown_answered : 1;
    report_t startup;
    report_t shutdown;
};

static void wake(casgi__lifespan_t *ls)
{
    casgi__server_defer(ls->server, &ls->task);
}

static void report(casgi__lifespan_t *ls, report_t *r, int status, casgi_bytes_t message)
{
    r->pending = 1;
    r->status = status;
    if (status != 0 && message.len > 0) {
        r->message = malloc(message.len + 1);
        if (r->message) {
            memcpy(r->message, message.base, message.len);
            r->message[message.len] = '\0';
        }
    }
    wake(ls);
}

static void answer_startup(casgi__lifespan_t *ls, int status, casgi_bytes_t message)
{
    ls->startup_answered = 1;
    ls->startup_ok = status == 0;
    report(ls, &ls->startup, status, message);
}

static void answer_shutdown(casgi__lifespan_t *ls, int status, casgi_bytes_t message)
{
    ls->shutdown_answered = 1;
    report(ls, &ls->shutdown, status, message);
}

static void on_task(casgi__task_t *task)
{
    casgi__lifespan_t *ls = container_of(task, casgi__lifespan_t, task);
    casgi_server_t *server = ls->server;
    if (!ls->entered) {
        ls->entered = 1;
        casgi__call_start(&ls->call);
    }
    for (;;) {
        if (ls->call.recv_cb && !ls->startup_delivered) {
            ls->startup_delivered = 1;
            casgi__call_deliver(&ls->call, &(casgi_event_t){.type = CASGI_EVENT_LIFESPAN_STARTUP});
        } else if (ls->call.recv_cb && ls->shutdown_requested && !ls->shutdown_delivered) {
            ls->shutdown_delivered = 1;
            casgi__call_deliver(&ls->call, &(casgi_event_t){.type = CASGI_EVENT_LIFESPAN_SHUTDOWN});
        } else if (ls->call.send_cb) {
            casgi__call_send_done(&ls->call, 0);
        } else if (ls->startup.pending) {
            ls->startup.pending = 0;
            casgi__server_startup_done(server, ls->startup.status, ls->startup.message);
        } else if (ls->shutdown.pending) {
            ls->shutdown.pending = 0;
            casgi__server_lifespan_shutdown_done(server, ls->shutdown.status, ls->shutdown.message);
        } else {
            break;
        }
    }
}

static int call_send(casgi_call_t *call, const casgi_event_t *ev)
{
    casgi__lifespan_t *ls = container_of(call, casgi__lifespan_t, call);
    switch (ev->type) {
    case CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE:
    case CASGI_EVENT_LIFESPAN_STARTUP_FAILED:
        if (ls->startup_answered)
            return CASGI_ESTATE;
        if (ev->type == CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE)
            answer_startup(ls, 0, (casgi_bytes_t){NULL, 0});
        else
            answer_startup(ls, CASGI_ESTARTUP, ev->failed.message);
        return 0;
    case CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE:
    case CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED:
        if (!ls->shutdown_delivered || ls->shutdown_answered)
            return CASGI_ESTATE;
        if (ev->type == CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE)
            answer_shutdown(ls, 0, (casgi_bytes_t){NULL, 0});
        else
            answer_shutdown(ls, CASGI_ESHUTDOWN, ev->failed.message);
        return 0;
    default: return CASGI_EEVENT;
    }
}

static void call_wake(casgi_call_t *call)
{
    wake(container_of(call, casgi__lifespan_t, call));
}

static void call_abort(casgi_call_t *call)
{
    (void)call;
}

static void call_end(casgi_call_t *call, int error)
{
    casgi__lifespan_t *ls = container_of(call, casgi__lifespan_t, call);
    casgi__logger_t *log = &ls->server->log;
    ls->ended = 1;
    if (!ls->startup_answered) {
        if (error && ls->server->cfg.lifespan == CASGI_LIFESPAN_ON) {
            CASGI_LOG(log, CASGI_LOG_ERROR, "Exception in 'lifespan' protocol: %s",
                      casgi_strerror(error));
            answer_startup(ls, CASGI_ESTARTUP, CASGI_BYTES("the lifespan app failed"));
        } else {
            if (error)
                CASGI_LOG(log, CASGI_LOG_INFO, "ASGI 'lifespan' protocol appears unsupported.");
            answer_startup(ls, 0, (casgi_bytes_t){NULL, 0});
        }
    } else if (ls->shutdown_requested && !ls->shutdown_answered) {
        if (error)
            CASGI_LOG(log, CASGI_LOG_ERROR, "Exception in 'lifespan' protocol: %s",
                      casgi_strerror(error));
        answer_shutdown(ls, error ? CASGI_ESHUTDOWN : 0, CASGI_BYTES("the lifespan app failed"));
    } else if (error) {
        CASGI_LOG(log, CASGI_LOG_ERROR, "Exception in 'lifespan' protocol: %s",
                  casgi_strerror(error));
    }
}

static const casgi__call_ops_t call_ops = {
    .send = call_send,
    .wake = call_wake,
    .abort = call_abort,
    .end = call_end,
};

int casgi__lifespan_new(casgi_server_t *server, casgi__lifespan_t **out)
{
    casgi__lifespan_t *ls = calloc(1, sizeof(*ls));
    if (ls == NULL)
        return CASGI_ENOMEM;
    ls->server = server;
    casgi__call_init(&ls->call, &call_ops, server);
    ls->call.scope.type = CASGI_SCOPE_LIFESPAN;
    ls->call.scope.asgi_version = "3.0";
    ls->call.scope.spec_version = "2.0";
    ls->task.run = on_task;
    casgi__list_init(&ls->task.node);
    wake(ls); /* the app's entry runs from the task queue, after casgi_server_start() returned */
    *out = ls;
    return 0;
}

int casgi__lifespan_wants_shutdown(const casgi__lifespan_t *ls)
{
    return !ls->ended && ls->startup_ok;
}

void casgi__lifespan_shutdown(casgi__lifespan_t *ls)
{
    if (ls->ended || !ls->startup_ok) {
        answer_shutdown(ls, 0, (casgi_bytes_t){NULL, 0});
        return;
    }
    ls->shutdown_requested = 1;
    wake(ls);
}

void casgi__lifespan_free(casgi__lifespan_t *ls)
{
    casgi__server_cancel(ls->server, &ls->task);
    free(ls->startup.message);
    free(ls->shutdown.message);
    free(ls);
}
