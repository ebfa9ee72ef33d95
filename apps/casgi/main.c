/*
 * casgi: Uvicorn's command line for C apps. Parses the flags (cli.c), loads the app from a shared
 * object (load.c), and runs one server on a loop of its own until SIGINT/SIGTERM or
 * --limit-max-requests ends it. Everything it allocates is released before exit, so the runner can
 * be run under LeakSanitizer by the integration tests.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides */

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <casgi.h>
#include <uv.h>

#include "cli.h"
#include "load.h"

typedef struct runner_s {
    uv_loop_t loop;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    casgi_server_t *server;
    const cli_options_t *opts;
    int signals_started;
    int started; /* casgi_server_start() succeeded */
    int shutting_down;
    int exit_code;
} runner_t;

/*
 * The runner's own lines, in the library's default format ("INFO:" padded to 10 columns), so that
 * the log reads as one stream and the tests can parse the "running on" line. Formatted first and
 * written with one call so that a line is never interleaved with another writer's.
 */
__attribute__((format(printf, 3, 4))) static void say(const runner_t *r, casgi_log_level_t level,
                                                      const char *fmt, ...)
{
    char line[1024];
    char prefix[16];
    va_list ap;

    if (level < r->opts->cfg.log_level)
        return;
    snprintf(prefix, sizeof(prefix), "%s:", casgi_log_level_name(level));
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%-10s%s\n", prefix, line);
}

static void on_signal_close(uv_handle_t *handle)
{
    (void)handle; /* the handles live inside runner_t; nothing to free */
}

static void close_signals(runner_t *r)
{
    if (!r->signals_started)
        return;
    r->signals_started = 0;
    uv_close((uv_handle_t *)&r->sigint, on_signal_close);
    uv_close((uv_handle_t *)&r->sigterm, on_signal_close);
}

/*
 * The server holds no handle after this, so closing the signal watchers lets uv_run() return
 * and main() free everything in order.
 */
static void on_shutdown(casgi_server_t *server, int status, const char *message, void *data)
{
    runner_t *r = data;
    casgi_server_stats_t stats;

    (void)message; /* the library has logged it */
    if (status != 0 && r->exit_code == CLI_EXIT_OK)
        r->exit_code = CLI_EXIT_FAILURE;
    casgi_server_stats(server, &stats);
    if (stats.calls_active > 0) {
        /* A forced shutdown left calls with an app that ignores disconnects; its own handles
         * would keep the loop running, so a forced exit is what the operator asked for. */
        say(r, CASGI_LOG_WARNING, "Forced exit with %llu call(s) still running",
            (unsigned long long)stats.calls_active);
        _exit(CLI_EXIT_FAILURE);
    }
    close_signals(r);
}

/*
 * Graceful first, forceful second: the same escalation Uvicorn gives a second Ctrl+C, so an
 * operator can always cut a drain short without SIGKILL.
 */
static void stop(runner_t *r)
{
    int rc;

    if (r->shutting_down) {
        rc = casgi_server_shutdown_force(r->server);
        if (rc != 0)
            say(r, CASGI_LOG_DEBUG, "forced shutdown: %s", casgi_strerror(rc));
        return;
    }
    r->shutting_down = 1;
    rc = casgi_server_shutdown(r->server, on_shutdown, r);
    if (rc != 0) {
        /* No callback will come, so nothing else would ever close the signal watchers. */
        say(r, CASGI_LOG_ERROR, "cannot shut down: %s", casgi_strerror(rc));
        r->exit_code = CLI_EXIT_FAILURE;
        close_signals(r);
    }
}

static void on_signal(uv_signal_t *handle, int signum)
{
    (void)signum;
    stop(handle->data);
}

/* The library has logged the limit; ending the process is the runner's decision (Uvicorn's). */
static void on_limit(casgi_server_t *server, void *data)
{
    runner_t *r = data;

    (void)server;
    if (!r->shutting_down)
        stop(r);
}

/* Printed only once the app is ready, as Uvicorn does: a client that reads it can connect. */
static void print_running(runner_t *r)
{
    const cli_options_t *o = r->opts;
    int port;

    if (o->uds != NULL) {
        say(r, CASGI_LOG_INFO, "casgi running on unix socket %s (Press CTRL+C to quit)", o->uds);
    } else if (o->fd >= 0) {
        say(r, CASGI_LOG_INFO, "casgi running on socket fd %d (Press CTRL+C to quit)", o->fd);
    } else {
        /* With --port 0 only the server knows the port; the tests read it from this line. */
        port = casgi_server_get_port(r->server, 0);
        say(r, CASGI_LOG_INFO, "casgi running on http://%s%s%s:%d (Press CTRL+C to quit)",
            strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "", port);
    }
}

static void on_start(casgi_server_t *server, int status, const char *message, void *data)
{
    runner_t *r = data;

    (void)server;
    (void)message; /* the library has logged it, and "Application startup failed. Exiting." */
    if (status == 0) {
        print_running(r);
        return;
    }
    r->exit_code = CLI_EXIT_STARTUP;
    if (!r->shutting_down)
        stop(r);
}

