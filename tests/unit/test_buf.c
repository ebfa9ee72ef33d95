/* The growable byte buffer (src/buf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "buf.h"

static void assert_contents(const casgi__buf_t *b, const char *expected)
{
    assert_int_equal(casgi__buf_size(b), strlen(expected));
    assert_memory_equal(casgi__buf_data(b), expected, strlen(expected));
}

static void test_buf_starts_empty_and_zero_appends_allocate_nothing(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_size(&b), 0);
    assert_int_equal(casgi__buf_append(&b, NULL, 0), 0);
    assert_null(b.base);
    assert_int_equal(b.cap, 0);
    casgi__buf_free(&b);
}

static void test_buf_append_keeps_bytes_in_order(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_append(&b, "hello", 5), 0);
    assert_int_equal(casgi__buf_append(&b, ", ", 2), 0);
    assert_int_equal(casgi__buf_append(&b, "world", 5), 0);
    assert_contents(&b, "hello, world");
    assert_true(b.cap >= b.len);
    casgi__buf_free(&b);
    assert_null(b.base);
    assert_int_equal(casgi__buf_size(&b), 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_consume_drops_from_the_front(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_append(&b, "abcdef", 6), 0);
    casgi__buf_consume(&b, 2);
    assert_contents(&b, "cdef");
    assert_int_equal(b.off, 2); /* no memmove: only the offset moved */
    casgi__buf_consume(&b, 0);
    assert_contents(&b, "cdef");
    assert_int_equal(casgi__buf_append(&b, "gh", 2), 0);
    assert_contents(&b, "cdefgh");
    casgi__buf_free(&b);
}

static void test_buf_consuming_everything_resets_offsets(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_append(&b, "abcdef", 6), 0);
    char *base = b.base;
    size_t cap = b.cap;
    casgi__buf_consume(&b, 4);
    casgi__buf_consume(&b, 2);
    assert_int_equal(casgi__buf_size(&b), 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.len, 0);
    /* memory is kept for the next input */
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.cap, cap);
    assert_int_equal(casgi__buf_append(&b, "xy", 2), 0);
    assert_ptr_equal(casgi__buf_data(&b), base);
    assert_contents(&b, "xy");
    casgi__buf_free(&b);
}

static void test_buf_clear_keeps_memory(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_append(&b, "abc", 3), 0);
    casgi__buf_consume(&b, 1);
    char *base = b.base;
    casgi__buf_clear(&b);
    assert_int_equal(casgi__buf_size(&b), 0);
    assert_int_equal(b.off, 0);
    assert_ptr_equal(b.base, base);
    casgi__buf_free(&b);
}

static void test_buf_reserve_guarantees_room_without_changing_contents(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_reserve(&b, 10), 0);
    assert_true(b.cap - b.len >= 10);
    assert_int_equal(casgi__buf_size(&b), 0);
    assert_int_equal(casgi__buf_append(&b, "abc", 3), 0);
    assert_int_equal(casgi__buf_reserve(&b, 5000), 0);
    assert_true(b.cap - b.len >= 5000);
    assert_contents(&b, "abc");
    /* the reserved room is writable in place, as conn.c's alloc callback does */
    memset(b.base + b.len, 'z', 5000);
    b.len += 5000;
    assert_int_equal(casgi__buf_size(&b), 5003);
    assert_int_equal(b.base[5002], 'z');
    casgi__buf_free(&b);
}

static void test_buf_reserve_with_room_is_a_no_op(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_reserve(&b, 100), 0);
    char *base = b.base;
    size_t cap = b.cap;
    assert_int_equal(casgi__buf_append(&b, "abc", 3), 0);
    assert_int_equal(casgi__buf_reserve(&b, cap - 3), 0);
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.cap, cap);
    casgi__buf_free(&b);
}

static void test_buf_reserve_reclaims_the_front_gap_before_growing(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_reserve(&b, 1), 0);
    size_t cap = b.cap;
    char *base = b.base;
    /* fill it, then consume most of it as pipelined requests would be */
    char *fill = malloc(cap);
    assert_non_null(fill);
    for (size_t i = 0; i < cap; i++)
        fill[i] = (char)('a' + i % 26);
    assert_int_equal(casgi__buf_append(&b, fill, cap), 0);
    assert_int_equal(b.cap, cap);
    casgi__buf_consume(&b, cap - 10);
    assert_int_equal(b.off, cap - 10);

    /* more room than the tail has but less than the gap: moved, not grown */
    assert_int_equal(casgi__buf_reserve(&b, cap - 20), 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.base, base);
    assert_int_equal(casgi__buf_size(&b), 10);
    assert_memory_equal(casgi__buf_data(&b), fill + cap - 10, 10);
    free(fill);
    casgi__buf_free(&b);
}

