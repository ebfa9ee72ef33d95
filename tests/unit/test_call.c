/*
 * The protocol-agnostic ASGI call (src/call.c), driven through a fake ops table that records what
 * the call asks of its protocol. The server is a real one (for its log, app and state) with no
 * listener; each test shuts it down and checks that nothing is left on the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "call.h"

#define MAX_SENT 16
#define MAX_LINES 32

/* What ops->send saw, copied (the event is borrowed). */
typedef struct sent_s {
    casgi_event_type_t type;
    int status;
    int trailers;
    size_t num_headers;
    char body[64];
    size_t body_len;
    int more;
} sent_t;

typedef struct fixture_s {
    uv_loop_t loop;
    casgi_server_t *server;
    int shutdown_cbs;

    char lines[MAX_LINES][256];
    int num_lines;

    casgi_call_t call;
    int seq; /* orders every recorded event */
    sent_t sent[MAX_SENT];
    int sends;
    int send_result; /* what the fake ops->send returns */
    int wakes;
    int aborts, abort_seq;
    int ends, end_error, end_seq;

    int recv_cbs, recv_status, recv_seq;
    casgi_event_type_t recv_type;
    int send_cbs, send_status, send_seq;

    int app_calls;
    const casgi_scope_t *app_scope;
    void *app_data_seen;
} fixture_t;

static fixture_t *fx; /* the current test's fixture, for the ops below */

/* ---- the fake protocol ------------------------------------------------------------------- */

static int fake_send(casgi_call_t *call, const casgi_event_t *ev)
{
    assert_ptr_equal(call, &fx->call);
    fx->seq++;
    if (fx->send_result != 0)
        return fx->send_result;
    assert_true(fx->sends < MAX_SENT);
    sent_t *s = &fx->sent[fx->sends++];
    memset(s, 0, sizeof(*s));
    s->type = ev->type;
    switch (ev->type) {
    case CASGI_EVENT_HTTP_RESPONSE_START:
        s->status = ev->start.status;
        s->trailers = ev->start.trailers;
        s->num_headers = ev->start.num_headers;
        break;
    case CASGI_EVENT_HTTP_RESPONSE_BODY:
        s->body_len = ev->body.body.len;
        if (s->body_len > 0) {
            assert_true(s->body_len < sizeof(s->body));
            memcpy(s->body, ev->body.body.base, s->body_len);
        }
        s->more = ev->body.more_body;
        break;
    case CASGI_EVENT_HTTP_RESPONSE_TRAILERS:
        s->num_headers = ev->trailers.num_headers;
        s->more = ev->trailers.more_trailers;
        break;
    default: break;
    }
    return 0;
}

static void fake_wake(casgi_call_t *call)
{
    assert_ptr_equal(call, &fx->call);
    fx->wakes++;
}

static void fake_abort(casgi_call_t *call)
{
    assert_ptr_equal(call, &fx->call);
    fx->aborts++;
    fx->abort_seq = ++fx->seq;
}

static void fake_end(casgi_call_t *call, int error)
{
    assert_ptr_equal(call, &fx->call);
    fx->ends++;
    fx->end_error = error;
    fx->end_seq = ++fx->seq;
}

static const casgi__call_ops_t fake_ops = {
    .send = fake_send,
    .wake = fake_wake,
    .abort = fake_abort,
    .end = fake_end,
};

static void on_receive(casgi_call_t *call, int status, const casgi_event_t *event, void *data)
{
    assert_ptr_equal(call, &fx->call);
    assert_ptr_equal(data, fx);
    fx->recv_cbs++;
    fx->recv_status = status;
    fx->recv_seq = ++fx->seq;
    if (status == 0) {
        assert_non_null(event);
        fx->recv_type = event->type;
    } else {
        assert_null(event);
    }
}

static void on_send(casgi_call_t *call, int status, void *data)
{
    assert_ptr_equal(call, &fx->call);
    assert_ptr_equal(data, fx);
    fx->send_cbs++;
    fx->send_status = status;
    fx->send_seq = ++fx->seq;
}

static void app_entry(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    fx->app_calls++;
    fx->app_scope = scope;
    fx->app_data_seen = app_data;
}

