/* permessage-deflate negotiation and the zlib streams (src/ws_deflate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <zlib.h>

#include "ws_deflate.h"

#define MIB ((size_t)1 << 20)

/* ---------------------------------------------------------------------------------------------
 * Negotiation
 * ------------------------------------------------------------------------------------------- */

/* Negotiates `offer` with our window `ours`; returns what negotiate() returned. */
static int negotiate(const char *offer, int ours, casgi__ws_deflate_params_t *p, char *resp)
{
    memset(p, 0x5a, sizeof(*p));
    return casgi__ws_deflate_negotiate(CASGI_STR(offer), ours, p, resp, 128);
}

static void assert_accepts(const char *offer, int ours, const char *response, int snct, int cnct,
                           int sbits, int cbits)
{
    casgi__ws_deflate_params_t p;
    char resp[128];
    if (negotiate(offer, ours, &p, resp) != 1)
        fail_msg("declined: %s", offer);
    assert_string_equal(resp, response);
    assert_int_equal(p.server_no_context_takeover, snct);
    assert_int_equal(p.client_no_context_takeover, cnct);
    assert_int_equal(p.server_max_window_bits, sbits);
    assert_int_equal(p.client_max_window_bits, cbits);
}

static void assert_declines(const char *offer, int ours)
{
    casgi__ws_deflate_params_t p, untouched;
    char resp[128] = "garbage";
    if (negotiate(offer, ours, &p, resp) != 0)
        fail_msg("accepted: %s -> %s", offer, resp);
    memset(&untouched, 0x5a, sizeof(untouched));
    assert_memory_equal(&p, &untouched, sizeof(p));
    assert_string_equal(resp, "");
}

static void test_ws_deflate_negotiate_plain_offer(void **state)
{
    assert_accepts("permessage-deflate", 15, "permessage-deflate", 0, 0, 15, 15);
    /* Case-insensitive names and optional whitespace. */
    assert_accepts("  PerMessage-Deflate  ", 15, "permessage-deflate", 0, 0, 15, 15);
    /* A smaller own window is announced even when not asked for. */
    assert_accepts("permessage-deflate", 12, "permessage-deflate; server_max_window_bits=12", 0, 0,
                   12, 15);
    /* Our window is clamped to 9..15. */
    assert_accepts("permessage-deflate", 3, "permessage-deflate; server_max_window_bits=9", 0, 0, 9,
                   15);
    assert_accepts("permessage-deflate", 99, "permessage-deflate", 0, 0, 15, 15);
}

static void test_ws_deflate_negotiate_each_parameter(void **state)
{
    assert_accepts("permessage-deflate; server_no_context_takeover", 15,
                   "permessage-deflate; server_no_context_takeover", 1, 0, 15, 15);
    assert_accepts("permessage-deflate; client_no_context_takeover", 15,
                   "permessage-deflate; client_no_context_takeover", 0, 1, 15, 15);
    assert_accepts("permessage-deflate;server_max_window_bits=10", 15,
                   "permessage-deflate; server_max_window_bits=10", 0, 0, 10, 15);
    /* The reply may be smaller than asked, never larger. */
    assert_accepts("permessage-deflate; server_max_window_bits=13", 11,
                   "permessage-deflate; server_max_window_bits=11", 0, 0, 11, 15);
    assert_accepts("permessage-deflate; server_max_window_bits=15", 15,
                   "permessage-deflate; server_max_window_bits=15", 0, 0, 15, 15);
    assert_accepts("permessage-deflate; server_max_window_bits=9", 15,
                   "permessage-deflate; server_max_window_bits=9", 0, 0, 9, 15);
    /* client_max_window_bits without a value: nothing to say unless we limit the client. */
    assert_accepts("permessage-deflate; client_max_window_bits", 15, "permessage-deflate", 0, 0, 15,
                   15);
    assert_accepts("permessage-deflate; client_max_window_bits", 12,
                   "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 0, 0,
                   12, 12);
    /* With a value, the client stays below it; we confirm the limit. */
    assert_accepts("permessage-deflate; client_max_window_bits=10", 15,
                   "permessage-deflate; client_max_window_bits=10", 0, 0, 15, 10);
    assert_accepts("permessage-deflate; client_max_window_bits=15", 15, "permessage-deflate", 0, 0,
                   15, 15);
    assert_accepts("permessage-deflate; client_max_window_bits=14", 11,
                   "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11", 0, 0,
                   11, 11);
    /* A client offering 8 gets 8; we inflate with 9 in case it is zlib (which makes 8 into 9). */
    assert_accepts("permessage-deflate; client_max_window_bits=8", 15,
                   "permessage-deflate; client_max_window_bits=8", 0, 0, 15, 9);
    /* Quoted values (escapes included), whitespace around '=' and ';'. */
    assert_accepts("permessage-deflate; server_max_window_bits=\"10\"", 15,
                   "permessage-deflate; server_max_window_bits=10", 0, 0, 10, 15);
    assert_accepts("permessage-deflate ;\tclient_max_window_bits = \"1\\1\" ", 15,
                   "permessage-deflate; client_max_window_bits=11", 0, 0, 15, 11);
    /* Everything at once: the longest response there is. */
    assert_accepts("permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; "
                   "client_no_context_takeover; server_no_context_takeover",
                   15,
                   "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                   "server_max_window_bits=10; client_max_window_bits=9",
                   1, 1, 10, 9);
}

