#ifndef CASGI_CONFIG_H
#define CASGI_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "asgi.h"
#include "log.h"

typedef enum {
    CASGI_LIFESPAN_AUTO =
        0,              /* run it; an app that fails before answering startup is not an error */
    CASGI_LIFESPAN_ON,  /* run it; any failure is fatal to start-up */
    CASGI_LIFESPAN_OFF, /* never call the app with a lifespan scope */
} casgi_lifespan_mode_t;

typedef struct casgi_server_s casgi_server_t;

/* Called once when limit_max_requests is reached; the embedder decides whether to shut down. */
typedef void (*casgi_limit_cb)(casgi_server_t *server, void *data);

/*
 * Server settings: plain data the embedder fills after casgi_config_init(). The server copies what
 * it needs in casgi_server_new(), so the struct and its strings may be freed afterwards. Durations
 * are milliseconds; a limit of 0 means "no limit". Defaults follow Uvicorn where it has a
 * counterpart.
 */
typedef struct casgi_config_s {
    /* scope */
    const char *root_path; /* ASGI root_path; default "" */
    void *state;           /* initial shared state pointer for scopes; default NULL */

    /* lifespan */
    casgi_lifespan_mode_t lifespan; /* default AUTO */

    /* logging */
    casgi_log_level_t log_level; /* default INFO */
    int access_log;              /* one line per request at INFO; default 1 */
    casgi_log_fn log_fn;         /* default: stderr in Uvicorn's format */
    void *log_data;

    /* timeouts */
    uint64_t timeout_keep_alive;     /* idle keep-alive connections; default 5000 */
    uint64_t timeout_request_header; /* deadline for a complete request head; default 10000 */
    /* How long shutdown lets open connections finish before closing them; 0 = forever. The apps
     * then see http.disconnect, and shutdown still waits for them to end their calls. Default 0. */
    uint64_t timeout_graceful_shutdown;

    /* limits */
    /* Checked when a request head completes: more open connections than this, or this many calls
     * running, and the request gets a 503 (Uvicorn's rule). Connections are always accepted. */
    unsigned limit_concurrency;  /* default 0 */
    uint64_t limit_max_requests; /* limit_cb fires once after this many requests; default 0 */
    casgi_limit_cb limit_cb;
    void *limit_data;
    int backlog;             /* listen(2) backlog; default 2048 */
    uint64_t max_body_size;  /* request body bytes, beyond which: 413; default 0 */
    size_t max_request_head; /* request line + headers, beyond which: 431; default 65536 */
    size_t max_url;          /* request target, beyond which: 414; default 8192 */
    /* Per connection: output buffered beyond this holds back send callbacks; request body (and
     * unparsed input) buffered beyond this pauses reading until the app receives. */
    size_t high_water_mark; /* default 65536 */

    /* websocket (Uvicorn's --ws-* flags) */
    int ws;                      /* 1: upgrade requests become websocket scopes; 0: --ws none */
    uint64_t ws_max_size;        /* largest message, beyond which: close 1009; default 16 MiB */
    unsigned ws_max_queue;       /* received messages buffered before reading pauses; default 32 */
    uint64_t ws_ping_interval;   /* ms between server pings; 0 = none; default 20000 */
    uint64_t ws_ping_timeout;    /* ms to wait for the pong, then close 1011; default 20000 */
    int ws_per_message_deflate;  /* negotiate permessage-deflate (RFC 7692); default 1 */
    int ws_deflate_window_bits;  /* server_max_window_bits we use, 9..15; default 15 */
    int ws_deflate_mem_level;    /* zlib memLevel, 1..9; default 8 */
    size_t ws_deflate_threshold; /* messages shorter than this go out uncompressed; default 64 */

    /* HTTP/2 (cleartext h2c: prior knowledge on every TCP and Unix listener, and Upgrade: h2c) */
    int http2;                          /* 1: serve HTTP/2; 0: HTTP/1.1 only; default 1 */
    unsigned h2_max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS; default 100 */
    /* Request body a stream may have in flight (its receive window), replenished as the app
     * receives; bounds what a slow app buffers per stream. Default 65535 (RFC 9113's initial). */
    uint32_t h2_stream_window;
    /* Streams the client may reset per 10 s before the connection gets GOAWAY ENHANCE_YOUR_CALM
     * (the rapid-reset attack, CVE-2023-44487); 0 = no limit; default 200. */
    unsigned h2_max_resets;

    /* response headers */
    int server_header;             /* "server: casgi"; default 1 */
    int date_header;               /* "date: <IMF-fixdate>", cached per second; default 1 */
    const casgi_header_t *headers; /* extra default headers on every response */
    size_t num_headers;
} casgi_config_t;

/* Fills every field with its default. */
CASGI_EXTERN void casgi_config_init(casgi_config_t *cfg);

/*
 * Checks ranges and header bytes. Returns 0 or CASGI_ECONFIG; on failure, when `why` is not NULL,
 * *why points to a static human-readable reason.
 */
CASGI_EXTERN int casgi_config_validate(const casgi_config_t *cfg, const char **why);

#endif
