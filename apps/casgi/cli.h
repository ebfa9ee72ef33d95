#ifndef CASGI_APPS_CLI_H
#define CASGI_APPS_CLI_H

#include <stddef.h>

#include <casgi.h>

/*
 * The runner's command line: Uvicorn's flag names mapped onto casgi_config_t plus the listen
 * target, which the config does not carry because the embedder calls casgi_server_listen_*().
 */
typedef struct cli_options_s {
    const char *app_spec; /* "path/to/app.so[:symbol]", borrowed from argv */

    /* listen target: uds wins over fd, fd over host/port (Uvicorn's precedence) */
    const char *host; /* default "127.0.0.1" */
    int port;         /* default 8000; 0 picks a free port */
    const char *uds;  /* NULL unless --uds */
    int fd;           /* -1 unless --fd */

    /* Strings in here point into argv; `cfg.headers` points to `headers` below. */
    casgi_config_t cfg;

    /* --header values: names and values point into argv; the array itself is owned */
    casgi_header_t *headers;
    size_t num_headers;

    int max_url_set; /* --max-url given; otherwise it shrinks with --max-request-head */
} cli_options_t;

/* cli_parse() returns this when the server should run; anything else is an exit status. */
#define CLI_RUN (-1)

/* Exit statuses shared by the runner (Uvicorn uses 3 for a failed startup too). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1, /* cannot load the app, cannot listen, lifespan shutdown failed */
    CLI_EXIT_USAGE = 2,   /* bad flag or value: a one-line message went to stderr */
    CLI_EXIT_STARTUP = 3, /* lifespan startup failed */
};

/* Fills `opts` with the defaults (casgi_config_init() plus the listen defaults). */
void cli_options_init(cli_options_t *opts);

/*
 * Parses argv into `opts` (initialised by cli_options_init()). Returns CLI_RUN, CLI_EXIT_OK after
 * printing --help or --version to stdout, or CLI_EXIT_USAGE after printing one line to stderr.
 * argv must outlive `opts`. cli_options_close() is needed whatever this returns.
 */
int cli_parse(cli_options_t *opts, int argc, char **argv);

/* Frees what cli_parse() allocated. */
void cli_options_close(cli_options_t *opts);

#endif