static void test_ws_deflate_negotiate_browser_offers(void **state)
{
    /* Chrome, Firefox/Safari. */
    assert_accepts("permessage-deflate; client_max_window_bits", 15, "permessage-deflate", 0, 0, 15,
                   15);
    assert_accepts("permessage-deflate", 15, "permessage-deflate", 0, 0, 15, 15);
    /* Python websockets' default client offer. */
    assert_accepts("permessage-deflate; client_max_window_bits", 12,
                   "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 0, 0,
                   12, 12);
}

static void test_ws_deflate_negotiate_takes_first_valid_offer(void **state)
{
    assert_accepts("permessage-deflate; server_max_window_bits=8, permessage-deflate; "
                   "server_max_window_bits=9",
                   15, "permessage-deflate; server_max_window_bits=9", 0, 0, 9, 15);
    assert_accepts("x-webkit-deflate-frame, permessage-deflate; foo, "
                   "permessage-deflate; client_no_context_takeover, permessage-deflate",
                   15, "permessage-deflate; client_no_context_takeover", 0, 1, 15, 15);
    /* A comma inside another extension's quoted-string does not split the list. */
    assert_accepts("foo; bar=\"a, permessage-deflate; bad\", permessage-deflate", 15,
                   "permessage-deflate", 0, 0, 15, 15);
    /* A syntax error only costs its own element; empty elements are skipped. */
    assert_accepts(", ,permessage-deflate server_no_context_takeover, ,"
                   "permessage-deflate; x=\"unterminated, also, ignored\" junk ,"
                   "permessage-deflate; server_no_context_takeover",
                   15, "permessage-deflate; server_no_context_takeover", 1, 0, 15, 15);
    /* The first acceptable offer wins, even if a later one asks for less. */
    assert_accepts("permessage-deflate; server_max_window_bits=10, permessage-deflate", 15,
                   "permessage-deflate; server_max_window_bits=10", 0, 0, 10, 15);
}

static void test_ws_deflate_negotiate_declines_invalid_parameters(void **state)
{
    static const char *const offers[] = {
        "",
        " , ,",
        "deflate-frame",
        "x-webkit-deflate-frame; no_context_takeover",
        "permessage-deflate; unknown",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=0x0a",
        "permessage-deflate; server_max_window_bits=-10",
        "permessage-deflate; server_max_window_bits=1",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=\"1 0\"",
        "permessage-deflate; client_max_window_bits=\"100000000000000000010\"",
        "permessage-deflate; client_max_window_bits=10abc",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; ; server_no_context_takeover",
        "permessage-deflate;",
        "permessage-deflate server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover junk",
        "; permessage-deflate",
        "\"permessage-deflate\"",
        "permessage-deflate; server_max_window_bits=10 11",
    };
    for (size_t i = 0; i < ARRAY_SIZE(offers); i++)
        assert_declines(offers[i], 15);

    /* No offer at all, and a NULL response buffer of size 0. */
    casgi__ws_deflate_params_t p;
    char resp[4] = "x";
    assert_int_equal(casgi__ws_deflate_negotiate((casgi_bytes_t){NULL, 0}, 15, &p, resp, 4), 0);
    assert_string_equal(resp, "");
    assert_int_equal(
        casgi__ws_deflate_negotiate(CASGI_STR("permessage-deflate; foo"), 15, &p, NULL, 0), 0);
}

