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

#endif
