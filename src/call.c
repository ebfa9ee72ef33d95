#include <netinet/in.h>
#include <stdio.h>

#include "call.h"
#include "headers.h"

void casgi__call_init(casgi_call_t *call, const casgi__call_ops_t *ops, casgi_server_t *server)
{
    memset(call, 0, sizeof(*call));
    call->ops = ops;
    call->server = server;
}

void casgi__call_start(casgi_call_t *call)
{
    call->scope.state = call->server->state;
    call->server->app.entry(call, &call->scope, call->server->app.data);
}

void casgi__call_deliver(casgi_call_t *call, const casgi_event_t *event)
{
    casgi_receive_cb cb = call->recv_cb;
    CASGI_ASSERT(cb != NULL);
    call->recv_cb = NULL;
    cb(call, 0, event, call->recv_data);
}

casgi__delivered_t casgi__call_deliver_http(casgi_call_t *call, int gone, const casgi__buf_t *body,
                                            int complete, int final_delivered)
{
    if (gone || call->disconnected || call->response == CASGI__RESPONSE_COMPLETE) {
        casgi_event_t ev = {.type = CASGI_EVENT_HTTP_DISCONNECT};
        call->disconnected = 1;
        casgi__call_deliver(call, &ev);
        return CASGI__DELIVERED_DISCONNECT;
    }
    if (final_delivered || (casgi__buf_size(body) == 0 && !complete))
        return CASGI__DELIVERED_NOTHING;
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_REQUEST};
    ev.request.body = (casgi_bytes_t){casgi__buf_data(body), casgi__buf_size(body)};
    ev.request.more_body = !complete;
    casgi__call_deliver(call, &ev);
    return CASGI__DELIVERED_BODY;
}

static int access_logged(const casgi_call_t *call)
{
    return call->server->cfg.access_log && call->server->log.level <= CASGI_LOG_INFO;
}

/* The client field: "host:port", or "-" for a Unix-socket client, which has no address. */
static void client_text(const casgi_scope_t *s, char out[INET6_ADDRSTRLEN + 8])
{
    if (s->client.host)
        snprintf(out, INET6_ADDRSTRLEN + 8, "%s:%d", s->client.host, s->client.port);
    else
        memcpy(out, "-", 2);
}

void casgi__call_log_request(const casgi_call_t *call, casgi_bytes_t target, uint64_t start)
{
    if (!access_logged(call))
        return;
    const casgi_scope_t *s = &call->scope;
    char client[INET6_ADDRSTRLEN + 8];
    client_text(s, client);
    double ms = (double)(uv_hrtime() - start) / 1e6;
    casgi__log_write(&call->server->log, CASGI_LOG_INFO, 1, "%s - \"%.*s %.*s HTTP/%s\" %d %.3fms",
                     client, (int)s->method.len, s->method.base, (int)target.len, target.base,
                     s->http_version, call->status, ms);
}

void casgi__call_log_websocket(const casgi_call_t *call, const char *outcome)
{
    if (!access_logged(call))
        return;
    const casgi_scope_t *s = &call->scope;
    char client[INET6_ADDRSTRLEN + 8];
    client_text(s, client);
    casgi__log_write(&call->server->log, CASGI_LOG_INFO, 1, "%s - \"WebSocket %.*s\" [%s]", client,
                     (int)s->raw_path.len, s->raw_path.base, outcome);
}

void casgi__call_send_done(casgi_call_t *call, int status)
{
    casgi_send_cb cb = call->send_cb;
    if (cb == NULL)
        return;
    call->send_cb = NULL;
    cb(call, status, call->send_data);
}

void casgi__call_cancel(casgi_call_t *call)
{
    if (call->recv_cb) {
        casgi_receive_cb cb = call->recv_cb;
        call->recv_cb = NULL;
        cb(call, CASGI_ECANCELED, NULL, call->recv_data);
    }
    casgi__call_send_done(call, CASGI_ECANCELED);
}

int casgi_receive(casgi_call_t *call, casgi_receive_cb cb, void *data)
{
    if (call == NULL || cb == NULL || call->ended)
        return CASGI_ESTATE;
    if (call->recv_cb)
        return CASGI_EBUSY;
    call->recv_cb = cb;
    call->recv_data = data;
    call->ops->wake(call);
    return 0;
}

