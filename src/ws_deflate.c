/*
 * permessage-deflate (RFC 7692): negotiation of the client's offer, and one raw-deflate compressor
 * and decompressor per connection.
 *
 * Memory is what matters here: zlib's deflate state with a 32 KiB window and memLevel 8 is about
 * 270 KB, the inflate state 7 KB plus the window. Both streams are therefore initialised on first
 * use and, when the negotiated parameters forbid context takeover, ended again after every
 * message, so an idle connection holds only this struct. All zlib allocations go through
 * zalloc()/zfree() below, which count them (casgi__ws_deflate_memory()).
 */
#include <limits.h>
#include <stdlib.h>
#include <strings.h>

#include <zlib.h>

#include "ws_deflate.h"

/* The empty stored block a sender strips from every message and the receiver puts back. */
static const unsigned char sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* Output is grown by at least this much when zlib fills what it was given. */
#define OUT_CHUNK 16384
/* avail_in/avail_out are uInt; longer buffers are fed in pieces of this size. */
#define Z_PIECE ((size_t)1 << 30)

struct casgi__ws_deflate_s {
    casgi__ws_deflate_params_t params;
    int mem_level;
    unsigned deflating : 1; /* `def` is initialised */
    unsigned inflating : 1; /* `inf` is initialised */
    size_t zmem;            /* bytes zlib currently holds for this connection */
    z_stream def;
    z_stream inf;
};

/* ============================================================================================
 * Negotiation
 * ========================================================================================== */

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} cursor_t;

static void skip_ows(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* Consumes a token; returns its length (0: none there). */
static size_t take_token(cursor_t *c, const char **start)
{
    *start = (const char *)c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    return (size_t)((const char *)c->p - *start);
}

/*
 * Consumes a quoted-string (the cursor is on the opening quote), unescaping it into `val` of
 * `cap` bytes. *len receives the unescaped length, which may exceed `cap` (then only the first
 * `cap` bytes were stored). Returns -1 when the string is not terminated or holds a byte that
 * qdtext/quoted-pair do not allow.
 */
static int take_quoted(cursor_t *c, char *val, size_t cap, size_t *len)
{
    size_t n = 0;
    c->p++;
    for (;;) {
        if (c->p >= c->end)
            return -1;
        unsigned char ch = *c->p++;
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            ch = *c->p++;
        }
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return -1;
        if (n < cap)
            val[n] = (char)ch;
        n++;
    }
    *len = n;
    return 0;
}

/* After a syntax error: moves to the next list separator that is not inside a quoted-string. */
static void skip_element(cursor_t *c)
{
    int quoted = 0;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (!quoted && ch == ',')
            return;
        c->p++;
        if (quoted && ch == '\\' && c->p < c->end)
            c->p++;
        else if (ch == '"')
            quoted = !quoted;
    }
}

static int name_is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && strncasecmp(s, lit, len) == 0;
}

/* A window-bits value: a decimal integer 8..15 without leading zeros (RFC 7692 7.1.2). -1 if
 * not. */