static int listen_all(runner_t *r)
{
    const cli_options_t *o = r->opts;
    int rc;

    if (o->uds != NULL) {
        rc = casgi_server_listen_unix(r->server, o->uds);
        if (rc != 0)
            say(r, CASGI_LOG_ERROR, "error while attempting to bind on unix socket %s: %s", o->uds,
                casgi_strerror(rc));
    } else if (o->fd >= 0) {
        rc = casgi_server_listen_fd(r->server, o->fd);
        if (rc != 0)
            say(r, CASGI_LOG_ERROR, "error while attempting to listen on fd %d: %s", o->fd,
                casgi_strerror(rc));
    } else {
        rc = casgi_server_listen_tcp(r->server, o->host, o->port);
        if (rc != 0)
            say(r, CASGI_LOG_ERROR, "error while attempting to bind on address %s:%d: %s%s",
                o->host, o->port, casgi_strerror(rc),
                rc == UV_EINVAL ? " (--host takes a numeric IPv4 or IPv6 address)" : "");
    }
    return rc;
}

static int start_signals(runner_t *r)
{
    int rc;

    rc = uv_signal_init(&r->loop, &r->sigint);
    if (rc != 0)
        return rc;
    rc = uv_signal_init(&r->loop, &r->sigterm);
    if (rc != 0) {
        uv_close((uv_handle_t *)&r->sigint, on_signal_close);
        return rc;
    }
    r->sigint.data = r;
    r->sigterm.data = r;
    r->signals_started = 1;
    rc = uv_signal_start(&r->sigint, on_signal, SIGINT);
    if (rc == 0)
        rc = uv_signal_start(&r->sigterm, on_signal, SIGTERM);
    return rc;
}

/*
 * Listens, starts and runs the loop until the server has shut down. The server has handles on the
 * loop from casgi_server_new() on, so every path, failures included, goes through a shutdown whose
 * callback has run before main() frees the server. Returns the exit status.
 */
static int serve(runner_t *r)
{
    int rc;

    say(r, CASGI_LOG_INFO, "Started server process [%ld]", (long)getpid());
    if (listen_all(r) != 0) {
        r->exit_code = CLI_EXIT_FAILURE;
    } else if ((rc = start_signals(r)) != 0) {
        fprintf(stderr, "casgi: cannot watch signals: %s\n", uv_strerror(rc));
        r->exit_code = CLI_EXIT_FAILURE;
    } else if ((rc = casgi_server_start(r->server, on_start, r)) != 0) {
        fprintf(stderr, "casgi: cannot start the server: %s\n", casgi_strerror(rc));
        r->exit_code = CLI_EXIT_FAILURE;
    } else {
        r->started = 1;
    }
    if (!r->started)
        stop(r);

    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (r->started)
        say(r, CASGI_LOG_INFO, "Finished server process [%ld]", (long)getpid());
    return r->exit_code;
}

/* A handle left open is a bug in the library or here; name it so the report is actionable. */
static void on_leftover_handle(uv_handle_t *handle, void *arg)
{
    (void)arg;
    fprintf(stderr, "casgi: handle still open at exit: %s\n", uv_handle_type_name(handle->type));
}

int main(int argc, char **argv)
{
    cli_options_t opts;
    runner_t r;
    load_t load;
    struct sigaction ignore;
    const char *why = NULL;
    char err[512];
    int rc;

    memset(&r, 0, sizeof(r));
    r.opts = &opts;
    cli_options_init(&opts);
    rc = cli_parse(&opts, argc, argv);
    if (rc != CLI_RUN)
        goto out;
    if (opts.cfg.limit_max_requests != 0) {
        opts.cfg.limit_cb = on_limit;
        opts.cfg.limit_data = &r;
    }
    if (casgi_config_validate(&opts.cfg, &why) != 0) {
        fprintf(stderr, "casgi: invalid configuration: %s\n", why ? why : "(no reason given)");
        rc = CLI_EXIT_USAGE;
        goto out;
    }

    if (load_init(&load, opts.app_spec, err, sizeof(err)) != 0) {
        fprintf(stderr, "casgi: cannot load app: %s\n", err);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }

    /* casgi installs no signal handlers, and a write to a reset peer must not kill the server. */
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, NULL);

    rc = uv_loop_init(&r.loop);
    if (rc != 0) {
        fprintf(stderr, "casgi: cannot create the event loop: %s\n", uv_strerror(rc));
        rc = CLI_EXIT_FAILURE;
        goto out_load;
    }
    rc = casgi_server_new(&r.loop, &opts.cfg, load.app, &r.server);
    if (rc != 0) {
        fprintf(stderr, "casgi: cannot create the server: %s\n", casgi_strerror(rc));
        rc = CLI_EXIT_FAILURE;
        goto out_loop;
    }

    rc = serve(&r);
    casgi_server_free(r.server);
out_loop:
    if (uv_loop_close(&r.loop) != 0) {
        uv_walk(&r.loop, on_leftover_handle, NULL);
        fprintf(stderr, "casgi: the event loop still had handles at exit\n");
        rc = CLI_EXIT_FAILURE;
    }
out_load:
    load_close(&load);
out:
    cli_options_close(&opts);
    return rc;
}
