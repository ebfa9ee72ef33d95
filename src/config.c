#include "headers.h"
#include "log.h"

void casgi_config_init(casgi_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->root_path = "";
    cfg->lifespan = CASGI_LIFESPAN_AUTO;
    cfg->log_level = CASGI_LOG_INFO;
    cfg->access_log = 1;
    cfg->timeout_keep_alive = 5000;
    cfg->timeout_request_header = 10000;
    cfg->timeout_graceful_shutdown = 0;
    cfg->backlog = 2048;
    cfg->max_request_head = 65536;
    cfg->max_url = 8192;
    cfg->high_water_mark = 65536;
    cfg->ws = 1;
    cfg->ws_max_size = 16 * 1024 * 1024;
    cfg->ws_max_queue = 32;
    cfg->ws_ping_interval = 20000;
    cfg->ws_ping_timeout = 20000;
    cfg->ws_per_message_deflate = 1;
    cfg->ws_deflate_window_bits = 15;
    cfg->ws_deflate_mem_level = 8;
    cfg->ws_deflate_threshold = 64;
    cfg->http2 = 1;
    cfg->h2_max_concurrent_streams = 100;
    cfg->h2_stream_window = 65535;
    cfg->h2_max_resets = 200;
    cfg->server_header = 1;
    cfg->date_header = 1;
}

int casgi_config_validate(const casgi_config_t *cfg, const char **why)
{
    const char *reason = NULL;
    if (cfg == NULL)
        reason = "config is NULL";
    else if (cfg->lifespan < CASGI_LIFESPAN_AUTO || cfg->lifespan > CASGI_LIFESPAN_OFF)
        reason = "lifespan must be auto, on or off";
    else if (cfg->log_level < CASGI_LOG_TRACE || cfg->log_level > CASGI_LOG_CRITICAL)
        reason = "log_level out of range";
    else if (cfg->backlog < 1)
        reason = "backlog must be at least 1";
    else if (cfg->max_request_head < 64)
        reason = "max_request_head must be at least 64 bytes";
    else if (cfg->max_url < 1 || cfg->max_url > cfg->max_request_head)
        reason = "max_url must be between 1 and max_request_head";
    else if (cfg->high_water_mark < 1024)
        reason = "high_water_mark must be at least 1024 bytes";
    else if (cfg->timeout_keep_alive == 0)
        reason = "timeout_keep_alive must be positive";
    else if (cfg->timeout_request_header == 0)
        reason = "timeout_request_header must be positive";
    else if (cfg->ws_ping_interval > 0 && cfg->ws_ping_timeout == 0)
        reason = "ws_ping_timeout must be positive when pings are on (ws_ping_interval > 0)";
    else if (cfg->ws_max_size < 1 || cfg->ws_max_queue < 1)
        reason = "ws_max_size and ws_max_queue must be positive";
    else if (cfg->ws_deflate_window_bits < 9 || cfg->ws_deflate_window_bits > 15)
        reason = "ws_deflate_window_bits must be between 9 and 15";
    else if (cfg->ws_deflate_mem_level < 1 || cfg->ws_deflate_mem_level > 9)
        reason = "ws_deflate_mem_level must be between 1 and 9";
    else if (cfg->http2 && (cfg->h2_max_concurrent_streams < 1 || cfg->h2_stream_window < 1 ||
                            cfg->h2_stream_window > 0x7fffffff))
        reason = "h2_max_concurrent_streams and h2_stream_window (at most 2^31-1) must be positive";
    else if (cfg->root_path != NULL && cfg->root_path[0] != '\0' && cfg->root_path[0] != '/')
        reason = "root_path must be empty or start with '/'";
    else if (casgi__headers_validate(cfg->headers, cfg->num_headers) != 0)
        reason = "a default header has an invalid name or value";
    if (why != NULL)
        *why = reason;
    return reason ? CASGI_ECONFIG : 0;
}