static void capture_log(void *data, casgi_log_level_t level, int access, const char *line)
{
    fixture_t *f = data;
    if (f->num_lines < MAX_LINES)
        snprintf(f->lines[f->num_lines++], sizeof(f->lines[0]), "%s", line);
}

static int logged(const fixture_t *f, const char *needle)
{
    for (int i = 0; i < f->num_lines; i++)
        if (strstr(f->lines[i], needle))
            return 1;
    return 0;
}

/* ---- fixture ----------------------------------------------------------------------------- */

static int app_data_token;
static int state_token;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.log_fn = capture_log;
    cfg.log_data = f;
    cfg.log_level = CASGI_LOG_DEBUG;
    cfg.state = &state_token;
    casgi_app_t app = {.entry = app_entry, .data = &app_data_token};
    assert_int_equal(casgi_server_new(&f->loop, &cfg, &app, &f->server), 0);
    casgi__call_init(&f->call, &fake_ops, f->server);
    f->call.scope.type = CASGI_SCOPE_HTTP;
    fx = f;
    *state = f;
    return 0;
}

static void on_shutdown(casgi_server_t *server, int status, const char *message, void *data)
{
    fixture_t *f = data;
    assert_int_equal(status, 0);
    f->shutdown_cbs++;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_server_shutdown(f->server, on_shutdown, f), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->shutdown_cbs, 1);
    casgi_server_free(f->server);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    fx = NULL;
    return 0;
}

/* ---- event builders ---------------------------------------------------------------------- */

static casgi_event_t start_event(int status)
{
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_START};
    ev.start.status = status;
    return ev;
}

static casgi_event_t body_event(const char *text, int more)
{
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};
    ev.body.body = CASGI_STR(text);
    ev.body.more_body = more;
    return ev;
}

static casgi_event_t trailers_event(int more)
{
    static const casgi_header_t t[] = {{CASGI_BYTES("x-checksum"), CASGI_BYTES("abc")}};
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_TRAILERS};
    ev.trailers.headers = t;
    ev.trailers.num_headers = 1;
    ev.trailers.more_trailers = more;
    return ev;
}

static int send_ev(fixture_t *f, casgi_event_t ev) { return casgi_send(&f->call, &ev, NULL, NULL); }

/* ---- ordering ---------------------------------------------------------------------------- */