static void test_ws_deflate_negotiate_declines_server_window_8(void **state)
{
    assert_declines("permessage-deflate; server_max_window_bits=8", 15);
    assert_declines("permessage-deflate; server_max_window_bits=\"8\"", 9);
    assert_declines("permessage-deflate; server_max_window_bits=8; client_max_window_bits", 15);
}

static void test_ws_deflate_negotiate_never_overflows_the_response(void **state)
{
    const char *offer = "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; "
                        "client_no_context_takeover; server_no_context_takeover";
    const char *want = "permessage-deflate; server_no_context_takeover; "
                       "client_no_context_takeover; server_max_window_bits=10; "
                       "client_max_window_bits=9";
    size_t need = strlen(want) + 1;
    assert_true(need <= 128);
    for (size_t size = 0; size <= need + 1; size++) {
        /* Exactly `size` bytes, so ASan sees any write past them. */
        char *resp = malloc(size ? size : 1);
        assert_non_null(resp);
        casgi__ws_deflate_params_t p;
        int r = casgi__ws_deflate_negotiate(CASGI_STR(offer), 15, &p, resp, size);
        if (size >= need) {
            assert_int_equal(r, 1);
            assert_string_equal(resp, want);
        } else {
            assert_int_equal(r, 0);
            if (size > 0)
                assert_string_equal(resp, "");
        }
        free(resp);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Streams
 * ------------------------------------------------------------------------------------------- */

static const casgi__ws_deflate_params_t defaults = {0, 0, 15, 15};

static casgi__ws_deflate_t *new_deflate(const casgi__ws_deflate_params_t *p, int mem_level)
{
    casgi__ws_deflate_t *d = NULL;
    assert_int_equal(casgi__ws_deflate_new(p, mem_level, &d), 0);
    assert_non_null(d);
    return d;
}

/* The same agreement seen from the client: our server_* is its client_* and vice versa. */
static casgi__ws_deflate_params_t mirror(const casgi__ws_deflate_params_t *p)
{
    casgi__ws_deflate_params_t m = {p->client_no_context_takeover, p->server_no_context_takeover,
                                    p->client_max_window_bits, p->server_max_window_bits};
    return m;
}

/* Deterministic pseudo-random bytes (xorshift64). */
static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

static void fill_repetitive(unsigned char *p, size_t n)
{
    static const char text[] = "{\"type\": \"websocket.send\", \"text\": \"hello, world\"}\n";
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)text[i % (sizeof(text) - 1)];
}

/* Sends one message from tx to rx; returns the compressed size. */
static size_t round_trip(casgi__ws_deflate_t *tx, casgi__ws_deflate_t *rx, const void *data,
                         size_t len)
{
    casgi__buf_t wire = {0}, got = {0};
    assert_int_equal(casgi__ws_deflate_compress(tx, data, len, &wire), 0);
    size_t wire_len = casgi__buf_size(&wire);
    assert_true(wire_len > 0);
    assert_int_equal(casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), wire_len, len, &got),
                     0);
    assert_int_equal(casgi__buf_size(&got), len);
    if (len > 0)
        assert_memory_equal(casgi__buf_data(&got), data, len);
    casgi__buf_free(&wire);
    casgi__buf_free(&got);
    return wire_len;
}

