#ifndef CASGI_DATE_H
#define CASGI_DATE_H

#include <time.h>

#include "internal.h"

#define CASGI_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* The IMF-fixdate of the current second, formatted at most once per second. */
typedef struct casgi__date_s {
    time_t second;
    char text[CASGI_DATE_LEN + 1];
} casgi__date_t;

/* Returns the cached text (CASGI_DATE_LEN bytes), refreshing it when the second changed. */
const char *casgi__date_now(casgi__date_t *date);

#endif