static void test_call_body_before_start_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, body_event("x", 0)), CASGI_ESTATE);
    assert_int_equal(f->sends, 0);
    assert_int_equal(f->seq, 0); /* ops->send was not even attempted */
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
    /* the call is still usable */
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, body_event("x", 0)), 0);
    assert_int_equal(f->sends, 2);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_second_start_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, start_event(404)), CASGI_ESTATE);
    assert_int_equal(f->sends, 1);
    assert_int_equal(f->sent[0].status, 200);
    assert_int_equal(f->call.status, 200);
    assert_int_equal(send_ev(f, body_event("", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_start_with_out_of_range_status_is_rejected(void **state)
{
    fixture_t *f = *state;
    static const int bad[] = {99, 1000, 100, 101, 199, 0, -200};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(send_ev(f, start_event(bad[i])), CASGI_ESTATUS);
    assert_int_equal(f->sends, 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
    assert_int_equal(send_ev(f, start_event(999)), 0);
    assert_int_equal(f->sent[0].status, 999);
    assert_int_equal(send_ev(f, body_event("", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_start_accepts_status_200(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(f->sends, 1);
    assert_int_equal(f->sent[0].type, CASGI_EVENT_HTTP_RESPONSE_START);
    assert_int_equal(f->call.response, CASGI__RESPONSE_STARTED);
    assert_int_equal(send_ev(f, body_event("", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_start_with_splitting_header_is_rejected(void **state)
{
    fixture_t *f = *state;
    casgi_header_t lf[] = {{CASGI_BYTES("x-a"), CASGI_BYTES("one\ntwo")}};
    casgi_header_t crlf[] = {{CASGI_BYTES("location"), CASGI_BYTES("/x\r\nset-cookie: a=b")}};
    casgi_header_t name[] = {{CASGI_BYTES("x a"), CASGI_BYTES("v")}};
    casgi_header_t empty[] = {{{"", 0}, CASGI_BYTES("v")}};
    casgi_header_t *lists[] = {lf, crlf, name, empty};
    for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
        casgi_event_t ev = start_event(200);
        ev.start.headers = lists[i];
        ev.start.num_headers = 1;
        assert_int_equal(send_ev(f, ev), CASGI_EHEADER);
    }
    casgi_event_t ev = start_event(200);
    ev.start.headers = NULL;
    ev.start.num_headers = 2;
    assert_int_equal(send_ev(f, ev), CASGI_EHEADER);
    assert_int_equal(f->sends, 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
    /* a refused start leaves the call unstarted: end() answers 500 */
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->sends, 2);
    assert_int_equal(f->sent[0].status, 500);
}

static void test_call_body_after_final_body_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, body_event("a", 1)), 0);
    assert_int_equal(send_ev(f, body_event("b", 0)), 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_COMPLETE);
    assert_int_equal(send_ev(f, body_event("c", 0)), CASGI_ESTATE);
    assert_int_equal(send_ev(f, body_event("", 0)), CASGI_ESTATE);
    assert_int_equal(send_ev(f, start_event(200)), CASGI_ESTATE);
    assert_int_equal(f->sends, 3);
    assert_int_equal(f->sent[1].body_len, 1);
    assert_int_equal(f->sent[1].more, 1);
    assert_int_equal(f->sent[2].more, 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_body_with_null_base_and_length_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};
    ev.body.body = (casgi_bytes_t){NULL, 5};
    assert_int_equal(send_ev(f, ev), CASGI_EEVENT);
    ev.body.body = (casgi_bytes_t){NULL, 0};
    assert_int_equal(send_ev(f, ev), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_trailers_without_announcing_are_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, trailers_event(0)), CASGI_ESTATE); /* before start */
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, trailers_event(0)), CASGI_ESTATE); /* before the body */
    assert_int_equal(send_ev(f, body_event("x", 0)), 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_COMPLETE); /* nothing announced */
    assert_int_equal(send_ev(f, trailers_event(0)), CASGI_ESTATE);
    assert_int_equal(f->sends, 2);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_announced_trailers_are_rejected_before_the_final_body(void **state)
{
    fixture_t *f = *state;
    casgi_event_t start = start_event(200);
    start.start.trailers = 1;
    assert_int_equal(send_ev(f, start), 0);
    assert_int_equal(send_ev(f, trailers_event(0)), CASGI_ESTATE);
    assert_int_equal(send_ev(f, body_event("x", 1)), 0);
    assert_int_equal(send_ev(f, trailers_event(0)), CASGI_ESTATE);
    assert_int_equal(f->sends, 2);
    assert_int_equal(send_ev(f, body_event("", 0)), 0);
    assert_int_equal(send_ev(f, trailers_event(0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_trailers_after_announced_final_body_complete_the_response(void **state)
{
    fixture_t *f = *state;
    casgi_event_t start = start_event(200);
    start.start.trailers = 1;
    assert_int_equal(send_ev(f, start), 0);
    assert_int_equal(f->sent[0].trailers, 1);
    assert_int_equal(send_ev(f, body_event("data", 0)), 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_TRAILERS); /* not complete yet */
    assert_int_equal(send_ev(f, body_event("more", 0)), CASGI_ESTATE);
    assert_int_equal(send_ev(f, trailers_event(1)), 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_TRAILERS);
    assert_int_equal(send_ev(f, trailers_event(0)), 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_COMPLETE);
    assert_int_equal(send_ev(f, trailers_event(0)), CASGI_ESTATE);
    assert_int_equal(f->sends, 4);
    assert_int_equal(f->sent[2].type, CASGI_EVENT_HTTP_RESPONSE_TRAILERS);
    assert_int_equal(f->sent[2].more, 1);
    assert_int_equal(f->sent[3].more, 0);
    /* complete: ending neither aborts nor answers 500 */
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->sends, 4);
}

static void test_call_unknown_event_type_is_rejected(void **state)
{
    fixture_t *f = *state;
    static const int bad[] = {0,
                              999,
                              -1,
                              CASGI_EVENT_HTTP_REQUEST,
                              CASGI_EVENT_HTTP_DISCONNECT,
                              CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE,
                              CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        casgi_event_t ev = {.type = (casgi_event_type_t)bad[i]};
        assert_int_equal(send_ev(f, ev), CASGI_EEVENT);
    }
    assert_int_equal(f->seq, 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
    assert_int_equal(send_ev(f, start_event(204)), 0);
    assert_int_equal(send_ev(f, body_event("", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_send_after_disconnect_is_rejected(void **state)
{
    fixture_t *f = *state;
    f->call.disconnected = 1;
    assert_int_equal(send_ev(f, start_event(200)), CASGI_EDISCONNECTED);
    assert_int_equal(f->seq, 0);
    assert_int_equal(casgi_send(&f->call,
                                &(casgi_event_t){.type = CASGI_EVENT_HTTP_RESPONSE_START,
                                                 .start = {.status = 200}},
                                on_send, f),
                     CASGI_EDISCONNECTED);
    assert_int_equal(f->wakes, 0); /* an error: the callback never runs */
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->send_cbs, 0);
}

static void test_call_send_after_disconnect_mid_response_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    f->call.disconnected = 1;
    assert_int_equal(send_ev(f, body_event("x", 0)), CASGI_EDISCONNECTED);
    assert_int_equal(f->sends, 1);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->aborts, 0); /* nobody left to protect from a truncated body */
}

static void test_call_protocol_send_failure_is_returned_and_state_unchanged(void **state)
{
    fixture_t *f = *state;
    f->send_result = CASGI_ENOMEM;
    assert_int_equal(casgi_send(&f->call,
                                &(casgi_event_t){.type = CASGI_EVENT_HTTP_RESPONSE_START,
                                                 .start = {.status = 200}},
                                on_send, f),
                     CASGI_ENOMEM);
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
    assert_null(f->call.send_cb);
    assert_int_equal(f->wakes, 0);
    f->send_result = 0;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, body_event("", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->send_cbs, 0);
}

/* ---- callbacks --------------------------------------------------------------------------- */

static void test_call_second_send_with_callback_while_pending_is_busy(void **state)
{
    fixture_t *f = *state;
    casgi_event_t start = start_event(200);
    casgi_event_t body = body_event("x", 0);
    assert_int_equal(casgi_send(&f->call, &start, on_send, f), 0);
    assert_int_equal(casgi_send(&f->call, &body, on_send, f), CASGI_EBUSY);
    assert_int_equal(f->sends, 1); /* the refused body did not reach the wire */
    assert_int_equal(f->call.response, CASGI__RESPONSE_STARTED);
    casgi__call_send_done(&f->call, 0);
    assert_int_equal(f->send_cbs, 1);
    assert_int_equal(casgi_send(&f->call, &body, on_send, f), 0);
    casgi__call_send_done(&f->call, 0);
    assert_int_equal(f->send_cbs, 2);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->send_cbs, 2);
}

static void test_call_second_receive_while_pending_is_busy(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_receive(&f->call, on_receive, f), 0);
    assert_int_equal(casgi_receive(&f->call, on_receive, f), CASGI_EBUSY);
    assert_int_equal(f->wakes, 1);
    casgi__call_deliver(&f->call, &(casgi_event_t){.type = CASGI_EVENT_HTTP_REQUEST});
    assert_int_equal(f->recv_cbs, 1);
    assert_int_equal(f->recv_status, 0);
    assert_int_equal(f->recv_type, CASGI_EVENT_HTTP_REQUEST);
    /* completed: the next receive is accepted */
    assert_int_equal(casgi_receive(&f->call, on_receive, f), 0);
    assert_int_equal(f->wakes, 2);
    casgi__call_deliver(&f->call, &(casgi_event_t){.type = CASGI_EVENT_HTTP_DISCONNECT});
    assert_int_equal(f->recv_cbs, 2);
    assert_int_equal(f->recv_type, CASGI_EVENT_HTTP_DISCONNECT);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_receive_without_callback_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_receive(&f->call, NULL, f), CASGI_ESTATE);
    assert_int_equal(f->wakes, 0);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_send_and_receive_never_call_back_synchronously(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_receive(&f->call, on_receive, f), 0);
    assert_int_equal(f->recv_cbs, 0);
    assert_int_equal(f->wakes, 1);
    casgi_event_t start = start_event(200);
    assert_int_equal(casgi_send(&f->call, &start, on_send, f), 0);
    assert_int_equal(f->send_cbs, 0);
    assert_int_equal(f->wakes, 2);
    assert_int_equal(f->sends, 1);
    /* a send without a callback does not ask to be woken */
    casgi_event_t body = body_event("chunk", 1);
    assert_int_equal(casgi_send(&f->call, &body, NULL, NULL), 0);
    assert_int_equal(f->wakes, 2);
    assert_int_equal(f->recv_cbs + f->send_cbs, 0);

    /* the protocol completes them later, each exactly once */
    casgi__call_send_done(&f->call, 0);
    assert_int_equal(f->send_cbs, 1);
    assert_int_equal(f->send_status, 0);
    casgi__call_send_done(&f->call, 0);
    assert_int_equal(f->send_cbs, 1);
    casgi__call_deliver(&f->call, &(casgi_event_t){.type = CASGI_EVENT_HTTP_REQUEST});
    assert_int_equal(f->recv_cbs, 1);
    assert_null(f->call.recv_cb);

    body = body_event("", 0);
    assert_int_equal(send_ev(f, body), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->recv_cbs, 1);
    assert_int_equal(f->send_cbs, 1);
}

static void test_call_end_cancels_pending_callbacks_exactly_once(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_receive(&f->call, on_receive, f), 0);
    casgi_event_t start = start_event(200);
    assert_int_equal(casgi_send(&f->call, &start, on_send, f), 0);
    casgi_event_t body = body_event("", 0);
    assert_int_equal(send_ev(f, body), 0);

    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->recv_cbs, 1);
    assert_int_equal(f->recv_status, CASGI_ECANCELED);
    assert_int_equal(f->send_cbs, 1);
    assert_int_equal(f->send_status, CASGI_ECANCELED);
    /* both completed before the protocol was told the call ended */
    assert_int_equal(f->ends, 1);
    assert_true(f->recv_seq < f->end_seq);
    assert_true(f->send_seq < f->end_seq);

    /* nothing is left to complete */
    casgi__call_cancel(&f->call);
    casgi__call_send_done(&f->call, 0);
    assert_int_equal(f->recv_cbs, 1);
    assert_int_equal(f->send_cbs, 1);
}

static void test_call_cancel_completes_both_callbacks_with_canceled(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_receive(&f->call, on_receive, f), 0);
    casgi_event_t start = start_event(200);
    assert_int_equal(casgi_send(&f->call, &start, on_send, f), 0);
    casgi__call_cancel(&f->call);
    assert_int_equal(f->recv_cbs, 1);
    assert_int_equal(f->recv_status, CASGI_ECANCELED);
    assert_int_equal(f->send_cbs, 1);
    assert_int_equal(f->send_status, CASGI_ECANCELED);
    casgi__call_cancel(&f->call);
    assert_int_equal(f->recv_cbs + f->send_cbs, 2);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_send_and_receive_after_end_are_rejected(void **state)
{
    fixture_t *f = *state;
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    int seq = f->seq;
    casgi_event_t start = start_event(200);
    assert_int_equal(casgi_send(&f->call, &start, on_send, f), CASGI_ESTATE);
    assert_int_equal(casgi_receive(&f->call, on_receive, f), CASGI_ESTATE);
    assert_int_equal(f->seq, seq);
    assert_int_equal(f->wakes, 0);
}

/* ---- failure policy ---------------------------------------------------------------------- */

static void test_call_end_without_start_answers_500(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->sends, 2);
    assert_int_equal(f->sent[0].type, CASGI_EVENT_HTTP_RESPONSE_START);
    assert_int_equal(f->sent[0].status, 500);
    assert_true(f->sent[0].num_headers > 0);
    assert_int_equal(f->sent[1].type, CASGI_EVENT_HTTP_RESPONSE_BODY);
    assert_int_equal(f->sent[1].more, 0);
    assert_int_equal(f->sent[1].body_len, strlen("Internal Server Error"));
    assert_memory_equal(f->sent[1].body, "Internal Server Error", f->sent[1].body_len);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->end_error, 0);
    assert_true(f->end_seq > 0);
    assert_int_equal(f->call.response, CASGI__RESPONSE_COMPLETE);
    assert_int_equal(f->call.status, 500);
    assert_true(logged(f, "ASGI callable returned without starting response."));
}

static void test_call_end_with_error_before_start_answers_500(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(casgi_call_end(&f->call, CASGI_EEVENT), 0);
    assert_int_equal(f->sends, 2);
    assert_int_equal(f->sent[0].status, 500);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->end_error, CASGI_EEVENT);
    assert_true(logged(f, "Exception in ASGI application"));
    assert_true(logged(f, "CASGI_EEVENT"));
}

static void test_call_end_with_error_mid_response_aborts_without_500(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, body_event("partial", 1)), 0);
    assert_int_equal(casgi_call_end(&f->call, UV_ECONNRESET), 0);
    assert_int_equal(f->aborts, 1);
    assert_int_equal(f->sends, 2); /* no 500 after a started response */
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->end_error, UV_ECONNRESET);
    assert_true(f->abort_seq < f->end_seq);
    assert_true(logged(f, "Exception in ASGI application"));
}

