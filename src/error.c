#include "internal.h"

/* libuv answers an unknown code with a string it mallocs and never frees: ask without leaking. */
static int uv_knows(int err)
{
    char name[64];
    uv_err_name_r(err, name, sizeof(name));
    return strncmp(name, "Unknown system error", 20) != 0;
}

const char *casgi_strerror(int err)
{
    switch (err) {
#define CASGI_ERRNO_MESSAGE(name, value, message)                                                  \
    case CASGI_E##name: return message;
        CASGI_ERRNO_MAP(CASGI_ERRNO_MESSAGE)
#undef CASGI_ERRNO_MESSAGE
    case 0: return "success";
    }
    if (err < 0 && uv_knows(err))
        return uv_strerror(err); /* negative codes outside our band are libuv's */
    return "unknown error";
}

const char *casgi_err_name(int err)
{
    switch (err) {
#define CASGI_ERRNO_NAME(name, value, message)                                                     \
    case CASGI_E##name: return "CASGI_E" #name;
        CASGI_ERRNO_MAP(CASGI_ERRNO_NAME)
#undef CASGI_ERRNO_NAME
    case 0: return "OK";
    }
    if (err < 0 && uv_knows(err))
        return uv_err_name(err);
    return "UNKNOWN";
}
