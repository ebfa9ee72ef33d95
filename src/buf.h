#ifndef CASGI_BUF_H
#define CASGI_BUF_H

#include <stdlib.h>

#include "internal.h"

/*
 * A growable byte buffer with a read offset, shared by every protocol. Bytes live in
 * base[off, len); consuming from the front only moves `off`, so a run of pipelined requests is
 * consumed without memmove; the front gap is reclaimed when more room is needed.
 */
typedef struct casgi__buf_s {
    char *base;
    size_t off;
    size_t len;
    size_t cap;
    struct casgi__slab_s *slab; /* where the memory comes from; NULL: malloc */
    int borrowed;               /* base is the owner's space (casgi__buf_start_in): never freed */
} casgi__buf_t;

static inline size_t casgi__buf_size(const casgi__buf_t *b)
{
    return b->len - b->off;
}
static inline char *casgi__buf_data(const casgi__buf_t *b)
{
    return b->base + b->off;
}

/*
 * A free list of equal blocks: connection buffers (CASGI_POOL_BLOCK bytes) and recycled protocol
 * states. An idle connection gives its blocks back, so memory follows the connections that are
 * busy now, not the ones that are open, and a busy one takes a block back without malloc.
 * Every block of one pool has the same size; the pool keeps at most `max` of them.
 */
#define CASGI_POOL_BLOCK 16384

typedef struct casgi__pool_s {
    void *free_list; /* each free block starts with the pointer to the next */
    size_t count;
    size_t max;
} casgi__pool_t;

/*
 * A block of `size` bytes (uninitialised): a kept one, or a new one. NULL when out of memory.
 * Inline, like the give and the buffer functions on top of them, because a busy connection takes
 * and gives back its buffers for every request and every WebSocket message.
 */
static inline void *casgi__pool_take(casgi__pool_t *pool, size_t size)
{
    void *block = pool->free_list;
    if (CASGI_UNLIKELY(block == NULL))
        return malloc(size);
    memcpy(&pool->free_list, block, sizeof(void *));
    pool->count--;
    return block;
}
/* Gives a block back: kept for reuse, or freed when the pool is full. */
static inline void casgi__pool_give(casgi__pool_t *pool, void *block)
{
    if (CASGI_UNLIKELY(pool->count >= pool->max)) {
        free(block);
        return;
    }
    memcpy(block, &pool->free_list, sizeof(void *));
    pool->free_list = block;
    pool->count++;
}
/* Frees every block the pool holds. */
void casgi__pool_clear(casgi__pool_t *pool);

/*
 * Small blocks by size class (64 B to 4 KiB, powers of two), each class a pool: the allocations a
 * library makes and frees for every request (nghttp2's streams, frames and header copies) come
 * from these free lists instead of malloc. Each block carries its class in a 16-byte header;
 * larger requests go to malloc. Retention is bounded by each pool's max.
 */
#define CASGI_SLAB_CLASSES 7
typedef struct casgi__slab_s {
    casgi__pool_t classes[CASGI_SLAB_CLASSES];
} casgi__slab_t;

void casgi__slab_init(casgi__slab_t *slab, size_t max_per_class);
void *casgi__slab_alloc(casgi__slab_t *slab, size_t size);
void *casgi__slab_calloc(casgi__slab_t *slab, size_t n, size_t size);
void *casgi__slab_realloc(casgi__slab_t *slab, void *ptr, size_t size);
void casgi__slab_free(casgi__slab_t *slab, void *ptr);
void casgi__slab_clear(casgi__slab_t *slab);

/*
 * Makes the buffer take its memory from `slab` (set while it has none): for buffers that live and
 * die with every request, where malloc and free would cost more than the work they hold.
 */
static inline void casgi__buf_use_slab(casgi__buf_t *b, casgi__slab_t *slab)
{
    b->slab = slab;
}

/*
 * Starts an empty buffer in `size` bytes of the caller's memory, which must outlive it: the usual
 * request then costs no allocation. Outgrown, the contents move to memory of the buffer's own.
 */
static inline void casgi__buf_start_in(casgi__buf_t *b, void *space, size_t size)
{
    b->base = space;
    b->off = b->len = 0;
    b->cap = size;
    b->borrowed = 1;
}

/* casgi__buf_reserve()'s slow path: the buffer has less room than `extra`. */
int casgi__buf_grow(casgi__buf_t *b, size_t extra);

/*
 * Makes room for `extra` more bytes at the end. 0 or CASGI_ENOMEM. Inline because it is called
 * for every field and frame, and nearly always finds the room there.
 */
static inline int casgi__buf_reserve(casgi__buf_t *b, size_t extra)
{
    if (CASGI_LIKELY(b->cap - b->len >= extra))
        return 0;
    return casgi__buf_grow(b, extra);
}

/* Appends bytes. 0 or CASGI_ENOMEM. */
static inline int casgi__buf_append(casgi__buf_t *b, const void *data, size_t len)
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
/* Drops `n` bytes from the front. */
void casgi__buf_consume(casgi__buf_t *b, size_t n);

/* Like casgi__buf_reserve(), taking a pool block when the buffer has no memory yet. */
static inline int casgi__buf_reserve_pooled(casgi__pool_t *pool, casgi__buf_t *b, size_t extra)
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
/* Empties the buffer, keeping its memory. */
static inline void casgi__buf_clear(casgi__buf_t *b)
{
    b->off = b->len = 0;
}
/* Releases the memory; the buffer is empty and reusable afterwards. */
void casgi__buf_free(casgi__buf_t *b);

/* Gives an empty buffer's memory back: a pool block to the pool, anything else to free(). */
static inline void casgi__buf_release(casgi__pool_t *pool, casgi__buf_t *b)
{
    CASGI_ASSERT(b->off == b->len);
    if (b->base == NULL)
        return;
    if (b->cap == CASGI_POOL_BLOCK && b->slab == NULL && !b->borrowed) {
        casgi__pool_give(pool, b->base);
        b->base = NULL;
        b->off = b->len = b->cap = 0;
        return;
    }
    casgi__buf_free(b);
}

#endif
