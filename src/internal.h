#ifndef CASGI_INTERNAL_H
#define CASGI_INTERNAL_H

/* The private umbrella: what every source file needs, nothing module-specific. */

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "casgi.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CASGI_LIKELY(x) __builtin_expect(!!(x), 1)
#define CASGI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CASGI_ASSERT(x) assert(x)

/* An intrusive doubly-linked list (libuv's QUEUE idea, typed). */
typedef struct casgi__list_s {
    struct casgi__list_s *next, *prev;
} casgi__list_t;

static inline void casgi__list_init(casgi__list_t *head)
{
    head->next = head->prev = head;
}
static inline int casgi__list_empty(const casgi__list_t *head)
{
    return head->next == head;
}
static inline void casgi__list_insert_tail(casgi__list_t *head, casgi__list_t *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}
static inline void casgi__list_remove(casgi__list_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
}

/* The socket of a listener or a connection: TCP or a Unix domain socket. */
typedef union casgi__stream_u {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} casgi__stream_t;

static inline int casgi__stream_init(uv_loop_t *loop, casgi__stream_t *s, int is_pipe)
{
    return is_pipe ? uv_pipe_init(loop, &s->pipe, 0) : uv_tcp_init(loop, &s->tcp);
}

#endif
