#ifndef CASGI_ERROR_H
#define CASGI_ERROR_H

#include "version.h"

/*
 * Error codes. Every casgi function that can fail returns an int: 0 on success, a negative code
 * otherwise. casgi's own codes live in [-1999, -1000]; codes from libuv (UV_E*, negative errno
 * values) pass through unchanged, so casgi_strerror() and casgi_err_name() accept both.
 */
#define CASGI_ERRNO_MAP(XX)                                                                        \
    XX(DISCONNECTED, -1000, "client disconnected")                                                 \
    XX(STATE, -1001, "event not allowed in this state of the call")                                \
    XX(EVENT, -1002, "unknown or malformed event for this scope")                                  \
    XX(BUSY, -1003, "a receive or send callback is already pending on this call")                  \
    XX(CONFIG, -1004, "invalid configuration")                                                     \
    XX(STARTUP, -1005, "lifespan startup failed")                                                  \
    XX(SHUTDOWN, -1006, "lifespan shutdown failed")                                                \
    XX(NOMEM, -1007, "out of memory")                                                              \
    XX(HEADER, -1008, "invalid header name or value")                                              \
    XX(LENGTH, -1009, "body length disagrees with Content-Length")                                 \
    XX(STATUS, -1010, "invalid status code")                                                       \
    XX(CANCELED, -1012, "operation canceled")

typedef enum {
#define CASGI_ERRNO_ENUM(name, value, message) CASGI_E##name = (value),
    CASGI_ERRNO_MAP(CASGI_ERRNO_ENUM)
#undef CASGI_ERRNO_ENUM
} casgi_errno_t;

/* A message for any casgi or libuv code; a static string, never NULL. */
CASGI_EXTERN const char *casgi_strerror(int err);
/* The symbolic name ("CASGI_EDISCONNECTED", "ECONNRESET"); a static string, never NULL. */
CASGI_EXTERN const char *casgi_err_name(int err);

#endif
