#include "scope.h"

void casgi__scope_split_target(casgi_bytes_t target, casgi_bytes_t *raw_path, casgi_bytes_t *query)
{
    const char *p = target.base;
    size_t n = target.len;
    if (n > 0 && p[0] != '/' && p[0] != '*') {
        /* absolute-form: skip "scheme://authority"; authority-form has no path at all */
        const char *scheme_end = memchr(p, ':', n);
        if (scheme_end && (size_t)(scheme_end - p) + 2 < n && scheme_end[1] == '/' &&
            scheme_end[2] == '/') {
            size_t off = (size_t)(scheme_end - p) + 3;
            const char *slash = memchr(p + off, '/', n - off);
            const char *qmark = memchr(p + off, '?', n - off);
            if (slash == NULL || (qmark != NULL && qmark < slash)) {
                /* "http://host" or "http://host?q": the path is "/" */
                *raw_path = CASGI_BYTES("/");
                if (qmark) {
                    query->base = qmark + 1;
                    query->len = n - (size_t)(qmark + 1 - p);
                } else {
                    *query = (casgi_bytes_t){NULL, 0};
                }
                return;
            }
            n -= (size_t)(slash - p);
            p = slash;
        } else {
            raw_path->base = p;
            raw_path->len = 0;
            *query = (casgi_bytes_t){NULL, 0};
            return;
        }
    }
    const char *q = memchr(p, '?', n);
    if (q) {
        raw_path->base = p;
        raw_path->len = (size_t)(q - p);
        query->base = q + 1;
        query->len = n - raw_path->len - 1;
    } else {
        raw_path->base = p;
        raw_path->len = n;
        query->base = p + n;
        query->len = 0;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t casgi__scope_percent_decode(casgi_bytes_t src, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        char c = src.base[i];
        if (c == '%' && i + 2 < src.len) {
            int hi = hexval(src.base[i + 1]), lo = hexval(src.base[i + 2]);
            if (hi >= 0 && lo >= 0) {
                dst[o++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        dst[o++] = c;
    }
    return o;
}

size_t casgi__scope_set_target(casgi_scope_t *scope, casgi_bytes_t target, const char *root,
                               size_t root_len, char *space)
{
    casgi__scope_split_target(target, &scope->raw_path, &scope->query_string);
    char *p = space;
    memcpy(p, root, root_len);
    scope->path.base = p;
    scope->path.len = root_len + casgi__scope_percent_decode(scope->raw_path, p + root_len);
    p += scope->path.len;
    if (root_len > 0) {
        memcpy(p, root, root_len);
        memcpy(p + root_len, scope->raw_path.base, scope->raw_path.len);
        scope->raw_path = (casgi_bytes_t){p, root_len + scope->raw_path.len};
        p += scope->raw_path.len;
    }
    scope->root_path = (casgi_bytes_t){root, root_len};
    return (size_t)(p - space);
}