static void assert_decompresses_to(casgi__ws_deflate_t *d, const unsigned char *in, size_t len,
                                   const char *text)
{
    casgi__buf_t out = {0};
    assert_int_equal(casgi__ws_deflate_decompress(d, in, len, 1024, &out), 0);
    assert_int_equal(casgi__buf_size(&out), strlen(text));
    if (out.len > 0)
        assert_memory_equal(casgi__buf_data(&out), text, strlen(text));
    casgi__buf_free(&out);
}

static void test_ws_deflate_empty_message_is_one_zero_byte(void **state)
{
    casgi__ws_deflate_t *d = new_deflate(&defaults, 8);
    casgi__buf_t out = {0};
    assert_int_equal(casgi__ws_deflate_compress(d, NULL, 0, &out), 0);
    assert_int_equal(casgi__buf_size(&out), 1);
    assert_int_equal((unsigned char)casgi__buf_data(&out)[0], 0x00);
    /* Also after a message, with context takeover. */
    casgi__buf_clear(&out);
    assert_int_equal(casgi__ws_deflate_compress(d, "abc", 3, &out), 0);
    casgi__buf_clear(&out);
    assert_int_equal(casgi__ws_deflate_compress(d, "", 0, &out), 0);
    assert_int_equal(casgi__buf_size(&out), 1);
    assert_int_equal((unsigned char)casgi__buf_data(&out)[0], 0x00);
    casgi__buf_free(&out);

    /* Receiving: 0x00 (7.2.3.6), an empty fixed block 0x02 0x00, and an empty payload. */
    static const unsigned char zero[] = {0x00}, fixed[] = {0x02, 0x00};
    assert_decompresses_to(d, zero, sizeof(zero), "");
    assert_decompresses_to(d, fixed, sizeof(fixed), "");
    assert_decompresses_to(d, NULL, 0, "");
    round_trip(d, d, "", 0);
    casgi__ws_deflate_free(d);
}

