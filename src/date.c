#include <stdio.h>

#include "date.h"

const char *casgi__date_now(casgi__date_t *date)
{
    /* time() is a vDSO read on Linux, no system call: cheaper than any timer to keep it fresh. */
    time_t now = time(NULL);
    if (now != date->second || date->text[0] == '\0') {
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        gmtime_r(&now, &tm);
        char text[64]; /* roomy: the compiler cannot see that tm fields are in range */
        snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        memcpy(date->text, text, CASGI_DATE_LEN);
        date->text[CASGI_DATE_LEN] = '\0';
        date->second = now;
    }
    return date->text;
}
