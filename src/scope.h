#ifndef CASGI_SCOPE_H
#define CASGI_SCOPE_H

#include "internal.h"

/*
 * Splits a request target into raw path and query string (without the '?'). An absolute-form
 * target ("http://host/p?q") yields its path ("/p"); an authority-form target (CONNECT) yields
 * an empty path.
 */
void casgi__scope_split_target(casgi_bytes_t target, casgi_bytes_t *raw_path, casgi_bytes_t *query);
/*
 * Percent-decodes `src` into `dst` (which has room for src.len bytes) and returns the decoded
 * length. Malformed escapes are kept as they are, as Uvicorn's unquote does.
 */
size_t casgi__scope_percent_decode(casgi_bytes_t src, char *dst);
/*
 * Fills path, raw_path, query_string and root_path of a scope from a request target. ASGI (and
 * Uvicorn since 0.26): path and raw_path include root_path, which a proxy that mounts the app
 * under a prefix has stripped from the request. The strings that need new bytes are written to
 * `space`, which has room for target.len + 2 * root_len; returns how many bytes it used. `root`
 * must outlive the scope.
 */
size_t casgi__scope_set_target(casgi_scope_t *scope, casgi_bytes_t target, const char *root,
                               size_t root_len, char *space);

#endif