static void test_buf_pipelined_consumption_never_grows_past_the_live_bytes(void **state)
{
    casgi__buf_t b = {0};
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t first_cap = 0;
    for (int round = 0; round < 1000; round++) {
        assert_int_equal(casgi__buf_append(&b, req, sizeof(req) - 1), 0);
        assert_int_equal(casgi__buf_append(&b, req, 5), 0); /* part of the next one */
        casgi__buf_consume(&b, sizeof(req) - 1);
        assert_contents(&b, "GET /");
        casgi__buf_consume(&b, 5);
        if (round == 0)
            first_cap = b.cap;
    }
    assert_int_equal(b.cap, first_cap);
    casgi__buf_free(&b);
}

static void test_buf_grows_to_large_sizes_keeping_every_byte(void **state)
{
    casgi__buf_t b = {0};
    unsigned char chunk[4093]; /* odd size: crosses every power of two unevenly */
    size_t total = 0;
    uint32_t x = 12345;
    while (total < (8u << 20)) {
        for (size_t i = 0; i < sizeof(chunk); i++) {
            x = x * 1103515245u + 12345u;
            chunk[i] = (unsigned char)(x >> 16);
        }
        assert_int_equal(casgi__buf_append(&b, chunk, sizeof(chunk)), 0);
        total += sizeof(chunk);
    }
    assert_int_equal(casgi__buf_size(&b), total);
    assert_true(b.cap >= total);
    assert_true(b.cap < 2 * total + 4096); /* doubling, not something wasteful */
    /* replay the generator and compare */
    x = 12345;
    const unsigned char *p = (const unsigned char *)casgi__buf_data(&b);
    for (size_t i = 0; i < total; i++) {
        x = x * 1103515245u + 12345u;
        if (p[i] != (unsigned char)(x >> 16))
            fail_msg("byte %zu differs", i);
    }
    casgi__buf_free(&b);
}

static void test_buf_reserve_refuses_impossible_sizes(void **state)
{
    casgi__buf_t b = {0};
    assert_int_equal(casgi__buf_append(&b, "abc", 3), 0);
    assert_int_equal(casgi__buf_reserve(&b, SIZE_MAX), CASGI_ENOMEM);
    assert_int_equal(casgi__buf_reserve(&b, SIZE_MAX - 2), CASGI_ENOMEM);
    assert_int_equal(casgi__buf_reserve(&b, SIZE_MAX / 2 + 2), CASGI_ENOMEM);
    assert_contents(&b, "abc");
    casgi__buf_free(&b);
}

static void test_slab_reuses_a_freed_block_of_the_same_class(void **state)
{
    (void)state;
    casgi__slab_t slab;
    casgi__slab_init(&slab, 4);
    char *a = casgi__slab_alloc(&slab, 40);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 16, 0); /* aligned like malloc's */
    memset(a, 'x', 40);
    casgi__slab_free(&slab, a);
    assert_int_equal(slab.classes[0].count, 1);
    char *b = casgi__slab_alloc(&slab, 30); /* same 64-byte class: the same block comes back */
    assert_ptr_equal(a, b);
    assert_int_equal(slab.classes[0].count, 0);
    casgi__slab_free(&slab, b);
    casgi__slab_clear(&slab);
    assert_int_equal(slab.classes[0].count, 0);
}

static void test_slab_realloc_keeps_bytes_across_classes_and_to_malloc(void **state)
{
    (void)state;
    casgi__slab_t slab;
    casgi__slab_init(&slab, 4);
    unsigned char *p = casgi__slab_alloc(&slab, 10);
    for (int i = 0; i < 10; i++)
        p[i] = (unsigned char)i;
    assert_ptr_equal(casgi__slab_realloc(&slab, p, 48), p); /* still fits its class */
    p = casgi__slab_realloc(&slab, p, 1000);                /* a bigger class */
    for (int i = 0; i < 10; i++)
        assert_int_equal(p[i], i);
    p = casgi__slab_realloc(&slab, p, 100000); /* beyond the classes: plain malloc */
    for (int i = 0; i < 10; i++)
        assert_int_equal(p[i], i);
    p[99999] = 7;
    p = casgi__slab_realloc(&slab, p, 200000);
    assert_int_equal(p[99999], 7);
    casgi__slab_free(&slab, p);
    unsigned char *z = casgi__slab_calloc(&slab, 10, 30);
    for (int i = 0; i < 300; i++)
        assert_int_equal(z[i], 0);
    casgi__slab_free(&slab, z);
    casgi__slab_free(&slab, NULL);
    casgi__slab_clear(&slab);
}