static void test_call_end_without_error_mid_response_aborts(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->aborts, 1);
    assert_int_equal(f->sends, 1);
    assert_true(logged(f, "ASGI callable returned without completing response."));
}

static void test_call_end_with_announced_trailers_pending_aborts(void **state)
{
    fixture_t *f = *state;
    casgi_event_t start = start_event(200);
    start.start.trailers = 1;
    assert_int_equal(send_ev(f, start), 0);
    assert_int_equal(send_ev(f, body_event("all", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->aborts, 1);
    assert_int_equal(f->sends, 2);
}

static void test_call_end_after_complete_response_neither_aborts_nor_answers(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, body_event("ok", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, CASGI_EEVENT), 0);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->sends, 2);
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->end_error, CASGI_EEVENT);
}

static void test_call_end_twice_is_rejected(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    assert_int_equal(send_ev(f, body_event("ok", 0)), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(casgi_call_end(&f->call, 0), CASGI_ESTATE);
    assert_int_equal(casgi_call_end(&f->call, CASGI_EEVENT), CASGI_ESTATE);
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->sends, 2);
}

static void test_call_end_when_disconnected_sends_no_500(void **state)
{
    fixture_t *f = *state;
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->sends, 0);
    assert_int_equal(f->seq, f->end_seq); /* ops->send was not attempted */
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->ends, 1);
}

