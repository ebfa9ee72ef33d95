#ifndef CASGI_LOG_INTERNAL_H
#define CASGI_LOG_INTERNAL_H

#include "internal.h"

/* Where a server's log lines go: copied from its config. */
typedef struct casgi__logger_s {
    casgi_log_level_t level;
    casgi_log_fn fn;
    void *data;
} casgi__logger_t;

void casgi__log_write(const casgi__logger_t *logger, casgi_log_level_t level, int access,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Checks the level before the arguments are evaluated, so disabled levels cost one compare. */
#define CASGI_LOG(logger, lvl, ...)                                                                \
    do {                                                                                           \
        if ((lvl) >= (logger)->level)                                                              \
            casgi__log_write((logger), (lvl), 0, __VA_ARGS__);                                     \
    } while (0)

/* The default sink: Uvicorn's "LEVEL:    message" on stderr. */
void casgi__log_stderr(void *data, casgi_log_level_t level, int access, const char *line);

#endif
