/*
 * The runner's command line. Flags keep Uvicorn's names and defaults so that a deployment can
 * swap `uvicorn mod:app` for `casgi app.so:app` without relearning them; the few casgi-only flags
 * expose limits Uvicorn leaves to h11 or does not have.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides */

#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    OPT_HOST = 256, /* above every char, so getopt's '?' and ':' cannot collide */
    OPT_PORT,
    OPT_UDS,
    OPT_FD,
    OPT_ROOT_PATH,
    OPT_LIFESPAN,
    OPT_LOG_LEVEL,
    OPT_ACCESS_LOG,
    OPT_NO_ACCESS_LOG,
    OPT_TIMEOUT_KEEP_ALIVE,
    OPT_TIMEOUT_GRACEFUL_SHUTDOWN,
    OPT_LIMIT_CONCURRENCY,
    OPT_LIMIT_MAX_REQUESTS,
    OPT_BACKLOG,
    OPT_HEADER,
    OPT_SERVER_HEADER,
    OPT_NO_SERVER_HEADER,
    OPT_DATE_HEADER,
    OPT_NO_DATE_HEADER,
    OPT_MAX_BODY_SIZE,
    OPT_TIMEOUT_REQUEST_HEADER,
    OPT_MAX_REQUEST_HEAD,
    OPT_MAX_URL,
    OPT_WS,
    OPT_WS_MAX_SIZE,
    OPT_WS_MAX_QUEUE,
    OPT_WS_PING_INTERVAL,
    OPT_WS_PING_TIMEOUT,
    OPT_WS_PER_MESSAGE_DEFLATE,
    OPT_NO_WS_PER_MESSAGE_DEFLATE,
    OPT_WS_DEFLATE_WINDOW_BITS,
    OPT_WS_DEFLATE_MEM_LEVEL,
    OPT_WS_DEFLATE_THRESHOLD,
    OPT_HTTP2,
    OPT_NO_HTTP2,
    OPT_H2_MAX_CONCURRENT_STREAMS,
    OPT_H2_STREAM_WINDOW,
    OPT_H2_MAX_RESETS,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"uds", required_argument, NULL, OPT_UDS},
    {"fd", required_argument, NULL, OPT_FD},
    {"root-path", required_argument, NULL, OPT_ROOT_PATH},
    {"lifespan", required_argument, NULL, OPT_LIFESPAN},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"access-log", no_argument, NULL, OPT_ACCESS_LOG},
    {"no-access-log", no_argument, NULL, OPT_NO_ACCESS_LOG},
    {"timeout-keep-alive", required_argument, NULL, OPT_TIMEOUT_KEEP_ALIVE},
    {"timeout-graceful-shutdown", required_argument, NULL, OPT_TIMEOUT_GRACEFUL_SHUTDOWN},
    {"limit-concurrency", required_argument, NULL, OPT_LIMIT_CONCURRENCY},
    {"limit-max-requests", required_argument, NULL, OPT_LIMIT_MAX_REQUESTS},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"header", required_argument, NULL, OPT_HEADER},
    {"server-header", no_argument, NULL, OPT_SERVER_HEADER},
    {"no-server-header", no_argument, NULL, OPT_NO_SERVER_HEADER},
    {"date-header", no_argument, NULL, OPT_DATE_HEADER},
    {"no-date-header", no_argument, NULL, OPT_NO_DATE_HEADER},
    {"max-body-size", required_argument, NULL, OPT_MAX_BODY_SIZE},
    {"timeout-request-header", required_argument, NULL, OPT_TIMEOUT_REQUEST_HEADER},
    {"max-request-head", required_argument, NULL, OPT_MAX_REQUEST_HEAD},
    {"max-url", required_argument, NULL, OPT_MAX_URL},
    {"ws", required_argument, NULL, OPT_WS},
    {"ws-max-size", required_argument, NULL, OPT_WS_MAX_SIZE},
    {"ws-max-queue", required_argument, NULL, OPT_WS_MAX_QUEUE},
    {"ws-ping-interval", required_argument, NULL, OPT_WS_PING_INTERVAL},
    {"ws-ping-timeout", required_argument, NULL, OPT_WS_PING_TIMEOUT},
    /* Uvicorn's form is "--ws-per-message-deflate BOOLEAN"; the value is optional here, and
     * cli_parse() takes it from the next argument when that is a boolean word. */
    {"ws-per-message-deflate", optional_argument, NULL, OPT_WS_PER_MESSAGE_DEFLATE},
    {"no-ws-per-message-deflate", no_argument, NULL, OPT_NO_WS_PER_MESSAGE_DEFLATE},
    {"ws-deflate-window-bits", required_argument, NULL, OPT_WS_DEFLATE_WINDOW_BITS},
    {"ws-deflate-mem-level", required_argument, NULL, OPT_WS_DEFLATE_MEM_LEVEL},
    {"ws-deflate-threshold", required_argument, NULL, OPT_WS_DEFLATE_THRESHOLD},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"no-http2", no_argument, NULL, OPT_NO_HTTP2},
    {"h2-max-concurrent-streams", required_argument, NULL, OPT_H2_MAX_CONCURRENT_STREAMS},
    {"h2-stream-window", required_argument, NULL, OPT_H2_STREAM_WINDOW},
    {"h2-max-resets", required_argument, NULL, OPT_H2_MAX_RESETS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Kept in step with long_options by hand; docs/cli.md carries the same table. */
static const char usage_text[] =
    "Usage: casgi [OPTIONS] APP\n"
    "\n"
    "  Serve APP, given as path/to/app.so[:symbol], over HTTP. The shared object is loaded with\n"
    "  dlopen and `symbol` (default: app) must name a casgi_app_t: the C form of Uvicorn's\n"
    "  \"module:attribute\" import string.\n"
    "\n"
    "Options (same name and default as Uvicorn's unless marked):\n"
    "  --host TEXT                      Bind to this numeric IPv4/IPv6 address.\n"
    "                                   [default: 127.0.0.1]\n"
    "  --port INTEGER                   Bind to this port; 0 picks a free one. [default: 8000]\n"
    "  --uds PATH                       Bind to a Unix domain socket instead.\n"
    "  --fd INTEGER                     Listen on this inherited, already bound socket instead.\n"
    "  --root-path TEXT                 ASGI root_path for apps mounted below a prefix.\n"
    "  --lifespan [auto|on|off]         Lifespan scope handling. [default: auto]\n"
    "  --log-level [trace|debug|info|warning|error|critical]\n"
    "                                   Log level. [default: info]\n"
    "  --access-log / --no-access-log   One log line per request. [default: on]\n"
    "  --timeout-keep-alive SECONDS     Close keep-alive connections idle this long.\n"
    "                                   [default: 5]\n"
    "  --timeout-graceful-shutdown SECONDS\n"
    "                                   On shutdown, wait this long for requests in flight,\n"
    "                                   then close them. [default: wait forever]\n"
    "  --limit-concurrency INTEGER      Answer 503 beyond this many connections and requests\n"
    "                                   at once. [default: no limit]\n"
    "  --limit-max-requests INTEGER     Shut down gracefully after this many requests.\n"
    "                                   [default: no limit]\n"
    "  --backlog INTEGER                listen(2) backlog. [default: 2048]\n"
    "  --header NAME:VALUE              Extra default response header; repeatable.\n"
    "  --server-header / --no-server-header\n"
    "                                   Send \"server: casgi\". [default: on]\n"
    "  --date-header / --no-date-header Send a Date header. [default: on]\n"
    "  --max-body-size BYTES            Answer 413 to larger request bodies.\n"
    "                                   [casgi only; default: no limit]\n"
    "  --timeout-request-header SECONDS Close connections whose request head takes longer.\n"
    "                                   [casgi only; default: 10]\n"
    "  --max-request-head BYTES         Answer 431 to larger request lines + headers.\n"
    "                                   [like --h11-max-incomplete-event-size; default: 65536]\n"
    "  --max-url BYTES                  Answer 414 to longer request targets.\n"
    "                                   [casgi only; default: 8192]\n"
    "  --ws [auto|none]                 WebSocket support; websockets, websockets-sansio and\n"
    "                                   wsproto are read as auto. [default: auto]\n"
    "  --ws-max-size BYTES              Close with 1009 on larger messages.\n"
    "                                   [default: 16777216]\n"
    "  --ws-max-queue INTEGER           Received messages buffered per connection before\n"
    "                                   reading pauses. [default: 32]\n"
    "  --ws-ping-interval SECONDS       Ping every this often; 0 disables. [default: 20]\n"
    "  --ws-ping-timeout SECONDS        Close with 1011 when no pong comes within this.\n"
    "                                   [default: 20]\n"
    "  --ws-per-message-deflate BOOLEAN Negotiate permessage-deflate; the bare flag means\n"
    "                                   true, --no-ws-per-message-deflate false. [default: true]\n"
    "  --ws-deflate-window-bits 9..15   Our LZ77 window (server_max_window_bits).\n"
    "                                   [casgi only; default: 15]\n"
    "  --ws-deflate-mem-level 1..9      zlib memLevel of the compressor.\n"
    "                                   [casgi only; default: 8]\n"
    "  --ws-deflate-threshold BYTES     Send shorter messages uncompressed.\n"
    "                                   [casgi only; default: 64]\n"
    "  --http2 / --no-http2             Serve HTTP/2 cleartext (h2c): prior knowledge on every\n"
    "                                   listener and Upgrade: h2c. [casgi only; default: on]\n"
    "  --h2-max-concurrent-streams INTEGER\n"
    "                                   SETTINGS_MAX_CONCURRENT_STREAMS. [casgi only; default: "
    "100]\n"
    "  --h2-stream-window BYTES         Request body in flight per stream (its flow-control\n"
    "                                   window). [casgi only; default: 65535]\n"
    "  --h2-max-resets INTEGER          Client stream resets per 10 s before GOAWAY\n"
    "                                   ENHANCE_YOUR_CALM. [casgi only; default: 200]\n"
    "  --version                        Show the version and exit.\n"
    "  --help                           Show this message and exit.\n"
    "\n"
    "Seconds may be fractional (0.5). SIGINT or SIGTERM shuts down gracefully; a second one\n"
    "closes every connection at once. Exit status: 0 ok, 1 load/listen/shutdown failure,\n"
    "2 usage error, 3 application startup failed.\n";

/*
 * Every usage error is one line on stderr naming the flag as typed, so that scripts and people
 * see the culprit without scrolling through the help text.
 */
static int usage_error(const char *flag, const char *arg, const char *why)
{
    if (arg != NULL)
        fprintf(stderr, "casgi: invalid value for '%s': '%s' %s\n", flag, arg, why);
    else
        fprintf(stderr, "casgi: %s: %s\n", flag, why);
    return CLI_EXIT_USAGE;
}

/*
 * Decimal integer in [min, max]. strtoull alone would accept leading blanks and a minus sign
 * (wrapping around), so the first byte must be a digit.
 */
static int parse_uint(const char *flag, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
    char why[80];
    char *end;
    unsigned long long v;

    errno = 0;
    v = (arg[0] >= '0' && arg[0] <= '9') ? strtoull(arg, &end, 10) : 0;
    if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno == ERANGE || v < min || v > max) {
        snprintf(why, sizeof(why), "is not an integer in %llu..%llu", (unsigned long long)min,
                 (unsigned long long)max);
        return usage_error(flag, arg, why);
    }
    *out = v;
    return 0;
}

