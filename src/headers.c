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

/*
 * The per-byte loops below run on every header of every request and response, so they carry no
 * branch per byte: table lookups are accumulated and judged once. Lower-casing and the value check
 * go eight bytes at a time; a name or value of eight bytes or more ends with one more word that
 * overlaps the previous one rather than a byte loop, which is harmless for a check and for an
 * idempotent lower-casing.
 */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load_word(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return w;
}

static inline int bytes_are_token(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char ok = 1;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) /* four lookups per loop test */
        ok &= token_chars[u[i]] & token_chars[u[i + 1]] & token_chars[u[i + 2]] &
              token_chars[u[i + 3]];
    for (; i < n; i++)
        ok &= token_chars[u[i]];
    return ok;
}

/* w with every byte in 'A'..'Z' lower-cased; exact per byte (no carry crosses a byte). */
static inline uint64_t word_lower(uint64_t w)
{
    uint64_t low7 = w & ~HIGHS;
    uint64_t upper = (low7 + (0x80 - 'A') * ONES) & ~(low7 + (0x7f - 'Z') * ONES) & ~w & HIGHS;
    return w | upper >> 2; /* 0x80 >> 2 is the 0x20 case bit */
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static inline void lower_in_place(char *s, size_t len)
{
    if (len < 8) {
        for (size_t i = 0; i < len; i++)
            s[i] = lower(s[i]);
        return;
    }
    for (size_t i = 0; i + 8 < len; i += 8) {
        uint64_t w = word_lower(load_word(s + i));
        memcpy(s + i, &w, 8);
    }
    uint64_t w = word_lower(load_word(s + len - 8));
    memcpy(s + len - 8, &w, 8);
}

void casgi__headers_lower(char *s, size_t len)
{
    lower_in_place(s, len);
}

int casgi__headers_lower_token(char *s, size_t len)
{
    lower_in_place(s, len);
    return len > 0 && bytes_are_token(s, len);
}

int casgi__headers_valid_name(casgi_bytes_t name)
{
    return name.len > 0 && bytes_are_token(name.base, name.len);
}

/* Nonzero when a byte of w is below '\r' + 1: the only words that can hold NUL, LF or CR. */
static inline uint64_t word_has_low_byte(uint64_t w)
{
    return (w - ('\r' + 1) * ONES) & ~w & HIGHS;
}

static int bytes_split(const char *s, size_t n)
{
    static const unsigned char splits[256] = {['\0'] = 1, ['\n'] = 1, ['\r'] = 1};
    unsigned char bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= splits[(unsigned char)s[i]];
    return bad;
}

int casgi__headers_valid_value(casgi_bytes_t value)
{
    const char *s = value.base;
    size_t len = value.len;
    if (len < 8)
        return !bytes_split(s, len);
    /* Only a word with a byte below 14 (a tab, mostly) needs its bytes looked at. */
    for (size_t i = 0; i + 8 < len; i += 8)
        if (word_has_low_byte(load_word(s + i)) && bytes_split(s + i, 8))
            return 0;
    return !(word_has_low_byte(load_word(s + len - 8)) && bytes_split(s + len - 8, 8));
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
