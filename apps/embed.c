/*
 * embed: casgi inside a program that owns its event loop (the reference for the embedding section
 * of docs/api.md).
 *
 *   embed [PORT [SECONDS]]   listen on 127.0.0.1:PORT (default 0: any free port), answer
 *                            "embedded\n", and shut down gracefully after SECONDS or on SIGINT
 *
 * The program's own timer runs on the same loop beside the server: casgi is one more set of handles
 * on a loop it does not own, and it leaves none behind once its shutdown callback has run.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <casgi.h>
#include <uv.h>

typedef struct embed_s {
    uv_loop_t loop;
    uv_timer_t ticker;   /* the program's own work */
    uv_timer_t deadline; /* optional: stop after argv[2] seconds */
    uv_signal_t sigint;  /* casgi installs no signal handlers; the program decides */
    casgi_server_t *server;
    unsigned long ticks;
    int stopping;
} embed_t;

/* The whole app: one response, then end the call. Events are copied, so locals are fine. */
static void on_request(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    casgi_header_t headers[] = {
        {CASGI_BYTES("content-type"), CASGI_BYTES("text/plain")},
        {CASGI_BYTES("content-length"), CASGI_BYTES("9")},
    };
    casgi_event_t start = {.type = CASGI_EVENT_HTTP_RESPONSE_START,
                           .start = {.status = 200, .headers = headers, .num_headers = 2}};
    casgi_event_t body = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY,
                          .body = {.body = CASGI_BYTES("embedded\n")}};
    int rc;

    (void)scope; /* lifespan is off, so every scope is http */
    (void)app_data;
    rc = casgi_send(call, &start, NULL, NULL);
    if (rc == 0)
        rc = casgi_send(call, &body, NULL, NULL);
    casgi_call_end(call, rc == CASGI_EDISCONNECTED ? 0 : rc);
}

static void on_tick(uv_timer_t *timer)
{
    embed_t *e = timer->loop->data;

    e->ticks++;
}

/* Our handles live in embed_t, so there is nothing to free when they close. */
static void on_close(uv_handle_t *handle)
{
    (void)handle;
}

/* The server has closed its last handle; closing ours lets uv_run() return. */
static void on_shutdown(casgi_server_t *server, int status, const char *message, void *data)
{
    embed_t *e = data;

    (void)server;
    (void)status;
    (void)message;
    uv_close((uv_handle_t *)&e->ticker, on_close);
    uv_close((uv_handle_t *)&e->deadline, on_close);
    uv_close((uv_handle_t *)&e->sigint, on_close);
}

/* The first SIGINT (or the deadline) drains in-flight requests; a second stops waiting for them. */
static void stop(embed_t *e)
{
    if (e->stopping) {
        casgi_server_shutdown_force(e->server);
        return;
    }
    e->stopping = 1;
    if (casgi_server_shutdown(e->server, on_shutdown, e) != 0)
        on_shutdown(e->server, 0, NULL, e); /* no callback will come; close ours anyway */
}

static void on_sigint(uv_signal_t *handle, int signum)
{
    (void)signum;
    stop(handle->loop->data);
}

static void on_deadline(uv_timer_t *timer)
{
    stop(timer->loop->data);
}

static void on_start(casgi_server_t *server, int status, const char *message, void *data)
{
    (void)server;
    (void)message;
    /* Even a failed start needs a shutdown to release the listener; CASGI_ECANCELED means a
     * shutdown already began (and a second stop() would force it). */
    if (status != 0 && status != CASGI_ECANCELED)
        stop(data);
}

int main(int argc, char **argv)
{
    const casgi_app_t app = {.entry = on_request}; /* casgi_server_new() copies it */
    embed_t e = {.server = NULL};
    casgi_config_t cfg;
    int port = argc > 1 ? atoi(argv[1]) : 0;
    double seconds = argc > 2 ? strtod(argv[2], NULL) : 0;
    int rc;

    /* A write to a client that reset the connection must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    rc = uv_loop_init(&e.loop);
    if (rc != 0)
        goto fail;
    e.loop.data = &e;

    casgi_config_init(&cfg);
    cfg.lifespan = CASGI_LIFESPAN_OFF; /* this app has nothing to start up */
    rc = casgi_server_new(&e.loop, &cfg, &app, &e.server);
    if (rc != 0)
        goto fail_loop;

    /*
     * The server has handles on the loop from here on, so every exit, a failed listen included,
     * goes through casgi_server_shutdown(); its callback closes our handles too.
     */
    uv_timer_init(&e.loop, &e.ticker);
    uv_timer_start(&e.ticker, on_tick, 100, 100);
    uv_timer_init(&e.loop, &e.deadline);
    uv_signal_init(&e.loop, &e.sigint);
    uv_signal_start(&e.sigint, on_sigint, SIGINT);

    rc = casgi_server_listen_tcp(e.server, "127.0.0.1", port);
    if (rc == 0) {
        printf("embed: listening on http://127.0.0.1:%d\n", casgi_server_get_port(e.server, 0));
        fflush(stdout);
        rc = casgi_server_start(e.server, on_start, &e);
    }
    if (rc == 0 && seconds > 0)
        uv_timer_start(&e.deadline, on_deadline, (uint64_t)(seconds * 1000), 0);
    if (rc != 0)
        stop(&e);
    uv_run(&e.loop, UV_RUN_DEFAULT);

    printf("embed: ticked %lu times while serving\n", e.ticks);
    casgi_server_free(e.server);
fail_loop:
    /* 0 only when every handle, the server's and ours, has been closed: nothing leaked. */
    if (uv_loop_close(&e.loop) != 0) {
        fprintf(stderr, "embed: handles still open on the loop\n");
        rc = rc != 0 ? rc : UV_EBUSY;
    }
fail:
    if (rc != 0)
        fprintf(stderr, "embed: %s\n", casgi_strerror(rc));
    return rc != 0 ? 1 : 0;
}