/*
 * Non-negative seconds, possibly fractional, returned as milliseconds (casgi_config_t's unit),
 * rounded to the nearest one. The bound keeps the conversion far from uint64_t overflow.
 */
static int parse_seconds(const char *flag, const char *arg, uint64_t *ms)
{
    char *end;
    double v;

    if (!((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.'))
        return usage_error(flag, arg, "is not a number of seconds");
    errno = 0;
    v = strtod(arg, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v) || v > 1e9)
        return usage_error(flag, arg, "is not a number of seconds in 0..1e9");
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

/*
 * NAME:VALUE as Uvicorn splits it (at the first colon). Blanks after the colon are dropped, since
 * "Name: value" is how people write headers; the library validates the bytes themselves.
 */
static int add_header(cli_options_t *opts, const char *arg)
{
    const char *colon = strchr(arg, ':');
    const char *value;
    casgi_header_t *grown;

    if (colon == NULL || colon == arg)
        return usage_error("--header", arg, "is not NAME:VALUE");
    value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;

    grown = realloc(opts->headers, (opts->num_headers + 1) * sizeof(*grown));
    if (grown == NULL) {
        fprintf(stderr, "casgi: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    opts->headers = grown;
    opts->headers[opts->num_headers].name = (casgi_bytes_t){arg, (size_t)(colon - arg)};
    opts->headers[opts->num_headers].value = CASGI_STR(value);
    opts->num_headers++;
    opts->cfg.headers = opts->headers;
    opts->cfg.num_headers = opts->num_headers;
    return 0;
}

static int parse_lifespan(const char *arg, casgi_lifespan_mode_t *out)
{
    if (strcmp(arg, "auto") == 0)
        *out = CASGI_LIFESPAN_AUTO;
    else if (strcmp(arg, "on") == 0)
        *out = CASGI_LIFESPAN_ON;
    else if (strcmp(arg, "off") == 0)
        *out = CASGI_LIFESPAN_OFF;
    else
        return usage_error("--lifespan", arg, "is not one of auto, on, off");
    return 0;
}

/*
 * --ws: Uvicorn picks an implementation (websockets, websockets-sansio, wsproto) or none. casgi
 * has one, so every implementation name means "on", and scripts written for Uvicorn still run.
 */
static int parse_ws(const char *arg, int *out)
{
    static const char *const on[] = {"auto", "websockets", "websockets-sansio", "wsproto"};
    size_t i;

    if (strcmp(arg, "none") == 0) {
        *out = 0;
        return 0;
    }
    for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
        if (strcmp(arg, on[i]) == 0) {
            *out = 1;
            return 0;
        }
    }
    return usage_error("--ws", arg, "is not one of auto, none, websockets, wsproto");
}

/* The words click's BOOLEAN accepts, in any case: 1 for true, 0 for false, -1 for neither. */
static int bool_word(const char *arg)
{
    static const char *const yes[] = {"1", "true", "t", "yes", "y", "on"};
    static const char *const no[] = {"0", "false", "f", "no", "n", "off"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(arg, yes[i]) == 0)
            return 1;
        if (strcasecmp(arg, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* One option; returns CLI_RUN, CLI_EXIT_OK (help/version printed) or an error status. */
static int apply(cli_options_t *opts, int opt, const char *arg)
{
    casgi_config_t *cfg = &opts->cfg;
    uint64_t v = 0;
    int rc = 0;

    switch (opt) {
    case OPT_HOST: opts->host = arg; break;
    case OPT_PORT:
        if ((rc = parse_uint("--port", arg, 0, 65535, &v)) == 0)
            opts->port = (int)v;
        break;
    case OPT_UDS:
        if (arg[0] == '\0')
            return usage_error("--uds", arg, "is not a socket path");
        opts->uds = arg;
        break;
    case OPT_FD:
        if ((rc = parse_uint("--fd", arg, 0, INT_MAX, &v)) == 0)
            opts->fd = (int)v;
        break;
    case OPT_ROOT_PATH: cfg->root_path = arg; break;
    case OPT_LIFESPAN: rc = parse_lifespan(arg, &cfg->lifespan); break;
    case OPT_LOG_LEVEL:
        if (casgi_log_level_parse(arg, &cfg->log_level) != 0)
            rc = usage_error("--log-level", arg,
                             "is not one of trace, debug, info, warning, error, critical");
        break;
    case OPT_ACCESS_LOG:
    case OPT_NO_ACCESS_LOG: cfg->access_log = opt == OPT_ACCESS_LOG; break;
    /*
     * Uvicorn's 0 means "do not wait". casgi rejects a zero keep-alive and reads a zero graceful
     * shutdown as "wait forever", so 1 ms is the nearest faithful translation of both.
     */
    case OPT_TIMEOUT_KEEP_ALIVE:
        if ((rc = parse_seconds("--timeout-keep-alive", arg, &v)) == 0)
            cfg->timeout_keep_alive = v == 0 ? 1 : v;
        break;
    case OPT_TIMEOUT_GRACEFUL_SHUTDOWN:
        if ((rc = parse_seconds("--timeout-graceful-shutdown", arg, &v)) == 0)
            cfg->timeout_graceful_shutdown = v == 0 ? 1 : v;
        break;
    case OPT_LIMIT_CONCURRENCY:
        if ((rc = parse_uint("--limit-concurrency", arg, 0, UINT_MAX, &v)) == 0)
            cfg->limit_concurrency = (unsigned)v;
        break;
    case OPT_LIMIT_MAX_REQUESTS:
        rc = parse_uint("--limit-max-requests", arg, 0, UINT64_MAX, &cfg->limit_max_requests);
        break;
    case OPT_BACKLOG:
        if ((rc = parse_uint("--backlog", arg, 1, INT_MAX, &v)) == 0)
            cfg->backlog = (int)v;
        break;
    case OPT_HEADER: rc = add_header(opts, arg); break;
    case OPT_SERVER_HEADER:
    case OPT_NO_SERVER_HEADER: cfg->server_header = opt == OPT_SERVER_HEADER; break;
    case OPT_DATE_HEADER:
    case OPT_NO_DATE_HEADER: cfg->date_header = opt == OPT_DATE_HEADER; break;
    case OPT_MAX_BODY_SIZE:
        rc = parse_uint("--max-body-size", arg, 0, UINT64_MAX, &cfg->max_body_size);
        break;
    case OPT_TIMEOUT_REQUEST_HEADER:
        rc = parse_seconds("--timeout-request-header", arg, &cfg->timeout_request_header);
        break;
    case OPT_MAX_REQUEST_HEAD:
        if ((rc = parse_uint("--max-request-head", arg, 0, SIZE_MAX, &v)) == 0)
            cfg->max_request_head = (size_t)v;
        break;
    case OPT_MAX_URL:
        if ((rc = parse_uint("--max-url", arg, 0, SIZE_MAX, &v)) == 0)
            cfg->max_url = (size_t)v;
        opts->max_url_set = 1;
        break;
    case OPT_WS: rc = parse_ws(arg, &cfg->ws); break;
    case OPT_WS_MAX_SIZE:
        rc = parse_uint("--ws-max-size", arg, 1, UINT64_MAX, &cfg->ws_max_size);
        break;
    case OPT_WS_MAX_QUEUE:
        if ((rc = parse_uint("--ws-max-queue", arg, 1, UINT_MAX, &v)) == 0)
            cfg->ws_max_queue = (unsigned)v;
        break;
    case OPT_WS_PING_INTERVAL:
        rc = parse_seconds("--ws-ping-interval", arg, &cfg->ws_ping_interval);
        break;
    /* A zero timeout would close every connection at its first ping; say how to mean "off". */
    case OPT_WS_PING_TIMEOUT:
        if ((rc = parse_seconds("--ws-ping-timeout", arg, &v)) == 0 && v == 0)
            rc = usage_error("--ws-ping-timeout", arg,
                             "must be positive (--ws-ping-interval 0 turns pings off)");
        if (rc == 0)
            cfg->ws_ping_timeout = v;
        break;
    case OPT_WS_PER_MESSAGE_DEFLATE:
        /* arg is NULL for the bare flag (cli_parse() has already taken a separate value). */
        if (arg == NULL)
            cfg->ws_per_message_deflate = 1;
        else if (bool_word(arg) >= 0)
            cfg->ws_per_message_deflate = bool_word(arg);
        else
            rc = usage_error("--ws-per-message-deflate", arg, "is not a boolean (true or false)");
        break;
    case OPT_NO_WS_PER_MESSAGE_DEFLATE: cfg->ws_per_message_deflate = 0; break;
    case OPT_WS_DEFLATE_WINDOW_BITS:
        if ((rc = parse_uint("--ws-deflate-window-bits", arg, 9, 15, &v)) == 0)
            cfg->ws_deflate_window_bits = (int)v;
        break;
    case OPT_WS_DEFLATE_MEM_LEVEL:
        if ((rc = parse_uint("--ws-deflate-mem-level", arg, 1, 9, &v)) == 0)
            cfg->ws_deflate_mem_level = (int)v;
        break;
    case OPT_WS_DEFLATE_THRESHOLD:
        if ((rc = parse_uint("--ws-deflate-threshold", arg, 0, SIZE_MAX, &v)) == 0)
            cfg->ws_deflate_threshold = (size_t)v;
        break;
    case OPT_HTTP2: cfg->http2 = 1; break;
    case OPT_NO_HTTP2: cfg->http2 = 0; break;
    case OPT_H2_MAX_CONCURRENT_STREAMS:
        if ((rc = parse_uint("--h2-max-concurrent-streams", arg, 1, UINT32_MAX, &v)) == 0)
            cfg->h2_max_concurrent_streams = (unsigned)v;
        break;
    case OPT_H2_STREAM_WINDOW:
        if ((rc = parse_uint("--h2-stream-window", arg, 1, 0x7fffffff, &v)) == 0)
            cfg->h2_stream_window = (uint32_t)v;
        break;
    case OPT_H2_MAX_RESETS:
        if ((rc = parse_uint("--h2-max-resets", arg, 0, UINT32_MAX, &v)) == 0)
            cfg->h2_max_resets = (unsigned)v;
        break;
    case OPT_HELP: fputs(usage_text, stdout); return CLI_EXIT_OK;
    case OPT_VERSION: printf("casgi %s\n", casgi_version_string()); return CLI_EXIT_OK;
    default:
        rc = CLI_EXIT_USAGE; /* unreachable: getopt only returns what the table holds */
        break;
    }
    return rc == 0 ? CLI_RUN : rc;
}

void cli_options_init(cli_options_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->host = "127.0.0.1";
    opts->port = 8000;
    opts->fd = -1;
    casgi_config_init(&opts->cfg);
}

int cli_parse(cli_options_t *opts, int argc, char **argv)
{
    int opt;
    int rc;

    /* Messages are ours (one line, flag named as typed), so silence getopt's. */
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        if (opt == '?' && optopt != 0) {
            char flag[3] = {'-', (char)optopt, '\0'};
            return usage_error(flag, NULL, "no such option (try 'casgi --help')");
        }
        if (opt == '?')
            return usage_error(argv[optind - 1], NULL, "no such option (try 'casgi --help')");
        if (opt == ':')
            return usage_error(argv[optind - 1], NULL, "requires a value");
        /* "--ws-per-message-deflate false" (Uvicorn) as well as the bare flag: a following
         * boolean word is its value. Advancing optind is what getopt does for a separate
         * required value, so its permutation of non-options stays intact. */
        if (opt == OPT_WS_PER_MESSAGE_DEFLATE && optarg == NULL && optind < argc &&
            bool_word(argv[optind]) >= 0)
            optarg = argv[optind++];
        rc = apply(opts, opt, optarg);
        if (rc != CLI_RUN)
            return rc;
    }

    if (optind >= argc)
        return usage_error("APP", NULL, "missing path/to/app.so[:symbol] (try 'casgi --help')");
    if (optind + 1 < argc)
        return usage_error(argv[optind + 1], NULL, "unexpected extra argument");
    opts->app_spec = argv[optind];

    /* The URL is part of the head, so a smaller head alone would fail validation; follow it. */
    if (!opts->max_url_set && opts->cfg.max_url > opts->cfg.max_request_head)
        opts->cfg.max_url = opts->cfg.max_request_head;

    /* Uvicorn silently prefers one; naming both is more likely a mistake than a plan. */
    if (opts->uds != NULL && opts->fd >= 0)
        return usage_error("--uds", NULL, "cannot be combined with --fd");
    return CLI_RUN;
}

void cli_options_close(cli_options_t *opts)
{
    free(opts->headers);
    opts->headers = NULL;
    opts->num_headers = 0;
    opts->cfg.headers = NULL;
    opts->cfg.num_headers = 0;
}
