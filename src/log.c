#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "log.h"

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};

const char *casgi_log_level_name(casgi_log_level_t level)
{
    if ((unsigned)level >= ARRAY_SIZE(level_names))
        return "?";
    return level_names[level];
}

int casgi_log_level_parse(const char *name, casgi_log_level_t *out)
{
    for (size_t i = 0; name != NULL && i < ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (casgi_log_level_t)i;
            return 0;
        }
    }
    return CASGI_ECONFIG;
}

void casgi__log_stderr(void *data, casgi_log_level_t level, int access, const char *line)
{
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%s:", casgi_log_level_name(level));
    /* One fprintf per line keeps lines whole when several processes share stderr. */
    fprintf(stderr, "%-10s%s\n", prefix, line);
}

void casgi__log_write(const casgi__logger_t *logger, casgi_log_level_t level, int access,
                      const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    logger->fn(logger->data, level, access, line);
}