/* The ASGI http send rules (spec 2.5): start once, then body, then trailers if announced. */
static int check_http_order(const casgi_call_t *call, const casgi_event_t *ev)
{
    switch (ev->type) {
    case CASGI_EVENT_HTTP_RESPONSE_START:
        if (call->response != CASGI__RESPONSE_NONE)
            return CASGI_ESTATE;
        if (ev->start.status < 200 || ev->start.status > 999)
            return CASGI_ESTATUS;
        return casgi__headers_validate(ev->start.headers, ev->start.num_headers);
    case CASGI_EVENT_HTTP_RESPONSE_BODY:
        if (call->response != CASGI__RESPONSE_STARTED)
            return CASGI_ESTATE;
        if (ev->body.body.len > 0 && ev->body.body.base == NULL)
            return CASGI_EEVENT;
        return 0;
    case CASGI_EVENT_HTTP_RESPONSE_TRAILERS:
        if (call->response != CASGI__RESPONSE_TRAILERS)
            return CASGI_ESTATE;
        return casgi__headers_validate(ev->trailers.headers, ev->trailers.num_headers);
    case CASGI_EVENT_HTTP_RESPONSE_EARLY_HINT:
        if (!(call->scope.extensions & CASGI_EXT_HTTP_RESPONSE_EARLY_HINT))
            return CASGI_EEVENT;
        if (call->response != CASGI__RESPONSE_NONE)
            return CASGI_ESTATE;
        for (size_t i = 0; i < ev->early_hint.num_links; i++)
            if (ev->early_hint.links[i].len == 0 ||
                !casgi__headers_valid_value(ev->early_hint.links[i]))
                return CASGI_EHEADER;
        return 0;
    case CASGI_EVENT_HTTP_RESPONSE_PUSH:
        if (!(call->scope.extensions & CASGI_EXT_HTTP_RESPONSE_PUSH))
            return CASGI_EEVENT;
        if (call->response != CASGI__RESPONSE_NONE && call->response != CASGI__RESPONSE_STARTED)
            return CASGI_ESTATE;
        if (ev->push.path.len == 0 || ev->push.path.base[0] != '/' ||
            !casgi__headers_valid_value(ev->push.path))
            return CASGI_EEVENT;
        return casgi__headers_validate(ev->push.headers, ev->push.num_headers);
    default: return CASGI_EEVENT;
    }
}

static void advance_http(casgi_call_t *call, const casgi_event_t *ev)
{
    switch (ev->type) {
    case CASGI_EVENT_HTTP_RESPONSE_START:
        call->response = CASGI__RESPONSE_STARTED;
        call->trailers_announced = ev->start.trailers != 0;
        call->status = ev->start.status;
        break;
    case CASGI_EVENT_HTTP_RESPONSE_BODY:
        if (!ev->body.more_body)
            call->response =
                call->trailers_announced ? CASGI__RESPONSE_TRAILERS : CASGI__RESPONSE_COMPLETE;
        break;
    case CASGI_EVENT_HTTP_RESPONSE_TRAILERS:
        if (!ev->trailers.more_trailers)
            call->response = CASGI__RESPONSE_COMPLETE;
        break;
    default: break;
    }
}

int casgi_send(casgi_call_t *call, const casgi_event_t *event, casgi_send_cb cb, void *data)
{
    if (call == NULL || event == NULL || call->ended)
        return CASGI_ESTATE;
    if (cb != NULL && call->send_cb != NULL)
        return CASGI_EBUSY;
    int http = call->scope.type == CASGI_SCOPE_HTTP;
    if (http) {
        int err = check_http_order(call, event);
        if (err)
            return err;
    }
    if (call->disconnected)
        return CASGI_EDISCONNECTED;
    int err = call->ops->send(call, event);
    if (err)
        return err;
    if (http)
        advance_http(call, event);
    if (cb != NULL) {
        call->send_cb = cb;
        call->send_data = data;
        call->ops->wake(call);
    }
    return 0;
}

