#ifndef CASGI_APPS_LIFESPAN_ACK_H
#define CASGI_APPS_LIFESPAN_ACK_H

/*
 * The lifespan handler of a demo app with nothing to set up or tear down (hello.so, ws_echo.so):
 * acknowledge startup, then wait for shutdown and acknowledge it. The acknowledgements need no
 * callback; the call's end is the last thing that happens. Header-only because each app is a
 * module of its own.
 */
#include <casgi.h>

static void lifespan_ack_on_event(casgi_call_t *call, int status, const casgi_event_t *event,
                                  void *data)
{
    casgi_event_t reply = {.type = CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE};
    int rc = status;

    (void)data;
    if (status == CASGI_ECANCELED)
        return;
    if (rc == 0 && event->type == CASGI_EVENT_LIFESPAN_STARTUP) {
        reply.type = CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE;
        rc = casgi_send(call, &reply, NULL, NULL);
        if (rc == 0)
            rc = casgi_receive(call, lifespan_ack_on_event, NULL);
        if (rc != 0)
            casgi_call_end(call, rc);
        return;
    }
    if (rc == 0)
        rc = casgi_send(call, &reply, NULL, NULL);
    casgi_call_end(call, rc);
}

/* Runs the handler on a lifespan call, from the app's entry point. */
static inline void lifespan_ack_start(casgi_call_t *call)
{
    int rc = casgi_receive(call, lifespan_ack_on_event, NULL);
    if (rc != 0)
        casgi_call_end(call, rc);
}

#endif
