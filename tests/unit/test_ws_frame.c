/* RFC 6455 framing (src/ws_frame.c): frame headers both ways, unmasking, UTF-8 by fragments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ws_frame.h"

static void test_parse_needs_the_whole_header(void **state)
{
    (void)state;
    casgi__ws_frame_t f;
    const unsigned char masked16[] = {0x82, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4};
    for (size_t n = 0; n < sizeof(masked16); n++)
        assert_int_equal(casgi__ws_frame_parse(masked16, n, &f), 0);
    assert_int_equal(casgi__ws_frame_parse(masked16, sizeof(masked16), &f), 8);
    assert_int_equal(f.len, 256);
    assert_int_equal(f.opcode, CASGI__WS_OP_BINARY);
    assert_int_equal(f.flags, CASGI__WS_FIN);
    assert_true(f.masked);
    assert_memory_equal(f.key, "\x01\x02\x03\x04", 4);
    assert_int_equal(f.header_len, 8);
}

static void test_parse_lengths_and_flags(void **state)
{
    (void)state;
    casgi__ws_frame_t f;
    const unsigned char small[] = {0x01 | CASGI__WS_RSV1, 5};
    assert_int_equal(casgi__ws_frame_parse(small, 2, &f), 2);
    assert_int_equal(f.len, 5);
    assert_int_equal(f.flags, CASGI__WS_RSV1); /* no FIN: a first fragment */
    assert_false(f.masked);
    const unsigned char big[] = {0x88, 127, 0, 0, 0, 1, 0, 0, 0, 2};
    assert_int_equal(casgi__ws_frame_parse(big, sizeof(big), &f), 10);
    assert_int_equal(f.len, (UINT64_C(1) << 32) + 2);
    assert_int_equal(f.opcode, CASGI__WS_OP_CLOSE);
    const unsigned char top_bit[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(casgi__ws_frame_parse(top_bit, sizeof(top_bit), &f), -1);
}

static void test_header_round_trips_through_parse(void **state)
{
    (void)state;
    const uint64_t lengths[] = {0, 125, 126, 65535, 65536, UINT64_C(1) << 40};
    const size_t sizes[] = {2, 2, 4, 4, 10, 10};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        unsigned char out[CASGI__WS_MAX_SERVER_HEADER];
        size_t n = casgi__ws_frame_header(out, CASGI__WS_FIN | CASGI__WS_OP_TEXT, lengths[i]);
        assert_int_equal(n, sizes[i]);
        casgi__ws_frame_t f;
        assert_int_equal(casgi__ws_frame_parse(out, n, &f), (int)n);
        assert_int_equal(f.len, lengths[i]);
        assert_int_equal(f.opcode, CASGI__WS_OP_TEXT);
        assert_false(f.masked); /* a server's frames are never masked */
    }
}

/* Every length around the 8- and 64-byte strides (two turns of the wide loop and every tail),
 * every phase, unaligned, in place or not. */
static void test_unmask_matches_the_bytewise_definition(void **state)
{
    (void)state;
    const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    unsigned char src[140], expect[140], out[141], inplace[141];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(i * 7 + 3);
    for (unsigned phase = 0; phase < 4; phase++)
        for (size_t len = 0; len < sizeof(src); len++) {
            for (size_t i = 0; i < len; i++)
                expect[i] = src[i] ^ key[(phase + i) & 3];
            casgi__ws_frame_unmask(out + 1, src, len, key, phase);
            assert_memory_equal(out + 1, expect, len);
            memcpy(inplace + 1, src, len);
            casgi__ws_frame_unmask(inplace + 1, inplace + 1, len, key, phase);
            assert_memory_equal(inplace + 1, expect, len);
        }
}

static void test_unmask_in_pieces_equals_unmask_at_once(void **state)
{
    (void)state;
    const unsigned char key[4] = {1, 2, 3, 4};
    unsigned char src[77], whole[77], pieces[77];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(255 - i);
    casgi__ws_frame_unmask(whole, src, sizeof(src), key, 0);
    size_t at = 0, step = 1;
    while (at < sizeof(src)) {
        size_t n = at + step > sizeof(src) ? sizeof(src) - at : step;
        casgi__ws_frame_unmask(pieces + at, src + at, n, key, (unsigned)(at & 3));
        at += n;
        step = step * 2 + 1;
    }
    assert_memory_equal(whole, pieces, sizeof(src));
}

static void test_utf8_accepts_valid_text(void **state)
{
    (void)state;
    const char *valid[] = {"",
                           "plain ascii that is longer than eight bytes",
                           "\xc3\xa9",
                           "\xe2\x82\xac",
                           "\xf0\x9d\x84\x9e",
                           "\xed\x9f\xbf",
                           "\xf4\x8f\xbf\xbf",
                           "mixed \xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e text"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        assert_true(casgi__ws_frame_valid_utf8(valid[i], strlen(valid[i])));
}

static void test_utf8_rejects_overlongs_surrogates_and_out_of_range(void **state)
{
    (void)state;
    const char *invalid[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",       "\xf4\x90\x80\x80",
                             "\xff",     "\x80",         "ok\xf5\x80\x80\x80", "\xe2\x28\xa1"};
    size_t complete;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(casgi__ws_frame_utf8(invalid[i], strlen(invalid[i]), &complete), -1);
}

static void test_utf8_reports_a_character_cut_by_the_fragment(void **state)
{
    (void)state;
    size_t complete;
    /* "a€" cut after the euro sign's second byte: valid so far, whole up to 1 byte */
    assert_int_equal(casgi__ws_frame_utf8("a\xe2\x82", 3, &complete), 0);
    assert_int_equal(complete, 1);
    assert_false(casgi__ws_frame_valid_utf8("a\xe2\x82", 3));
    /* a cut that can already not become valid fails at once */
    assert_int_equal(casgi__ws_frame_utf8("a\xed\xa0", 3, &complete), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_needs_the_whole_header),
        cmocka_unit_test(test_parse_lengths_and_flags),
        cmocka_unit_test(test_header_round_trips_through_parse),
        cmocka_unit_test(test_unmask_matches_the_bytewise_definition),
        cmocka_unit_test(test_unmask_in_pieces_equals_unmask_at_once),
        cmocka_unit_test(test_utf8_accepts_valid_text),
        cmocka_unit_test(test_utf8_rejects_overlongs_surrogates_and_out_of_range),
        cmocka_unit_test(test_utf8_reports_a_character_cut_by_the_fragment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
