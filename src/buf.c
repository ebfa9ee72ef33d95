#include <stdlib.h>

#include "buf.h"

static size_t slab_fit(size_t want);

int casgi__buf_grow(casgi__buf_t *b, size_t extra)
{
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
    size_t cap = b->cap ? b->cap : b->slab ? 48 : 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2)
            return CASGI_ENOMEM;
        cap *= 2;
    }
    char *p;
    if (b->slab)
        cap = slab_fit(cap);
    if (b->borrowed) {
        p = b->slab ? casgi__slab_alloc(b->slab, cap) : malloc(cap);
        if (p != NULL && b->len > 0)
            memcpy(p, b->base, b->len);
    } else {
        p = b->slab ? casgi__slab_realloc(b->slab, b->base, cap) : realloc(b->base, cap);
    }
    if (p == NULL)
        return CASGI_ENOMEM;
    b->base = p;
    b->cap = cap;
    b->borrowed = 0;
    return 0;
}

void casgi__buf_consume(casgi__buf_t *b, size_t n)
{
    CASGI_ASSERT(n <= b->len - b->off);
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
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
    if (b->borrowed)
        b->borrowed = 0;
    else if (b->slab)
        casgi__slab_free(b->slab, b->base);
    else
        free(b->base);
    b->base = NULL;
    b->off = b->len = b->cap = 0;
}

/* The header keeps the payload aligned for any type, as malloc's is. */
#define SLAB_HEADER 16
#define SLAB_MIN_SHIFT 6 /* 64 B */
#define SLAB_LARGE CASGI_SLAB_CLASSES

void casgi__slab_init(casgi__slab_t *slab, size_t max_per_class)
{
    memset(slab, 0, sizeof(*slab));
    for (size_t i = 0; i < CASGI_SLAB_CLASSES; i++)
        slab->classes[i].max = max_per_class;
}

static size_t slab_class_size(size_t cls)
{
    return (size_t)1 << (cls + SLAB_MIN_SHIFT);
}

/* The room of the smallest class that holds `want` bytes: a buffer uses all of its block. */
static size_t slab_fit(size_t want)
{
    for (size_t cls = 0; cls < CASGI_SLAB_CLASSES; cls++)
        if (slab_class_size(cls) - SLAB_HEADER >= want)
            return slab_class_size(cls) - SLAB_HEADER;
    return want;
}

void *casgi__slab_alloc(casgi__slab_t *slab, size_t size)
{
    size_t need = size + SLAB_HEADER;
    if (need < size)
        return NULL;
    /* the class is the bit width of need - 1, less the smallest class's */
    size_t width = need <= 64 ? SLAB_MIN_SHIFT
                              : (size_t)(64 - __builtin_clzll((unsigned long long)(need - 1)));
    size_t cls = width - SLAB_MIN_SHIFT;
    if (cls > CASGI_SLAB_CLASSES)
        cls = CASGI_SLAB_CLASSES;
    char *block = cls < CASGI_SLAB_CLASSES
                      ? casgi__pool_take(&slab->classes[cls], slab_class_size(cls))
                      : malloc(need);
    if (block == NULL)
        return NULL;
    memcpy(block, &cls, sizeof(cls));
    return block + SLAB_HEADER;
}

void *casgi__slab_calloc(casgi__slab_t *slab, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = casgi__slab_alloc(slab, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static size_t slab_class_of(const void *ptr)
{
    size_t cls;
    memcpy(&cls, (const char *)ptr - SLAB_HEADER, sizeof(cls));
    return cls;
}

void casgi__slab_free(casgi__slab_t *slab, void *ptr)
{
    if (ptr == NULL)
        return;
    size_t cls = slab_class_of(ptr);
    char *block = (char *)ptr - SLAB_HEADER;
    if (cls < CASGI_SLAB_CLASSES)
        casgi__pool_give(&slab->classes[cls], block);
    else
        free(block);
}

void *casgi__slab_realloc(casgi__slab_t *slab, void *ptr, size_t size)
{
    if (ptr == NULL)
        return casgi__slab_alloc(slab, size);
    size_t cls = slab_class_of(ptr);
    if (cls < CASGI_SLAB_CLASSES && size + SLAB_HEADER <= slab_class_size(cls))
        return ptr;
    if (cls == SLAB_LARGE) {
        char *block = realloc((char *)ptr - SLAB_HEADER, size + SLAB_HEADER);
        return block ? block + SLAB_HEADER : NULL;
    }
    void *p = casgi__slab_alloc(slab, size);
    if (p == NULL)
        return NULL;
    memcpy(p, ptr, slab_class_size(cls) - SLAB_HEADER);
    casgi__slab_free(slab, ptr);
    return p;
}

void casgi__slab_clear(casgi__slab_t *slab)
{
    for (size_t i = 0; i < CASGI_SLAB_CLASSES; i++)
        casgi__pool_clear(&slab->classes[i]);
}
