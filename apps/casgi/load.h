#ifndef CASGI_APPS_LOAD_H
#define CASGI_APPS_LOAD_H

#include <stddef.h>

#include <casgi.h>

/* An app loaded from a shared object: Uvicorn's "module:attribute" import, with dlopen. */
typedef struct load_s {
    void *handle;           /* from dlopen */
    const casgi_app_t *app; /* inside the module: valid until load_close() */
} load_t;

/*
 * Loads "path/to/app.so[:symbol]" (symbol defaults to "app") and checks that the symbol looks like
 * a casgi_app_t with an entry point. A path without a slash is taken relative to the current
 * directory, as Uvicorn imports from it, rather than searched for along LD_LIBRARY_PATH. Returns 0,
 * or -1 after writing a one-line reason (dlerror's text where there is one) into `err`; `out` is
 * untouched then.
 */
int load_init(load_t *out, const char *spec, char *err, size_t err_size);

/* Unloads the module; the app must no longer be in use (after casgi_server_free()). */
void load_close(load_t *load);

#endif
