#include "headers.h"

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
static const unsigned char token_chars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int casgi__headers_lower_token(char *s, size_t len)
{
    unsigned char ok = len > 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        ok &= token_chars[(unsigned char)c];
        s[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    return ok;
}

int casgi__headers_valid_name(casgi_bytes_t name)
{
    if (name.len == 0)
        return 0;
    for (size_t i = 0; i < name.len; i++)
        if (!token_chars[(unsigned char)name.base[i]])
            return 0;
    return 1;
}

int casgi__headers_valid_value(casgi_bytes_t value)
{
    static const unsigned char splits[256] = {['\0'] = 1, ['\n'] = 1, ['\r'] = 1};
    unsigned char bad = 0;
    for (size_t i = 0; i < value.len; i++)
        bad |= splits[(unsigned char)value.base[i]]; /* no branch per byte */
    return !bad;
}

int casgi__headers_validate(const casgi_header_t *headers, size_t n)
{
    if (n > 0 && headers == NULL)
        return CASGI_EHEADER;
    for (size_t i = 0; i < n; i++)
        if (!casgi__headers_valid_name(headers[i].name) ||
            !casgi__headers_valid_value(headers[i].value))
            return CASGI_EHEADER;
    return 0;
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

void casgi__headers_lower(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s[i] = lower(s[i]);
}

int casgi__headers_has_token(casgi_bytes_t value, const char *token, size_t token_len)
{
    size_t i = 0;
    while (i < value.len) {
        while (i < value.len &&
               (value.base[i] == ' ' || value.base[i] == '\t' || value.base[i] == ','))
            i++;
        size_t start = i;
        while (i < value.len && value.base[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value.base[end - 1] == ' ' || value.base[end - 1] == '\t'))
            end--;
        casgi_bytes_t item = {value.base + start, end - start};
        if (item.len > 0 && casgi__headers_name_is(item, token, token_len))
            return 1;
    }
    return 0;
}

int casgi__headers_parse_length(casgi_bytes_t value, uint64_t *out)
{
    if (value.len == 0 || value.len > 19)
        return CASGI_EHEADER;
    uint64_t n = 0;
    for (size_t i = 0; i < value.len; i++) {
        char c = value.base[i];
        if (c < '0' || c > '9')
            return CASGI_EHEADER;
        n = n * 10 + (uint64_t)(c - '0');
    }
    *out = n;
    return 0;
}