/* Uvicorn's run_asgi policy, in one place for every protocol. */
static void apply_failure_policy(casgi_call_t *call, int error)
{
    casgi__logger_t *log = &call->server->log;
    if (error)
        CASGI_LOG(log, CASGI_LOG_ERROR, "Exception in ASGI application: %s (%s)",
                  casgi_strerror(error), casgi_err_name(error));
    if (call->disconnected)
        return;
    if (call->response == CASGI__RESPONSE_NONE) {
        if (!error)
            CASGI_LOG(log, CASGI_LOG_ERROR, "ASGI callable returned without starting response.");
        static const casgi_header_t headers[] = {
            {CASGI_BYTES("content-type"), CASGI_BYTES("text/plain; charset=utf-8")},
            {CASGI_BYTES("connection"), CASGI_BYTES("close")},
        };
        casgi_event_t start = {.type = CASGI_EVENT_HTTP_RESPONSE_START};
        start.start.status = 500;
        start.start.headers = headers;
        start.start.num_headers = ARRAY_SIZE(headers);
        casgi_event_t body = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};
        body.body.body = CASGI_BYTES("Internal Server Error");
        if (call->ops->send(call, &start) == 0) {
            advance_http(call, &start);
            if (call->ops->send(call, &body) == 0)
                advance_http(call, &body);
        }
    } else if (call->response != CASGI__RESPONSE_COMPLETE) {
        if (!error)
            CASGI_LOG(log, CASGI_LOG_ERROR, "ASGI callable returned without completing response.");
        call->ops->abort(call);
    }
}

int casgi_call_end(casgi_call_t *call, int error)
{
    if (call == NULL || call->ended)
        return CASGI_ESTATE;
    call->ended = 1;
    casgi__call_cancel(call);
    if (call->scope.type == CASGI_SCOPE_HTTP)
        apply_failure_policy(call, error);
    call->ops->end(call, error);
    return 0;
}

void *casgi_call_get_data(const casgi_call_t *call)
{
    return call->user_data;
}
void casgi_call_set_data(casgi_call_t *call, void *data)
{
    call->user_data = data;
}
uv_loop_t *casgi_call_get_loop(const casgi_call_t *call)
{
    return call->server->loop;
}
void casgi_call_set_state(casgi_call_t *call, void *state)
{
    call->server->state = state;
}

const char *casgi_event_type_name(casgi_event_type_t type)
{
    switch (type) {
    case CASGI_EVENT_HTTP_REQUEST: return "http.request";
    case CASGI_EVENT_HTTP_DISCONNECT: return "http.disconnect";
    case CASGI_EVENT_HTTP_RESPONSE_START: return "http.response.start";
    case CASGI_EVENT_HTTP_RESPONSE_BODY: return "http.response.body";
    case CASGI_EVENT_HTTP_RESPONSE_TRAILERS: return "http.response.trailers";
    case CASGI_EVENT_LIFESPAN_STARTUP: return "lifespan.startup";
    case CASGI_EVENT_LIFESPAN_SHUTDOWN: return "lifespan.shutdown";
    case CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE: return "lifespan.startup.complete";
    case CASGI_EVENT_LIFESPAN_STARTUP_FAILED: return "lifespan.startup.failed";
    case CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE: return "lifespan.shutdown.complete";
    case CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED: return "lifespan.shutdown.failed";
    case CASGI_EVENT_WEBSOCKET_CONNECT: return "websocket.connect";
    case CASGI_EVENT_WEBSOCKET_RECEIVE: return "websocket.receive";
    case CASGI_EVENT_WEBSOCKET_DISCONNECT: return "websocket.disconnect";
    case CASGI_EVENT_WEBSOCKET_ACCEPT: return "websocket.accept";
    case CASGI_EVENT_WEBSOCKET_SEND: return "websocket.send";
    case CASGI_EVENT_WEBSOCKET_CLOSE: return "websocket.close";
    case CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START: return "websocket.http.response.start";
    case CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_BODY: return "websocket.http.response.body";
    case CASGI_EVENT_HTTP_RESPONSE_EARLY_HINT: return "http.response.early_hint";
    case CASGI_EVENT_HTTP_RESPONSE_PUSH: return "http.response.push";
    }
    return "?";
}