static void test_ws_deflate_hello_matches_rfc7692(void **state)
{
    /* 7.2.3.1 and 7.2.3.2: "Hello" twice with context takeover. */
    static const unsigned char first[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const unsigned char second[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    casgi__ws_deflate_t *d = new_deflate(&defaults, 8);
    casgi__buf_t out = {0};
    assert_int_equal(casgi__ws_deflate_compress(d, "Hello", 5, &out), 0);
    assert_int_equal(casgi__buf_size(&out), sizeof(first));
    assert_memory_equal(casgi__buf_data(&out), first, sizeof(first));
    casgi__buf_clear(&out);
    assert_int_equal(casgi__ws_deflate_compress(d, "Hello", 5, &out), 0);
    assert_int_equal(casgi__buf_size(&out), sizeof(second));
    assert_memory_equal(casgi__buf_data(&out), second, sizeof(second));
    casgi__buf_free(&out);

    assert_decompresses_to(d, first, sizeof(first), "Hello");
    assert_decompresses_to(d, second, sizeof(second), "Hello");
    casgi__ws_deflate_free(d);
}

static void test_ws_deflate_decompresses_rfc7692_variants(void **state)
{
    /* 7.2.3.3: no compression (a stored block). */
    static const unsigned char stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                           0x65, 0x6c, 0x6c, 0x6f, 0x00};
    /* 7.2.3.4: a block with BFINAL set, then the 0x00 that starts the sync block. */
    static const unsigned char bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    /* The same without the 0x00 (zlib's Z_FINISH output, which some senders use). */
    static const unsigned char finish[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    /* 7.2.3.5: two DEFLATE blocks in one message. */
    static const unsigned char two[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                        0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    /* "Hello" again, referring to the previous message's window. */
    static const unsigned char again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};

    casgi__ws_deflate_t *d = new_deflate(&defaults, 8);
    assert_decompresses_to(d, stored, sizeof(stored), "Hello");
    assert_decompresses_to(d, again, sizeof(again), "Hello");
    assert_decompresses_to(d, two, sizeof(two), "Hello");
    assert_decompresses_to(d, again, sizeof(again), "Hello");
    /* The window survives a final block, within and across messages. */
    assert_decompresses_to(d, bfinal, sizeof(bfinal), "Hello");
    assert_decompresses_to(d, again, sizeof(again), "Hello");
    assert_decompresses_to(d, finish, sizeof(finish), "Hello");
    assert_decompresses_to(d, again, sizeof(again), "Hello");
    /* A final block, then more blocks in the same message using its window. */
    unsigned char both[sizeof(finish) + sizeof(again)];
    memcpy(both, finish, sizeof(finish));
    memcpy(both + sizeof(finish), again, sizeof(again));
    assert_decompresses_to(d, both, sizeof(both), "HelloHello");
    casgi__ws_deflate_free(d);

    /* Without context takeover, each message stands alone. */
    casgi__ws_deflate_params_t nct = {0, 1, 15, 15};
    d = new_deflate(&nct, 8);
    assert_decompresses_to(d, finish, sizeof(finish), "Hello");
    assert_decompresses_to(d, bfinal, sizeof(bfinal), "Hello");
    casgi__ws_deflate_free(d);
}

static void check_round_trips(const casgi__ws_deflate_params_t *p, int mem_level)
{
    casgi__ws_deflate_params_t back = mirror(p);
    casgi__ws_deflate_t *server = new_deflate(p, mem_level);
    casgi__ws_deflate_t *client = new_deflate(&back, mem_level);
    unsigned char *data = malloc(MIB);
    assert_non_null(data);

    /* Empty and small, both directions. */
    round_trip(server, client, "", 0);
    round_trip(client, server, "", 0);
    round_trip(server, client, "x", 1);
    round_trip(client, server, "Hello, WebSocket", 16);

    /* 1 MiB of random bytes: barely compressible; stored blocks must pass too. */
    fill_random(data, MIB, 42);
    size_t n = round_trip(server, client, data, MIB);
    /* Small memLevels mean small blocks, each with its own header. */
    assert_true(n > MIB && n < MIB + MIB / (mem_level >= 5 ? 100 : 10));
    round_trip(client, server, data, MIB);

    /* 1 MiB of repetitive text. */
    fill_repetitive(data, MIB);
    n = round_trip(server, client, data, MIB);
    assert_true(n < MIB / 100);
    round_trip(client, server, data, MIB);

    /* A second identical message is smaller only when the window carries over. It must fit in
     * the window, which zlib uses up to 262 bytes short of its size: 2000 bytes, or a quarter of
     * the window when that is smaller. */
    size_t size = (size_t)1 << (p->server_max_window_bits - 2);
    size = size < 2000 ? size : 2000;
    fill_random(data, size, 7);
    size_t first = round_trip(server, client, data, size);
    size_t second = round_trip(server, client, data, size);
    if (p->server_no_context_takeover)
        assert_int_equal(second, first);
    else
        assert_true(second < first / 4);
    size = (size_t)1 << (p->client_max_window_bits - 2);
    size = size < 2000 ? size : 2000;
    first = round_trip(client, server, data, size);
    second = round_trip(client, server, data, size);
    if (p->client_no_context_takeover)
        assert_int_equal(second, first);
    else
        assert_true(second < first / 4);

    free(data);
    casgi__ws_deflate_free(server);
    casgi__ws_deflate_free(client);
}

static void test_ws_deflate_round_trips_with_context_takeover(void **state)
{
    check_round_trips(&defaults, 8);
}

static void test_ws_deflate_round_trips_without_context_takeover(void **state)
{
    casgi__ws_deflate_params_t p = {1, 1, 15, 15};
    check_round_trips(&p, 8);
    casgi__ws_deflate_params_t server_only = {1, 0, 15, 15};
    check_round_trips(&server_only, 8);
}

static void test_ws_deflate_round_trips_with_small_windows(void **state)
{
    casgi__ws_deflate_params_t p = {0, 0, 9, 10};
    check_round_trips(&p, 1);
    casgi__ws_deflate_params_t q = {0, 1, 12, 9};
    check_round_trips(&q, 5);
    /* Out-of-range values are clamped, not rejected. */
    casgi__ws_deflate_params_t r = {0, 0, 8, 16};
    check_round_trips(&r, 0);
}

static void test_ws_deflate_appends_after_existing_bytes(void **state)
{
    casgi__ws_deflate_t *d = new_deflate(&defaults, 8);
    casgi__buf_t out = {0};
    /* A consumed front: reserve() may move the bytes, the result must still follow them. */
    assert_int_equal(casgi__buf_append(&out, "..prefix", 8), 0);
    casgi__buf_consume(&out, 2);
    assert_int_equal(casgi__ws_deflate_compress(d, "Hello", 5, &out), 0);
    assert_int_equal(casgi__buf_size(&out), 6 + 7);
    assert_memory_equal(casgi__buf_data(&out), "prefix\xf2\x48\xcd\xc9\xc9\x07\x00", 13);

    casgi__buf_t msg = {0};
    assert_int_equal(casgi__buf_append(&msg, "..head:", 7), 0);
    casgi__buf_consume(&msg, 2);
    /* `max` counts the bytes this call adds, not what was there. */
    assert_int_equal(casgi__ws_deflate_decompress(d, casgi__buf_data(&out) + 6, 7, 5, &msg), 0);
    assert_int_equal(casgi__buf_size(&msg), 10);
    assert_memory_equal(casgi__buf_data(&msg), "head:Hello", 10);
    casgi__buf_free(&out);
    casgi__buf_free(&msg);
    casgi__ws_deflate_free(d);
}

static void test_ws_deflate_zip_bomb_stops_at_max(void **state)
{
    size_t big = 10 * MIB;
    unsigned char *zeros = calloc(1, big);
    assert_non_null(zeros);
    casgi__ws_deflate_t *tx = new_deflate(&defaults, 8);
    casgi__buf_t wire = {0};
    assert_int_equal(casgi__ws_deflate_compress(tx, zeros, big, &wire), 0);
    free(zeros);
    print_message("10 MiB of zeros compress to %zu bytes\n", casgi__buf_size(&wire));
    assert_true(casgi__buf_size(&wire) < 20000);

    casgi__ws_deflate_t *rx = new_deflate(&defaults, 8);
    casgi__buf_t out = {0};
    assert_int_equal(casgi__buf_append(&out, "keep", 4), 0);
    int r =
        casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), casgi__buf_size(&wire), MIB, &out);
    assert_int_equal(r, CASGI_ELENGTH);
    /* `out` is back as it was, and never grew past the limit on the way. */
    assert_int_equal(casgi__buf_size(&out), 4);
    assert_memory_equal(casgi__buf_data(&out), "keep", 4);
    assert_true(out.cap <= 2 * MIB);
    casgi__buf_free(&out);

    /* From an empty buffer, capacity stays at the limit exactly (1 MiB is a power of two). */
    r = casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), casgi__buf_size(&wire), MIB, &out);
    assert_int_equal(r, CASGI_ELENGTH);
    assert_true(out.cap <= MIB);
    casgi__buf_free(&out);

    /* The limit is inclusive: exactly `max` bytes pass, one more does not. */
    r = casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), casgi__buf_size(&wire), big - 1,
                                     &out);
    assert_int_equal(r, CASGI_ELENGTH);
    assert_int_equal(casgi__buf_size(&out), 0);
    r = casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), casgi__buf_size(&wire), big, &out);
    assert_int_equal(r, 0);
    assert_int_equal(casgi__buf_size(&out), big);
    casgi__buf_free(&out);

    casgi__buf_clear(&wire);
    assert_int_equal(casgi__ws_deflate_compress(tx, "Hello", 5, &wire), 0);
    r = casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), casgi__buf_size(&wire), 4, &out);
    assert_int_equal(r, CASGI_ELENGTH);
    assert_int_equal(casgi__buf_size(&out), 0);
    assert_int_equal(casgi__ws_deflate_decompress(rx, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 0, &out),
                     CASGI_ELENGTH);

    casgi__buf_free(&out);
    casgi__buf_free(&wire);
    casgi__ws_deflate_free(tx);
    casgi__ws_deflate_free(rx);
}

