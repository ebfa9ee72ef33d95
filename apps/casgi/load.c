/*
 * Loading the app: the runner's counterpart of Uvicorn's import string. The module is opened with
 * RTLD_NOW so that an unresolved casgi_ or uv_ symbol fails here, with dlerror's text, instead of
 * killing the server at the first request that reaches the missing function.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides */

#include "load.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_identifier(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

int load_init(load_t *out, const char *spec, char *err, size_t err_size)
{
    const char *colon = strrchr(spec, ':');
    const char *symbol = "app";
    size_t path_len = strlen(spec);
    int relative;
    char *path;
    void *handle;
    const casgi_app_t *app;
    const char *why;

    /* A colon followed by a slash is part of the path: only the last component names a symbol. */
    if (colon != NULL && strchr(colon, '/') == NULL) {
        symbol = colon + 1;
        path_len = (size_t)(colon - spec);
        if (!is_identifier(symbol)) {
            snprintf(err, err_size, "'%s': '%s' is not a C identifier", spec, symbol);
            goto fail;
        }
    }
    if (path_len == 0) {
        snprintf(err, err_size, "'%s': no shared object path", spec);
        goto fail;
    }

    /* dlopen("x.so") searches the library path, never the current directory; "./x.so" does not. */
    relative = memchr(spec, '/', path_len) == NULL;
    path = malloc(path_len + 3);
    if (path == NULL) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    memcpy(path, "./", relative ? 2 : 0);
    memcpy(path + (relative ? 2 : 0), spec, path_len);
    path[path_len + (relative ? 2 : 0)] = '\0';

    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(err, err_size, "%s", dlerror());
        goto fail_path;
    }

    dlerror();
    app = dlsym(handle, symbol);
    why = dlerror();
    if (why != NULL) {
        snprintf(err, err_size, "%s", why);
        goto fail_handle;
    }
    if (app == NULL || app->entry == NULL) {
        snprintf(err, err_size, "%s: '%s' is not a casgi_app_t with an entry function", path,
                 symbol);
        goto fail_handle;
    }

    free(path);
    out->handle = handle;
    out->app = app;
    return 0;

fail_handle:
    dlclose(handle);
fail_path:
    free(path);
fail:
    return -1;
}

void load_close(load_t *load)
{
    if (load->handle != NULL)
        dlclose(load->handle);
    load->handle = NULL;
    load->app = NULL;
}
