#ifndef CASGI_HEADERS_H
#define CASGI_HEADERS_H

#include "internal.h"

/* 1 when every byte is an RFC 9110 token character and the name is not empty. */
int casgi__headers_valid_name(casgi_bytes_t name);
/* 1 when the value has no CR, LF or NUL (what would split or truncate a response). */
int casgi__headers_valid_value(casgi_bytes_t value);
/* Validates a whole list; 0 or CASGI_EHEADER. */
int casgi__headers_validate(const casgi_header_t *headers, size_t n);
/* Case-insensitive comparison of a header name with a lower-case literal. */
static inline int casgi__headers_name_is(casgi_bytes_t name, const char *lit, size_t lit_len)
{
    if (name.len != lit_len)
        return 0;
    if (memcmp(name.base, lit, lit_len) == 0)
        return 1; /* apps mostly send lower-case names: one compare, no per-byte folding */
    for (size_t i = 0; i < lit_len; i++) {
        char c = name.base[i];
        if ((c >= 'A' && c <= 'Z' ? (char)(c + 32) : c) != lit[i])
            return 0;
    }
    return 1;
}
#define CASGI_NAME_IS(name, lit) casgi__headers_name_is((name), (lit), sizeof(lit) - 1)
/* Lower-cases a token in place; 0 (and a partly lowered name) when a byte is not a tchar. */
int casgi__headers_lower_token(char *s, size_t len);
/* Lower-cases ASCII in place. */
void casgi__headers_lower(char *s, size_t len);
/* 1 when the comma-separated value contains `token` (case-insensitive), e.g. "close". */
int casgi__headers_has_token(casgi_bytes_t value, const char *token, size_t token_len);
/* Parses a non-negative decimal Content-Length; 0 or CASGI_EHEADER. */
int casgi__headers_parse_length(casgi_bytes_t value, uint64_t *out);

#endif
