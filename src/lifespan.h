#ifndef CASGI_LIFESPAN_H
#define CASGI_LIFESPAN_H

#include "server.h"

/*
 * The lifespan scope: startup before the listeners accept, shutdown after the connections drained.
 * Results reach the server through casgi__server_startup_done() and
 * casgi__server_lifespan_shutdown_done(), always from the task queue, never from inside the app.
 */
int casgi__lifespan_new(casgi_server_t *server, casgi__lifespan_t **out);
/* 1 when the app completed startup and still holds its lifespan call: it gets a shutdown event. */
int casgi__lifespan_wants_shutdown(const casgi__lifespan_t *ls);
/* Asks the app to shut down (or reports at once, later, when there is nothing to ask). */
void casgi__lifespan_shutdown(casgi__lifespan_t *ls);
void casgi__lifespan_free(casgi__lifespan_t *ls);

#endif