static void assert_corrupt(casgi__ws_deflate_t *d, const void *in, size_t len)
{
    casgi__buf_t out = {0};
    assert_int_equal(casgi__buf_append(&out, "keep", 4), 0);
    assert_int_equal(casgi__ws_deflate_decompress(d, in, len, MIB, &out), CASGI_EEVENT);
    assert_int_equal(casgi__buf_size(&out), 4);
    casgi__buf_free(&out);
}

static void test_ws_deflate_corrupt_input_is_an_event_error(void **state)
{
    casgi__ws_deflate_t *d = new_deflate(&defaults, 8);
    /* BTYPE 11 is reserved. */
    assert_corrupt(d, "\xff\xff\xff", 3);
    /* A stored block whose length and its complement disagree. */
    assert_corrupt(d, "\x00\x05\x00\x00\x00Hello", 10);
    /* A distance reaching before the start of the window (fresh context). */
    assert_corrupt(d, "\xf2\x00\x11\x00\x00", 5);

    /* A truncated message does not end on a block boundary. */
    unsigned char data[3000];
    fill_random(data, sizeof(data), 3);
    casgi__ws_deflate_t *tx = new_deflate(&defaults, 8);
    casgi__buf_t wire = {0};
    assert_int_equal(casgi__ws_deflate_compress(tx, data, sizeof(data), &wire), 0);
    assert_corrupt(d, casgi__buf_data(&wire), casgi__buf_size(&wire) / 2);
    casgi__buf_clear(&wire);
    fill_repetitive(data, sizeof(data));
    assert_int_equal(casgi__ws_deflate_compress(tx, data, sizeof(data), &wire), 0);
    assert_corrupt(d, casgi__buf_data(&wire), casgi__buf_size(&wire) - 1);
    /* Garbage after a final block. */
    assert_corrupt(d, "\xf3\x48\xcd\xc9\xc9\x07\x00\xff\xff", 9);

    /* Random noise either fails cleanly or decodes to something within the limit. */
    for (uint64_t seed = 1; seed <= 200; seed++) {
        unsigned char noise[64];
        fill_random(noise, sizeof(noise), seed);
        casgi__buf_t out = {0};
        int r =
            casgi__ws_deflate_decompress(d, noise, (size_t)(seed % sizeof(noise)) + 1, 4096, &out);
        assert_true(r == 0 || r == CASGI_EEVENT || r == CASGI_ELENGTH);
        assert_true(casgi__buf_size(&out) <= 4096);
        casgi__buf_free(&out);
    }

    /* After an error the context starts over (the connection closes anyway). */
    assert_decompresses_to(d, (const unsigned char *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, "Hello");
    casgi__buf_free(&wire);
    casgi__ws_deflate_free(tx);
    casgi__ws_deflate_free(d);
}

static void test_ws_deflate_split_input_and_tiny_limits(void **state)
{
    /* Output limits of every size around a message: exact is fine, one less is too long. */
    unsigned char data[5000];
    fill_repetitive(data, sizeof(data));
    casgi__ws_deflate_params_t nct = {1, 1, 15, 15};
    casgi__ws_deflate_t *tx = new_deflate(&nct, 8);
    casgi__ws_deflate_t *rx = new_deflate(&nct, 8);
    casgi__buf_t wire = {0};
    assert_int_equal(casgi__ws_deflate_compress(tx, data, sizeof(data), &wire), 0);
    for (size_t max = sizeof(data) - 3; max <= sizeof(data) + 3; max++) {
        casgi__buf_t out = {0};
        int r = casgi__ws_deflate_decompress(rx, casgi__buf_data(&wire), casgi__buf_size(&wire),
                                             max, &out);
        assert_int_equal(r, max >= sizeof(data) ? 0 : CASGI_ELENGTH);
        assert_int_equal(casgi__buf_size(&out), r == 0 ? sizeof(data) : 0);
        casgi__buf_free(&out);
    }
    casgi__buf_free(&wire);
    casgi__ws_deflate_free(tx);
    casgi__ws_deflate_free(rx);
}

/* ---------------------------------------------------------------------------------------------
 * Memory per connection
 * ------------------------------------------------------------------------------------------- */

static void report_memory(const char *label, const casgi__ws_deflate_params_t *p, int mem_level)
{
    casgi__ws_deflate_t *d = new_deflate(p, mem_level);
    size_t idle = casgi__ws_deflate_memory(d);
    casgi__buf_t out = {0}, back = {0};
    assert_int_equal(casgi__ws_deflate_compress(d, "Hello", 5, &out), 0);
    size_t after_send = casgi__ws_deflate_memory(d);
    casgi__ws_deflate_t *peer = new_deflate(p, mem_level);
    assert_int_equal(
        casgi__ws_deflate_decompress(peer, casgi__buf_data(&out), casgi__buf_size(&out), 64, &back),
        0);
    size_t after_recv = casgi__ws_deflate_memory(peer);
    assert_int_equal(
        casgi__ws_deflate_decompress(d, casgi__buf_data(&out), casgi__buf_size(&out), 64, &back),
        0);
    size_t both = casgi__ws_deflate_memory(d);
    print_message("%-34s idle %zu B, after a send %zu B, after a receive %zu B, both %zu B\n",
                  label, idle, after_send, after_recv, both);

    assert_true(idle < 512);
    if (p->server_no_context_takeover)
        assert_int_equal(after_send, idle);
    else
        assert_true(after_send > idle);
    if (p->client_no_context_takeover) {
        assert_int_equal(after_recv, idle);
        assert_int_equal(both, idle);
    } else {
        assert_true(after_recv > idle);
    }
    casgi__buf_free(&out);
    casgi__buf_free(&back);
    casgi__ws_deflate_free(d);
    casgi__ws_deflate_free(peer);
}

static void test_ws_deflate_memory_per_connection(void **state)
{
    casgi__ws_deflate_params_t full = {0, 0, 15, 15};
    casgi__ws_deflate_params_t small = {0, 0, 12, 12};
    casgi__ws_deflate_params_t nct = {1, 1, 15, 15};
    report_memory("window 15, memLevel 8", &full, 8);
    report_memory("window 15, memLevel 5", &full, 5);
    report_memory("window 12, memLevel 5", &small, 5);
    report_memory("window 12, memLevel 1", &small, 1);
    report_memory("no context takeover, 15/8", &nct, 8);

    /* Idle memory is the object alone: zlib is only allocated on first use. */
    casgi__ws_deflate_t *d = new_deflate(&full, 8);
    size_t idle = casgi__ws_deflate_memory(d);
    casgi__ws_deflate_free(d);
    casgi__ws_deflate_free(NULL);
    print_message("sizeof object %zu B (z_stream %zu B x 2)\n", idle, sizeof(z_stream));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_deflate_negotiate_plain_offer),
        cmocka_unit_test(test_ws_deflate_negotiate_each_parameter),
        cmocka_unit_test(test_ws_deflate_negotiate_browser_offers),
        cmocka_unit_test(test_ws_deflate_negotiate_takes_first_valid_offer),
        cmocka_unit_test(test_ws_deflate_negotiate_declines_invalid_parameters),
        cmocka_unit_test(test_ws_deflate_negotiate_declines_server_window_8),
        cmocka_unit_test(test_ws_deflate_negotiate_never_overflows_the_response),
        cmocka_unit_test(test_ws_deflate_empty_message_is_one_zero_byte),
        cmocka_unit_test(test_ws_deflate_hello_matches_rfc7692),
        cmocka_unit_test(test_ws_deflate_decompresses_rfc7692_variants),
        cmocka_unit_test(test_ws_deflate_round_trips_with_context_takeover),
        cmocka_unit_test(test_ws_deflate_round_trips_without_context_takeover),
        cmocka_unit_test(test_ws_deflate_round_trips_with_small_windows),
        cmocka_unit_test(test_ws_deflate_appends_after_existing_bytes),
        cmocka_unit_test(test_ws_deflate_zip_bomb_stops_at_max),
        cmocka_unit_test(test_ws_deflate_corrupt_input_is_an_event_error),
        cmocka_unit_test(test_ws_deflate_split_input_and_tiny_limits),
        cmocka_unit_test(test_ws_deflate_memory_per_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
