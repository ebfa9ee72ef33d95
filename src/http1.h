#ifndef CASGI_HTTP1_H
#define CASGI_HTTP1_H

#include "conn.h"

/* Serves a freshly accepted connection with HTTP/1.x. 0 or CASGI_ENOMEM (then the caller closes).
 */
int casgi__http1_attach(casgi__conn_t *conn);

/* The reason phrase of a status ("Not Found"), "" for one we do not name. Any HTTP version. */
const char *casgi__http_reason(int status);

/* "HTTP/1.1 200 OK\r\n" and the like into `out` (room for 64 bytes); returns the length. */
size_t casgi__http1_status_line(int status, char *out);

#endif
