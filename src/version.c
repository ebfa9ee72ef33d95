#include "internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned casgi_version(void)
{
    return CASGI_VERSION_HEX;
}

const char *casgi_version_string(void)
{
    return STR(CASGI_VERSION_MAJOR) "." STR(CASGI_VERSION_MINOR) "." STR(CASGI_VERSION_PATCH);
}
