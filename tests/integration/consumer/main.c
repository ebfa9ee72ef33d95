/* Embeds an installed casgi: listen on a free port, start, shut down, leave the loop empty. */
#define _GNU_SOURCE
#include <casgi.h>
#include <stdio.h>

static void entry(casgi_call_t *call, const casgi_scope_t *scope, void *data)
{
    casgi_call_end(call, scope->type == CASGI_SCOPE_LIFESPAN ? CASGI_EEVENT : 0);
}

static void on_shutdown(casgi_server_t *server, int status, const char *message, void *data)
{
    *(int *)data = status == 0 ? 2 : -1;
}

static void on_start(casgi_server_t *server, int status, const char *message, void *data)
{
    *(int *)data = status == 0 ? 1 : -1;
    if (casgi_server_shutdown(server, on_shutdown, data) != 0)
        *(int *)data = -1;
}

int main(void)
{
    uv_loop_t loop;
    casgi_config_t cfg;
    casgi_app_t app = {.entry = entry};
    casgi_server_t *server;
    int state = 0;

    uv_loop_init(&loop);
    casgi_config_init(&cfg);
    cfg.log_level = CASGI_LOG_WARNING;
    if (casgi_server_new(&loop, &cfg, &app, &server) != 0 ||
        casgi_server_listen_tcp(server, "127.0.0.1", 0) != 0 ||
        casgi_server_start(server, on_start, &state) != 0)
        return 1;
    int port = casgi_server_get_port(server, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    casgi_server_free(server);
    int closed = uv_loop_close(&loop);
    printf("casgi %s port %d state %d loop_close %d\n", casgi_version_string(), port > 0, state,
           closed);
    return state == 2 && closed == 0 && port > 0 ? 0 : 1;
}
