#include "internal.h"

const char *casgi_strerror(int err)
{
    switch (err) {
#define CASGI_ERRNO_MESSAGE(name, value, message)                                                  \
    case CASGI_E##name:                                                                            \
        return message;
        CASGI_ERRNO_MAP(CASGI_ERRNO_MESSAGE)
#undef CASGI_ERRNO_MESSAGE
    case 0:
        return "success";
    }
    if (err < 0 && err > -1000)
        return uv_strerror(err);
    return "unknown error";
}

const char *casgi_err_name(int err)
{
    switch (err) {
#define CASGI_ERRNO_NAME(name, value, message)                                                     \
    case CASGI_E##name:                                                                            \
        return "CASGI_E" #name;
        CASGI_ERRNO_MAP(CASGI_ERRNO_NAME)
#undef CASGI_ERRNO_NAME
    case 0:
        return "OK";
    }
    if (err < 0 && err > -1000)
        return uv_err_name(err);
    return "UNKNOWN";
}