static void test_call_end_when_disconnected_mid_response_does_not_abort(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(send_ev(f, start_event(200)), 0);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, CASGI_EDISCONNECTED), 0);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->sends, 1);
}

static void test_call_500_start_failing_sends_no_body(void **state)
{
    fixture_t *f = *state;
    f->send_result = CASGI_EDISCONNECTED;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->sends, 0);
    assert_int_equal(f->seq, 2); /* one attempted send (the start), then end */
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
}

/* ---- lifespan scope and accessors -------------------------------------------------------- */

static void test_call_lifespan_scope_has_no_http_ordering_or_500(void **state)
{
    fixture_t *f = *state;
    f->call.scope.type = CASGI_SCOPE_LIFESPAN;
    casgi_event_t ev = {.type = CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE};
    assert_int_equal(send_ev(f, ev), 0);
    assert_int_equal(f->sends, 1);
    assert_int_equal(f->sent[0].type, CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE);
    assert_int_equal(f->call.response, CASGI__RESPONSE_NONE);
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
    assert_int_equal(f->sends, 1);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->ends, 1);
}

static void test_call_start_runs_the_app_with_scope_data_and_state(void **state)
{
    fixture_t *f = *state;
    casgi__call_start(&f->call);
    assert_int_equal(f->app_calls, 1);
    assert_ptr_equal(f->app_scope, &f->call.scope);
    assert_ptr_equal(f->app_data_seen, &app_data_token);
    assert_ptr_equal(f->call.scope.state, &state_token);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_accessors_round_trip(void **state)
{
    fixture_t *f = *state;
    int mine;
    assert_null(casgi_call_get_data(&f->call));
    casgi_call_set_data(&f->call, &mine);
    assert_ptr_equal(casgi_call_get_data(&f->call), &mine);
    assert_ptr_equal(casgi_call_get_loop(&f->call), &f->loop);
    int shared;
    casgi_call_set_state(&f->call, &shared);
    assert_ptr_equal(f->server->state, &shared);
    casgi__call_start(&f->call);
    assert_ptr_equal(f->call.scope.state, &shared);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_call_null_arguments_are_rejected(void **state)
{
    fixture_t *f = *state;
    casgi_event_t ev = start_event(200);
    assert_int_equal(casgi_send(NULL, &ev, NULL, NULL), CASGI_ESTATE);
    assert_int_equal(casgi_send(&f->call, NULL, NULL, NULL), CASGI_ESTATE);
    assert_int_equal(casgi_receive(NULL, on_receive, f), CASGI_ESTATE);
    assert_int_equal(casgi_call_end(NULL, 0), CASGI_ESTATE);
    assert_int_equal(f->seq, 0);
    f->call.disconnected = 1;
    assert_int_equal(casgi_call_end(&f->call, 0), 0);
}

static void test_event_type_name_covers_every_type(void **state)
{
    static const struct {
        casgi_event_type_t type;
        const char *name;
    } names[] = {
        {CASGI_EVENT_HTTP_REQUEST, "http.request"},
        {CASGI_EVENT_HTTP_DISCONNECT, "http.disconnect"},
        {CASGI_EVENT_HTTP_RESPONSE_START, "http.response.start"},
        {CASGI_EVENT_HTTP_RESPONSE_BODY, "http.response.body"},
        {CASGI_EVENT_HTTP_RESPONSE_TRAILERS, "http.response.trailers"},
        {CASGI_EVENT_LIFESPAN_STARTUP, "lifespan.startup"},
        {CASGI_EVENT_LIFESPAN_SHUTDOWN, "lifespan.shutdown"},
        {CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE, "lifespan.startup.complete"},
        {CASGI_EVENT_LIFESPAN_STARTUP_FAILED, "lifespan.startup.failed"},
        {CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE, "lifespan.shutdown.complete"},
        {CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED, "lifespan.shutdown.failed"},
    };
    /* the table covers the enum from its first to its last value */
    assert_int_equal(ARRAY_SIZE(names),
                     CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED - CASGI_EVENT_HTTP_REQUEST + 1);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        assert_string_equal(casgi_event_type_name(names[i].type), names[i].name);
    assert_string_equal(casgi_event_type_name((casgi_event_type_t)0), "?");
    assert_string_equal(casgi_event_type_name((casgi_event_type_t)999), "?");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_call_body_before_start_is_rejected),
        T(test_call_second_start_is_rejected),
        T(test_call_start_with_out_of_range_status_is_rejected),
        T(test_call_start_accepts_status_200),
        T(test_call_start_with_splitting_header_is_rejected),
        T(test_call_body_after_final_body_is_rejected),
        T(test_call_body_with_null_base_and_length_is_rejected),
        T(test_call_trailers_without_announcing_are_rejected),
        T(test_call_announced_trailers_are_rejected_before_the_final_body),
        T(test_call_trailers_after_announced_final_body_complete_the_response),
        T(test_call_unknown_event_type_is_rejected),
        T(test_call_send_after_disconnect_is_rejected),
        T(test_call_send_after_disconnect_mid_response_is_rejected),
        T(test_call_protocol_send_failure_is_returned_and_state_unchanged),
        T(test_call_second_send_with_callback_while_pending_is_busy),
        T(test_call_second_receive_while_pending_is_busy),
        T(test_call_receive_without_callback_is_rejected),
        T(test_call_send_and_receive_never_call_back_synchronously),
        T(test_call_end_cancels_pending_callbacks_exactly_once),
        T(test_call_cancel_completes_both_callbacks_with_canceled),
        T(test_call_send_and_receive_after_end_are_rejected),
        T(test_call_end_without_start_answers_500),
        T(test_call_end_with_error_before_start_answers_500),
        T(test_call_end_with_error_mid_response_aborts_without_500),
        T(test_call_end_without_error_mid_response_aborts),
        T(test_call_end_with_announced_trailers_pending_aborts),
        T(test_call_end_after_complete_response_neither_aborts_nor_answers),
        T(test_call_end_twice_is_rejected),
        T(test_call_end_when_disconnected_sends_no_500),
        T(test_call_end_when_disconnected_mid_response_does_not_abort),
        T(test_call_500_start_failing_sends_no_body),
        T(test_call_lifespan_scope_has_no_http_ordering_or_500),
        T(test_call_start_runs_the_app_with_scope_data_and_state),
        T(test_call_accessors_round_trip),
        T(test_call_null_arguments_are_rejected),
        T(test_event_type_name_covers_every_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
