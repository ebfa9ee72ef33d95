#include <stdlib.h>

#include "buf.h"

int casgi__buf_reserve(casgi__buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    /* Reclaim the consumed front before growing: pipelined input leaves a gap there. */
    if (b->off > 0) {
        size_t size = b->len - b->off;
        memmove(b->base, b->base + b->off, size);
        b->off = 0;
        b->len = size;
        if (b->cap - b->len >= extra)
            return 0;
    }
    size_t want = b->len + extra;
    if (want < extra)
        return CASGI_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2)
            return CASGI_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->base, cap);
    if (p == NULL)
        return CASGI_ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

int casgi__buf_append(casgi__buf_t *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    int err = casgi__buf_reserve(b, len);
    if (err)
        return err;
    memcpy(b->base + b->len, data, len);
    b->len += len;
    return 0;
}

void casgi__buf_consume(casgi__buf_t *b, size_t n)
{
    CASGI_ASSERT(n <= b->len - b->off);
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

int casgi__buf_reserve_pooled(casgi__pool_t *pool, casgi__buf_t *b, size_t extra)
{
    if (b->base == NULL && extra <= CASGI_POOL_BLOCK) {
        void *block = casgi__pool_take(pool, CASGI_POOL_BLOCK);
        if (block == NULL)
            return CASGI_ENOMEM;
        b->base = block;
        b->cap = CASGI_POOL_BLOCK;
        b->off = b->len = 0;
        return 0;
    }
    return casgi__buf_reserve(b, extra);
}

void casgi__buf_release(casgi__pool_t *pool, casgi__buf_t *b)
{
    CASGI_ASSERT(b->off == b->len);
    if (b->base != NULL && b->cap == CASGI_POOL_BLOCK) {
        casgi__pool_give(pool, b->base);
        b->base = NULL;
        b->off = b->len = b->cap = 0;
        return;
    }
    casgi__buf_free(b);
}

void *casgi__pool_take(casgi__pool_t *pool, size_t size)
{
    void *block = pool->free_list;
    if (block == NULL)
        return malloc(size);
    memcpy(&pool->free_list, block, sizeof(void *));
    pool->count--;
    return block;
}

void casgi__pool_give(casgi__pool_t *pool, void *block)
{
    if (pool->count >= pool->max) {
        free(block);
        return;
    }
    memcpy(block, &pool->free_list, sizeof(void *));
    pool->free_list = block;
    pool->count++;
}

void casgi__pool_clear(casgi__pool_t *pool)
{
    while (pool->free_list != NULL) {
        void *next;
        memcpy(&next, pool->free_list, sizeof(void *));
        free(pool->free_list);
        pool->free_list = next;
    }
    pool->count = 0;
}

void casgi__buf_free(casgi__buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->off = b->len = b->cap = 0;
}