static void test_slab_keeps_at_most_max_blocks_per_class(void **state)
{
    (void)state;
    casgi__slab_t slab;
    casgi__slab_init(&slab, 2);
    void *blocks[5];
    for (int i = 0; i < 5; i++)
        blocks[i] = casgi__slab_alloc(&slab, 100);
    for (int i = 0; i < 5; i++)
        casgi__slab_free(&slab, blocks[i]);
    assert_int_equal(slab.classes[1].count, 2); /* the rest went back to free() */
    casgi__slab_clear(&slab);
}

static void test_buf_on_a_slab_grows_through_its_classes_and_gives_blocks_back(void **state)
{
    (void)state;
    casgi__slab_t slab;
    casgi__slab_init(&slab, 4);
    casgi__buf_t b = {0};
    casgi__buf_use_slab(&b, &slab);
    assert_int_equal(casgi__buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.cap, 48); /* the whole 64-byte block less its header */
    char big[3000];
    memset(big, 'y', sizeof(big));
    assert_int_equal(casgi__buf_append(&b, big, sizeof(big)), 0);
    assert_int_equal(b.cap, 4080);
    assert_memory_equal(casgi__buf_data(&b), "abc", 3);
    assert_int_equal(casgi__buf_append(&b, big, sizeof(big)), 0); /* beyond the classes */
    assert_int_equal(casgi__buf_data(&b)[3 + 2 * sizeof(big) - 1], 'y');
    casgi__buf_clear(&b);
    casgi__buf_free(&b);
    assert_null(b.base);
    assert_int_equal(casgi__buf_append(&b, "d", 1), 0); /* still on the slab after a free */
    casgi__buf_free(&b);
    /* the first block came back for "d"; the 4 KiB one was given back when outgrown */
    assert_int_equal(slab.classes[0].count, 1);
    assert_int_equal(slab.classes[6].count, 1);
    casgi__slab_clear(&slab);
}

static void test_buf_started_in_borrowed_space_moves_out_when_outgrown(void **state)
{
    (void)state;
    char space[8];
    casgi__buf_t b = {0};
    casgi__buf_start_in(&b, space, sizeof(space));
    assert_int_equal(casgi__buf_append(&b, "abcdef", 6), 0);
    assert_ptr_equal(b.base, space); /* fits: no allocation */
    casgi__buf_consume(&b, 2);
    assert_int_equal(casgi__buf_append(&b, "gh", 2), 0);
    assert_ptr_equal(b.base, space);
    assert_int_equal(casgi__buf_append(&b, "ijklmnop", 8), 0);
    assert_ptr_not_equal(b.base, space); /* moved to memory of its own, bytes kept */
    assert_contents(&b, "cdefghijklmnop");
    casgi__buf_free(&b);

    casgi__buf_start_in(&b, space, sizeof(space));
    assert_int_equal(casgi__buf_append(&b, "xy", 2), 0);
    casgi__buf_clear(&b);
    casgi__buf_free(&b); /* the owner's space is never freed */
    assert_null(b.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_starts_empty_and_zero_appends_allocate_nothing),
        cmocka_unit_test(test_buf_append_keeps_bytes_in_order),
        cmocka_unit_test(test_buf_consume_drops_from_the_front),
        cmocka_unit_test(test_buf_consuming_everything_resets_offsets),
        cmocka_unit_test(test_buf_clear_keeps_memory),
        cmocka_unit_test(test_buf_reserve_guarantees_room_without_changing_contents),
        cmocka_unit_test(test_buf_reserve_with_room_is_a_no_op),
        cmocka_unit_test(test_buf_reserve_reclaims_the_front_gap_before_growing),
        cmocka_unit_test(test_buf_pipelined_consumption_never_grows_past_the_live_bytes),
        cmocka_unit_test(test_buf_grows_to_large_sizes_keeping_every_byte),
        cmocka_unit_test(test_buf_reserve_refuses_impossible_sizes),
        cmocka_unit_test(test_slab_reuses_a_freed_block_of_the_same_class),
        cmocka_unit_test(test_slab_realloc_keeps_bytes_across_classes_and_to_malloc),
        cmocka_unit_test(test_slab_keeps_at_most_max_blocks_per_class),
        cmocka_unit_test(test_buf_on_a_slab_grows_through_its_classes_and_gives_blocks_back),
        cmocka_unit_test(test_buf_started_in_borrowed_space_moves_out_when_outgrown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