static int parse_bits(const char *v, size_t len)
{
    if (len == 1 && (v[0] == '8' || v[0] == '9'))
        return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

/* One parsed offer. Window bits: -1 absent, 0 present without a value, else 8..15. */
typedef struct {
    int deflate; /* the extension is permessage-deflate */
    int invalid; /* a parameter we must decline (unknown, duplicate, bad value) */
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits;
    int client_max_window_bits;
} offer_t;

/* Records one parameter of a permessage-deflate offer. `val` is NULL when it had no value. */
static void offer_param(offer_t *o, const char *name, size_t name_len, const char *val,
                        size_t val_len)
{
    int *flag = NULL;
    int *bits = NULL;
    if (name_is(name, name_len, "server_no_context_takeover"))
        flag = &o->server_no_context_takeover;
    else if (name_is(name, name_len, "client_no_context_takeover"))
        flag = &o->client_no_context_takeover;
    else if (name_is(name, name_len, "server_max_window_bits"))
        bits = &o->server_max_window_bits;
    else if (name_is(name, name_len, "client_max_window_bits"))
        bits = &o->client_max_window_bits;

    if (flag != NULL) {
        if (*flag || val != NULL)
            o->invalid = 1;
        *flag = 1;
    } else if (bits != NULL) {
        int v = val != NULL ? parse_bits(val, val_len) : 0;
        /* server_max_window_bits needs a value; client_max_window_bits may go without. */
        if (*bits != -1 || v < 0 || (v == 0 && bits == &o->server_max_window_bits))
            o->invalid = 1;
        *bits = v;
    } else {
        o->invalid = 1;
    }
}

/*
 * Parses one list element at the cursor (leading OWS skipped) up to the next ',' or the end.
 * Returns 0, or -1 on a syntax error (the cursor is then anywhere inside the element).
 */
static int parse_offer(cursor_t *c, offer_t *o)
{
    const char *name;
    size_t name_len = take_token(c, &name);
    if (name_len == 0)
        return -1;
    o->deflate = name_is(name, name_len, "permessage-deflate");
    for (;;) {
        skip_ows(c);
        if (c->p == c->end || *c->p == ',')
            return 0;
        if (*c->p != ';')
            return -1;
        c->p++;
        skip_ows(c);
        const char *pname;
        size_t pname_len = take_token(c, &pname);
        if (pname_len == 0)
            return -1;
        skip_ows(c);
        const char *val = NULL;
        size_t val_len = 0;
        char qval[4];
        if (c->p < c->end && *c->p == '=') {
            c->p++;
            skip_ows(c);
            if (c->p < c->end && *c->p == '"') {
                if (take_quoted(c, qval, sizeof(qval), &val_len) != 0)
                    return -1;
                /* RFC 6455 9.1: the unescaped value must still be a token. */
                if (val_len == 0)
                    return -1;
                for (size_t i = 0; i < val_len && i < sizeof(qval); i++)
                    if (!is_tchar((unsigned char)qval[i]))
                        return -1;
                val = qval;
                if (val_len > sizeof(qval))
                    val_len = sizeof(qval); /* too long for any value we accept */
            } else if ((val_len = take_token(c, &val)) == 0) {
                return -1;
            }
        }
        if (o->deflate)
            offer_param(o, pname, pname_len, val, val_len);
    }
}

/* Bounded string building: a failed append leaves `ok` at 0 for good. */
typedef struct {
    char *s;
    size_t size;
    size_t len;
    int ok;
} strbuf_t;

static void sb_add(strbuf_t *sb, const char *s)
{
    size_t n = strlen(s);
    if (!sb->ok || sb->size - sb->len <= n) {
        sb->ok = 0;
        return;
    }
    memcpy(sb->s + sb->len, s, n + 1);
    sb->len += n;
}

static void sb_add_bits(strbuf_t *sb, const char *name, int bits)
{
    char num[3] = {0};
    if (bits >= 10) {
        num[0] = '1';
        num[1] = (char)('0' + bits - 10);
    } else {
        num[0] = (char)('0' + bits);
    }
    sb_add(sb, "; ");
    sb_add(sb, name);
    sb_add(sb, "=");
    sb_add(sb, num);
}

/*
 * Decides on one syntactically valid permessage-deflate offer. Returns 1 and fills *params and
 * the response when we accept it, 0 to decline.
 */
static int accept_offer(const offer_t *o, int ours, casgi__ws_deflate_params_t *params,
                        char *response, size_t size)
{
    if (o->invalid)
        return 0;
    casgi__ws_deflate_params_t p = {0};
    p.server_no_context_takeover = o->server_no_context_takeover;
    p.client_no_context_takeover = o->client_no_context_takeover;

    /* Our compressor. zlib turns a raw window of 8 into 9 (since 1.2.9), and RFC 7692 7.1.2.1
     * forbids answering with more than was asked, so an offer of 8 is declined. */
    p.server_max_window_bits = ours;
    if (o->server_max_window_bits == 8)
        return 0;
    if (o->server_max_window_bits > 0 && o->server_max_window_bits < ours)
        p.server_max_window_bits = o->server_max_window_bits;

    /* The client's compressor. Without the parameter in the offer we may not limit it, so we
     * inflate with 15. With it, we limit the client to our own window. The client keeps below
     * its own offered value in any case. We never inflate with less than 9, in case a zlib-based
     * client offers 8 and compresses with 9. */
    int reply_client_bits = 0;
    p.client_max_window_bits = 15;
    if (o->client_max_window_bits >= 0) {
        int v = o->client_max_window_bits > 0 ? o->client_max_window_bits : 15;
        if (ours < v)
            v = ours;
        if (v < 15)
            reply_client_bits = v;
        p.client_max_window_bits = v < 9 ? 9 : v;
    }

    strbuf_t sb = {response, size, 0, size > 0};
    if (sb.ok)
        response[0] = '\0';
    sb_add(&sb, "permessage-deflate");
    if (p.server_no_context_takeover)
        sb_add(&sb, "; server_no_context_takeover");
    if (p.client_no_context_takeover)
        sb_add(&sb, "; client_no_context_takeover");
    if (o->server_max_window_bits > 0 || p.server_max_window_bits < 15)
        sb_add_bits(&sb, "server_max_window_bits", p.server_max_window_bits);
    if (reply_client_bits)
        sb_add_bits(&sb, "client_max_window_bits", reply_client_bits);
    if (!sb.ok) {
        if (size > 0)
            response[0] = '\0';
        return 0;
    }
    *params = p;
    return 1;
}

int casgi__ws_deflate_negotiate(casgi_bytes_t offer, int our_window_bits,
                                casgi__ws_deflate_params_t *params, char *response, size_t size)
{
    int ours = our_window_bits < 9 ? 9 : our_window_bits > 15 ? 15 : our_window_bits;
    if (size > 0)
        response[0] = '\0';
    if (offer.base == NULL)
        return 0;
    cursor_t c = {(const unsigned char *)offer.base, (const unsigned char *)offer.base + offer.len};
    while (c.p < c.end) {
        skip_ows(&c);
        if (c.p == c.end)
            break;
        if (*c.p == ',') { /* empty list elements are allowed (RFC 7230 7) */
            c.p++;
            continue;
        }
        offer_t o = {0, 0, 0, 0, -1, -1};
        if (parse_offer(&c, &o) != 0) {
            skip_element(&c);
        } else if (o.deflate && accept_offer(&o, ours, params, response, size)) {
            return 1;
        }
        if (c.p < c.end)
            c.p++; /* the ',' */
    }
    return 0;
}

/* ============================================================================================
 * Streams
 * ========================================================================================== */

/* zlib's allocations, counted per connection. Each block carries its size in front. */
typedef union {
    size_t size;
    max_align_t align;
} zhead_t;

static voidpf zalloc(voidpf opaque, uInt items, uInt size)
{
    casgi__ws_deflate_t *d = opaque;
    size_t n = (size_t)items * size;
    zhead_t *h = malloc(sizeof(zhead_t) + n);
    if (h == NULL)
        return Z_NULL;
    h->size = n;
    d->zmem += sizeof(zhead_t) + n;
    return h + 1;
}

static void zfree(voidpf opaque, voidpf address)
{
    casgi__ws_deflate_t *d = opaque;
    if (address == Z_NULL)
        return;
    zhead_t *h = (zhead_t *)address - 1;
    d->zmem -= sizeof(zhead_t) + h->size;
    free(h);
}

static int clamp_bits(int bits)
{
    return bits < 9 ? 9 : bits > 15 ? 15 : bits;
}

int casgi__ws_deflate_new(const casgi__ws_deflate_params_t *params, int mem_level,
                          casgi__ws_deflate_t **out)
{
    casgi__ws_deflate_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return CASGI_ENOMEM;
    d->params = *params;
    d->params.server_max_window_bits = clamp_bits(params->server_max_window_bits);
    d->params.client_max_window_bits = clamp_bits(params->client_max_window_bits);
    d->mem_level = mem_level < 1 ? 8 : mem_level > 9 ? 9 : mem_level;
    d->def.zalloc = d->inf.zalloc = zalloc;
    d->def.zfree = d->inf.zfree = zfree;
    d->def.opaque = d->inf.opaque = d;
    *out = d;
    return 0;
}

static void end_deflate(casgi__ws_deflate_t *d)
{
    if (d->deflating) {
        deflateEnd(&d->def);
        d->deflating = 0;
    }
}

static void end_inflate(casgi__ws_deflate_t *d)
{
    if (d->inflating) {
        inflateEnd(&d->inf);
        d->inflating = 0;
    }
}

void casgi__ws_deflate_free(casgi__ws_deflate_t *d)
{
    if (d == NULL)
        return;
    end_deflate(d);
    end_inflate(d);
    CASGI_ASSERT(d->zmem == 0);
    free(d);
}

size_t casgi__ws_deflate_memory(const casgi__ws_deflate_t *d)
{
    return sizeof(*d) + d->zmem;
}

/* Points zlib's output at the free space of `out`, at most `limit` bytes of it. */
static void set_output(z_stream *z, casgi__buf_t *out, size_t limit)
{
    size_t room = out->cap - out->len;
    if (room > limit)
        room = limit;
    if (room > Z_PIECE)
        room = Z_PIECE;
    z->next_out = (Bytef *)out->base + out->len;
    z->avail_out = (uInt)room;
}

/* ============================================================================================
 * Compression
 * ========================================================================================== */

int casgi__ws_deflate_compress(casgi__ws_deflate_t *d, const void *in, size_t len,
                               casgi__buf_t *out)
{
    z_stream *z = &d->def;
    if (!d->deflating) {
        int zr = deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                              -d->params.server_max_window_bits, d->mem_level, Z_DEFAULT_STRATEGY);
        if (zr != Z_OK)
            return CASGI_ENOMEM; /* the parameters are clamped: only memory can fail */
        d->deflating = 1;
    }

    int err = 0;
    size_t produced = 0;
    const unsigned char *next = in;
    size_t left = len;
    z->avail_in = 0;
    /* Room for the whole result in one go in the common case: the bound for what is left, plus
     * the flush's empty stored block. */
    size_t want = (size_t)deflateBound(z, (uLong)(len < Z_PIECE ? len : Z_PIECE)) + 8;
    for (;;) {
        if (z->avail_in == 0 && left > 0) {
            size_t n = left < Z_PIECE ? left : Z_PIECE;
            z->next_in = (Bytef *)next;
            z->avail_in = (uInt)n;
            next += n;
            left -= n;
        }
        if ((err = casgi__buf_reserve(out, want)) != 0)
            goto fail;
        want = OUT_CHUNK;
        set_output(z, out, SIZE_MAX);
        uInt avail = z->avail_out;
        int zr = deflate(z, left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        out->len += avail - z->avail_out;
        produced += avail - z->avail_out;
        CASGI_ASSERT(zr == Z_OK || zr == Z_BUF_ERROR);
        (void)zr;
        /* Done once all input is in and the flush left output space unused. */
        if (left == 0 && z->avail_in == 0 && z->avail_out != 0)
            break;
    }
    if (produced == 0) {
        /* An empty message right after a flush: zlib refuses a second flush with nothing new
         * (Z_BUF_ERROR). Its stripped form is the lone stored-block header 0x00 (RFC 7692
         * 7.2.3.6), which leaves both windows as they are. The first reserve made room. */
        CASGI_ASSERT(len == 0 && out->cap > out->len);
        out->base[out->len++] = 0x00;
    } else {
        /* A sync flush always ends with the empty stored block 00 00 ff ff; RFC 7692 7.2.1
         * drops it. */
        CASGI_ASSERT(produced >= 4 &&
                     memcmp(out->base + out->len - 4, sync_tail, sizeof(sync_tail)) == 0);
        out->len -= 4;
    }
    if (d->params.server_no_context_takeover)
        end_deflate(d);
    return 0;

fail:
    /* Whatever was consumed is lost, so the context no longer matches what the peer saw.
     * Starting over is always safe: the sender may drop its history, the receiver's is then
     * simply unused. */
    out->len -= produced;
    end_deflate(d);
    return err;
}

/* ============================================================================================
 * Decompression
 * ========================================================================================== */

/*
 * After a block with BFINAL set (RFC 7692 7.2.3.4) zlib considers the stream finished, but the
 * message, and with context takeover the next ones, go on with the same LZ77 window. Restarts the
 * inflater with its window as the dictionary. 0 or CASGI_ENOMEM.
 */
static int inflate_restart(casgi__ws_deflate_t *d)
{
    z_stream *z = &d->inf;
    uInt n = 0;
    inflateGetDictionary(z, Z_NULL, &n);
    unsigned char *dict = NULL;
    if (n > 0) {
        if ((dict = malloc(n)) == NULL)
            return CASGI_ENOMEM;
        inflateGetDictionary(z, dict, &n);
    }
    inflateReset(z);
    if (n > 0)
        inflateSetDictionary(z, dict, n);
    free(dict);
    return 0;
}

int casgi__ws_deflate_decompress(casgi__ws_deflate_t *d, const void *in, size_t len, size_t max,
                                 casgi__buf_t *out)
{
    /* Nothing to inflate: some senders mark an empty message as compressed with no payload. */
    if (len == 0)
        return 0;
    z_stream *z = &d->inf;
    if (!d->inflating) {
        z->next_in = Z_NULL;
        z->avail_in = 0;
        if (inflateInit2(z, -d->params.client_max_window_bits) != Z_OK)
            return CASGI_ENOMEM;
        d->inflating = 1;
    }

    int err = 0;
    size_t produced = 0;
    const unsigned char *next = in;
    size_t left = len;
    int tail = 0;  /* sync_tail has been fed */
    int ended = 0; /* a final block ended and no input was consumed since */
    z->avail_in = 0;
    for (;;) {
        if (z->avail_in == 0) {
            if (left > 0) {
                size_t n = left < Z_PIECE ? left : Z_PIECE;
                z->next_in = (Bytef *)next;
                z->avail_in = (uInt)n;
                next += n;
                left -= n;
            } else if (!tail && !ended) {
                /* RFC 7692 7.2.2: put back the 00 00 ff ff the sender removed. Not after a
                 * final block that ended the message: it would start a block of its own. */
                z->next_in = (Bytef *)sync_tail;
                z->avail_in = sizeof(sync_tail);
                tail = 1;
            }
        }
        /* Never give zlib more room than `max` allows; once it is used up, a one-byte probe
         * tells whether there is more output (too long) or not (exactly `max`). */
        unsigned char probe;
        size_t allowed = max - produced;
        if (allowed > 0) {
            if ((err = casgi__buf_reserve(out, allowed < OUT_CHUNK ? allowed : OUT_CHUNK)) != 0)
                goto fail;
            set_output(z, out, allowed);
        } else {
            z->next_out = &probe;
            z->avail_out = 1;
        }
        uInt avail = z->avail_out;
        uInt avail_in = z->avail_in;
        int zr = inflate(z, Z_SYNC_FLUSH);
        size_t n = avail - z->avail_out;
        if (allowed == 0 && n > 0) {
            err = CASGI_ELENGTH;
            goto fail;
        }
        out->len += n;
        produced += n;
        if (z->avail_in != avail_in)
            ended = 0; /* input after a final block: the message went on */
        if (zr == Z_STREAM_END) {
            ended = 1;
            /* More of this message follows, or the next message continues this window. */
            if ((z->avail_in > 0 || left > 0 || !d->params.client_no_context_takeover) &&
                (err = inflate_restart(d)) != 0)
                goto fail;
            if (tail) /* the final block ran into the tail we added: it ended there */
                break;
        } else if (zr == Z_MEM_ERROR) {
            err = CASGI_ENOMEM;
            goto fail;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            err = CASGI_EEVENT; /* Z_DATA_ERROR; Z_STREAM_ERROR or Z_NEED_DICT cannot happen */
            goto fail;
        } else if (zr == Z_BUF_ERROR && z->avail_in > 0 && z->avail_in == avail_in) {
            err = CASGI_EEVENT; /* no progress with input left: cannot happen, do not spin */
            goto fail;
        }
        if (z->avail_in == 0 && left == 0 && (tail || ended) && z->avail_out != 0)
            break;
    }
    /* The message must end on a block boundary: after the tail, inflate waits for the next
     * block header (data_type bit 128). Anything else is a truncated or padded block. */
    if (!ended && !(z->data_type & 128)) {
        err = CASGI_EEVENT;
        goto fail;
    }
    if (d->params.client_no_context_takeover)
        end_inflate(d);
    return 0;

fail:
    out->len -= produced;
    end_inflate(d);
    return err;
}
