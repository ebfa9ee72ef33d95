/*
 * chat.so: the multi-room chat demo, loaded by the runner (`casgi chat.so`); docs/chat.md has the
 * protocol and the policies.
 *
 *   GET  /                  the page (apps/chat/index.html, embedded at build time)
 *   websocket /ws?room=R&nick=N
 *                           joins room R (default "lobby") as N: the member gets the room's last
 *                           50 messages, everybody gets the join and the new member list, and
 *                           every {"type":"message","text":...} it sends goes to the whole room
 *   anything else           404 (a WebSocket elsewhere is denied with 404 too)
 *
 * State: one chat_t, allocated at lifespan startup and handed to every later scope as
 * scope->state (ASGI's lifespan state); rooms exist while they have members. Everything here runs
 * on the server's loop thread, so nothing is locked.
 *
 * Fan-out: each broadcast is serialised once into a refcounted payload that every member's queue
 * points to. A member has at most one send in flight; its next payload goes out from the send
 * callback, i.e. when the server's buffer for that connection is below its high-water mark. A
 * member whose queue overflows (QUEUE_MAX_MESSAGES or QUEUE_MAX_BYTES) is closed with 1008, so a
 * slow or dead client costs the room a bounded amount of memory and never holds it up.
 *
 * Removal is deferred: a member that must go (queue overflow, failed send, disconnect) is only
 * marked "doomed" where that is found out, often in the middle of a broadcast; room_settle(),
 * called at the end of every callback, unlinks doomed members, tells the others, ends their calls
 * and frees the room once it is empty. A member inside one of its own callbacks (`busy`) is freed
 * by that callback on its way out, never under it.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types that strict C11 hides; clock_gettime */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <casgi.h>
#include <jansson.h>

#include "index_html.h" /* generated from index.html: static const unsigned char index_html[] */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A casgi_bytes_t initialiser for static data, where CASGI_BYTES's compound literal is not one. */
#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
#define IS(bytes, lit) equals((bytes), (lit), sizeof(lit) - 1)

#define NICK_MAX 32    /* bytes of UTF-8 */
#define ROOM_MAX 64    /* bytes of UTF-8 */
#define TEXT_MAX 8192  /* bytes of UTF-8 in one chat message */
#define HISTORY_MAX 50 /* messages a newcomer is shown */
#define QUEUE_MAX_MESSAGES 256
#define QUEUE_MAX_BYTES (1024 * 1024)
/* A member is not read from while its own queue is above this (it must read before it may send
 * more), and is read from again once the queue is below the resume mark. */
#define PAUSE_MESSAGES (QUEUE_MAX_MESSAGES / 4)
#define PAUSE_BYTES (QUEUE_MAX_BYTES / 4)
#define RESUME_MESSAGES (PAUSE_MESSAGES / 2)
#define RESUME_BYTES (PAUSE_BYTES / 2)
#define DEFAULT_ROOM "lobby"

#define CLOSE_POLICY 1008   /* queue overflow; nickname already in the room */
#define CLOSE_INTERNAL 1011 /* out of memory, or the server refused an event */

/* ---- state -------------------------------------------------------------------------------- */

/* One serialised server -> client message, shared by every queue it is in. */
typedef struct payload_s {
    size_t refs;
    size_t len;
    char *json; /* from json_dumps(): freed with free() */
} payload_t;

typedef struct chat_s chat_t;
typedef struct room_s room_t;
typedef struct member_s member_t;

/* Why a WebSocket is refused before it is accepted. */
typedef struct deny_s {
    int status;
    const char *text;
} deny_t;

struct member_s {
    /* connection */
    casgi_call_t *call;
    chat_t *chat;
    const deny_t *deny; /* set when the handshake is to be refused */
    int http_denial;    /* the server takes a denial response (CASGI_EXT_WEBSOCKET_HTTP_RESPONSE) */
    char nick[NICK_MAX + 1];
    char room_name[ROOM_MAX + 1];

    /* membership: in room->members while room != NULL */
    room_t *room;
    member_t *prev;
    member_t *next;

    /* outgoing queue: a ring of payload references, at most one send in flight */
    payload_t *queue[QUEUE_MAX_MESSAGES];
    size_t queue_head;
    size_t queue_len;
    size_t queue_bytes;
    int sending;
    int paused; /* no receive pending: too much of its own output is waiting */

    /* leaving */
    int doomed;               /* room_settle() will remove it */
    int close_code;           /* the close frame to leave with; 0: none (the client is gone) */
    const char *close_reason; /* static */
    int busy;                 /* inside one of its own callbacks: freed on the way out */
    int ended;                /* casgi_call_end() done */
};

struct room_s {
    chat_t *chat;
    room_t *prev;
    room_t *next;
    char name[ROOM_MAX + 1];
    member_t *first; /* in join order */
    member_t *last;
    size_t num_members;
    size_t num_doomed;
    json_t *history[HISTORY_MAX]; /* message objects, oldest at history_head */
    size_t history_head;
    size_t history_len;
};

struct chat_s {
    room_t *rooms;
    size_t num_rooms;
    int stopping; /* lifespan shutdown came while rooms were open: the last room frees us */
};

static const deny_t deny_not_found = {404, "Not Found"};
static const deny_t deny_no_state = {500, "chat.so keeps its rooms in lifespan state: run it with "
                                          "--lifespan auto or on"};
static const deny_t deny_bad_nick = {
    400, "nick must be 1 to 32 bytes of UTF-8 without control characters"};
static const deny_t deny_bad_room = {
    400, "room must be 1 to 64 bytes of UTF-8 without control characters"};

static int equals(casgi_bytes_t bytes, const char *lit, size_t len)
{
    return bytes.len == len && memcmp(bytes.base, lit, len) == 0;
}

/* Milliseconds since the epoch, what JavaScript's Date takes. */
static json_int_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- payloads ----------------------------------------------------------------------------- */

/* Serialises `obj` (a new reference, consumed) into a payload with one reference, or NULL. */
static payload_t *payload_new(json_t *obj)
{
    payload_t *p;
    char *json;

    if (obj == NULL)
        return NULL;
    json = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (json == NULL)
        return NULL;
    p = malloc(sizeof(*p));
    if (p == NULL) {
        free(json);
        return NULL;
    }
    p->refs = 1;
    p->len = strlen(json);
    p->json = json;
    return p;
}

static void payload_unref(payload_t *p)
{
    if (p != NULL && --p->refs == 0) {
        free(p->json);
        free(p);
    }
}

/* {"type": type, "nick": nick}: the join and leave notices. */
static payload_t *notice_new(const char *type, const char *nick)
{
    return payload_new(json_pack("{s:s, s:s}", "type", type, "nick", nick));
}

static payload_t *error_new(const char *message)
{
    return payload_new(json_pack("{s:s, s:s}", "type", "error", "message", message));
}

/* {"type": "members", "members": [nick, ...]} in join order. */
static payload_t *members_new(const room_t *room)
{
    json_t *list = json_array();
    const member_t *m;

    for (m = room->first; m != NULL && list != NULL; m = m->next) {
        if (!m->doomed && json_array_append_new(list, json_string(m->nick)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list == NULL)
        return NULL;
    return payload_new(json_pack("{s:s, s:o}", "type", "members", "members", list));
}

/* {"type": "history", "messages": [message, ...]}, oldest first. */
static payload_t *history_new(const room_t *room)
{
    json_t *list = json_array();
    size_t i;

    for (i = 0; i < room->history_len && list != NULL; i++) {
        json_t *msg = room->history[(room->history_head + i) % HISTORY_MAX];
        if (json_array_append(list, msg) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list == NULL)
        return NULL;
    return payload_new(json_pack("{s:s, s:o}", "type", "history", "messages", list));
}

/* ---- members ------------------------------------------------------------------------------ */

/* Drops every payload still queued for `m`. */
static void member_drop_queue(member_t *m)
{
    while (m->queue_len > 0) {
        payload_unref(m->queue[m->queue_head]);
        m->queue_head = (m->queue_head + 1) % QUEUE_MAX_MESSAGES;
        m->queue_len--;
    }
    m->queue_bytes = 0;
}

static void member_free(member_t *m)
{
    member_drop_queue(m);
    free(m);
}

/*
 * Marks `m` for removal by the next room_settle() and drops what it had queued. The first reason
 * wins: a member already leaving does not change its close code.
 */
static void member_doom(member_t *m, int close_code, const char *reason)
{
    if (m->doomed)
        return;
    m->doomed = 1;
    m->close_code = close_code;
    m->close_reason = reason;
    member_drop_queue(m);
    if (m->room != NULL)
        m->room->num_doomed++;
}

static void on_member_sent(casgi_call_t *call, int status, void *data);

/*
 * Starts the next send if none is in flight. casgi_send() copies the bytes before it returns, so
 * the queue's reference is dropped at once; on_member_sent() runs when the server can take more.
 */
static void member_pump(member_t *m)
{
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_SEND, .message = {.is_text = 1}};
    payload_t *p;
    int rc;

    if (m->sending || m->doomed || m->queue_len == 0)
        return;
    p = m->queue[m->queue_head];
    m->queue_head = (m->queue_head + 1) % QUEUE_MAX_MESSAGES;
    m->queue_len--;
    m->queue_bytes -= p->len;
    ev.message.data = (casgi_bytes_t){p->json, p->len};
    rc = casgi_send(m->call, &ev, on_member_sent, m);
    payload_unref(p);
    if (rc == 0)
        m->sending = 1;
    else if (rc == CASGI_EDISCONNECTED)
        member_doom(m, 0, NULL);
    else
        member_doom(m, CLOSE_INTERNAL, "send failed");
}

/*
 * Queues `p` for `m`, taking a reference of its own. A NULL payload (its builder ran out of
 * memory) dooms the member rather than leave it with a gap it cannot see; so does a queue that
 * would overflow.
 */
static void member_push(member_t *m, payload_t *p)
{
    if (m->doomed)
        return;
    if (p == NULL) {
        member_doom(m, CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (m->queue_len == QUEUE_MAX_MESSAGES || m->queue_bytes + p->len > QUEUE_MAX_BYTES) {
        member_doom(m, CLOSE_POLICY, "too slow: too many messages waiting");
        return;
    }
    p->refs++;
    m->queue[(m->queue_head + m->queue_len) % QUEUE_MAX_MESSAGES] = p;
    m->queue_len++;
    m->queue_bytes += p->len;
    member_pump(m);
}

/* member_push() of a payload the caller built for `m` alone: the caller's reference goes too. */
static void member_send(member_t *m, payload_t *p)
{
    member_push(m, p);
    payload_unref(p);
}

/*
 * Ends a member's call: the close frame (if the client is still there to read it), then
 * casgi_call_end(), which completes the pending receive and any send callback with
 * CASGI_ECANCELED. Sending the close while a send is in flight is allowed because it carries no
 * callback. Frees `m` unless one of its callbacks is running; that one frees it.
 */
static void member_finish(member_t *m)
{
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_CLOSE};

    if (m->close_code != 0) {
        ev.close.code = m->close_code;
        ev.close.reason = CASGI_STR(m->close_reason != NULL ? m->close_reason : "");
        (void)casgi_send(m->call, &ev, NULL, NULL); /* a gone client is what ends this anyway */
    }
    casgi_call_end(m->call, 0);
    m->ended = 1;
    if (!m->busy)
        member_free(m);
}

/* ---- rooms -------------------------------------------------------------------------------- */

static void chat_free(chat_t *chat)
{
    free(chat);
}

static room_t *room_find(const chat_t *chat, const char *name)
{
    room_t *room;

    for (room = chat->rooms; room != NULL; room = room->next) {
        if (strcmp(room->name, name) == 0)
            return room;
    }
    return NULL;
}

static room_t *room_new(chat_t *chat, const char *name)
{
    room_t *room = calloc(1, sizeof(*room));

    if (room == NULL)
        return NULL;
    room->chat = chat;
    memcpy(room->name, name, strlen(name) + 1); /* checked against ROOM_MAX when parsed */
    room->next = chat->rooms;
    if (chat->rooms != NULL)
        chat->rooms->prev = room;
    chat->rooms = room;
    chat->num_rooms++;
    return room;
}

/* Frees an empty room, and the chat with its last room when lifespan shutdown is waiting. */
static void room_free(room_t *room)
{
    chat_t *chat = room->chat;
    size_t i;

    for (i = 0; i < room->history_len; i++)
        json_decref(room->history[(room->history_head + i) % HISTORY_MAX]);
    if (room->prev != NULL)
        room->prev->next = room->next;
    else
        chat->rooms = room->next;
    if (room->next != NULL)
        room->next->prev = room->prev;
    chat->num_rooms--;
    free(room);
    if (chat->stopping && chat->num_rooms == 0)
        chat_free(chat);
}

static int room_has_nick(const room_t *room, const char *nick)
{
    const member_t *m;

    for (m = room->first; m != NULL; m = m->next) {
        if (!m->doomed && strcmp(m->nick, nick) == 0)
            return 1;
    }
    return 0;
}

static void room_add(room_t *room, member_t *m)
{
    m->room = room;
    m->prev = room->last;
    m->next = NULL;
    if (room->last != NULL)
        room->last->next = m;
    else
        room->first = m;
    room->last = m;
    room->num_members++;
}

static void room_remove(room_t *room, member_t *m)
{
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        room->first = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        room->last = m->prev;
    room->num_members--;
    if (m->doomed)
        room->num_doomed--;
    m->room = NULL;
    m->prev = m->next = NULL;
}

/*
 * Sends `p` to every member still in the room and drops the caller's reference. Members whose
 * queue overflows are only doomed here; the caller settles the room afterwards.
 */
static void room_broadcast(room_t *room, payload_t *p)
{
    member_t *m;

    for (m = room->first; m != NULL; m = m->next)
        member_push(m, p);
    payload_unref(p);
}

/* Appends a message object (a new reference, consumed) to the room's ring of the last 50. */
static void room_remember(room_t *room, json_t *msg)
{
    if (room->history_len == HISTORY_MAX) {
        json_decref(room->history[room->history_head]);
        room->history[room->history_head] = msg;
        room->history_head = (room->history_head + 1) % HISTORY_MAX;
    } else {
        room->history[(room->history_head + room->history_len) % HISTORY_MAX] = msg;
        room->history_len++;
    }
}

/*
 * Removes every doomed member: it leaves the list, the others get its leave notice and the new
 * member list (which may doom more of them: the loop runs until none is left), and its call ends.
 * An empty room is freed. Returns 1 when `room` was freed, so the caller stops using it.
 */
static int room_settle(room_t *room)
{
    member_t *m;
    char nick[NICK_MAX + 1];

    while (room->num_doomed > 0) {
        for (m = room->first; m != NULL && !m->doomed; m = m->next)
            ;
        if (m == NULL)
            break; /* unreachable: num_doomed counts the doomed members in the list */
        memcpy(nick, m->nick, sizeof(nick));
        room_remove(room, m);
        member_finish(m); /* may free m */
        if (room->num_members > 0) {
            room_broadcast(room, notice_new("leave", nick));
            room_broadcast(room, members_new(room));
        }
    }
    if (room->num_members == 0) {
        room_free(room);
        return 1;
    }
    return 0;
}

/*
 * The end of every member callback: settles the member's room (if it is still in one) and frees
 * the member if it was finished meanwhile. Pairs with the `m->busy++` at the callback's start.
 */
static void member_release(member_t *m)
{
    if (m->room != NULL)
        room_settle(m->room);
    m->busy--;
    if (m->ended && m->busy == 0)
        member_free(m);
}

/* ---- the member's callbacks --------------------------------------------------------------- */

static void on_member_event(casgi_call_t *call, int status, const casgi_event_t *event, void *data);

static void on_member_sent(casgi_call_t *call, int status, void *data)
{
    member_t *m = data;

    if (status == CASGI_ECANCELED)
        return; /* member_finish() is ending the call; it frees m */
    m->busy++;
    m->sending = 0;
    if (status == 0) {
        member_pump(m);
        if (m->paused && !m->doomed && m->queue_len <= RESUME_MESSAGES &&
            m->queue_bytes <= RESUME_BYTES) {
            m->paused = 0;
            if (casgi_receive(call, on_member_event, m) != 0)
                member_doom(m, CLOSE_INTERNAL, "receive failed");
        }
    } else if (status == CASGI_EDISCONNECTED)
        member_doom(m, 0, NULL);
    else
        member_doom(m, CLOSE_INTERNAL, "send failed");
    member_release(m);
}

/*
 * One client message: {"type": "message", "text": "..."} becomes
 * {"type": "message", "nick": ..., "text": ..., "ts": ms} for the whole room and its history.
 * Anything else earns the sender an error notice; it does not end the connection.
 */
static void handle_message(member_t *m, const casgi_event_t *event)
{
    const char *problem = NULL;
    json_error_t err;
    json_t *in;
    json_t *type;
    json_t *text = NULL;
    json_t *msg = NULL;

    in = json_loadb(event->message.data.base, event->message.data.len, 0, &err);
    type = json_object_get(in, "type"); /* NULL when `in` is NULL or not an object */
    if (!json_is_string(type) || strcmp(json_string_value(type), "message") != 0)
        problem = "expected {\"type\": \"message\", \"text\": \"...\"}";
    else if (!json_is_string(text = json_object_get(in, "text")))
        problem = "\"text\" must be a string";
    else if (json_string_length(text) > TEXT_MAX)
        problem = "message too long (at most 8192 bytes)";
    else if (strspn(json_string_value(text), " \t\r\n") == json_string_length(text))
        ; /* blank: ignored, as the page ignores an empty input */
    else if ((msg = json_pack("{s:s, s:s, s:O, s:I}", "type", "message", "nick", m->nick, "text",
                              text, "ts", now_ms())) == NULL)
        problem = "out of memory";
    json_decref(in);

    if (problem != NULL) {
        member_send(m, error_new(problem));
    } else if (msg != NULL) {
        json_incref(msg);
        room_remember(m->room, msg);
        room_broadcast(m->room, payload_new(msg));
    }
}

static void on_member_event(casgi_call_t *call, int status, const casgi_event_t *event, void *data)
{
    member_t *m = data;

    if (status == CASGI_ECANCELED)
        return;
    m->busy++;
    if (status != 0 || event->type != CASGI_EVENT_WEBSOCKET_RECEIVE) {
        member_doom(m, 0, NULL); /* websocket.disconnect: the client left (or was closed) */
    } else {
        handle_message(m, event);
        /* A paused member has a send in flight (its queue is not empty), and on_member_sent()
         * receives again once the queue has drained. */
        if (!m->doomed && (m->queue_len >= PAUSE_MESSAGES || m->queue_bytes >= PAUSE_BYTES))
            m->paused = 1;
        else if (!m->doomed && casgi_receive(call, on_member_event, m) != 0)
            member_doom(m, CLOSE_INTERNAL, "receive failed");
    }
    member_release(m);
}

/* ---- joining ------------------------------------------------------------------------------ */

/*
 * Refuses the handshake: with the reason as a plain-text HTTP response where the server supports
 * ASGI's websocket.http.response extension, else with websocket.close (a bare 403).
 */
static int deny(casgi_call_t *call, const deny_t *why, int http_denial)
{
    char length[24];
    casgi_header_t headers[] = {
        {LIT("content-type"), LIT("text/plain; charset=utf-8")},
        {LIT("content-length"), {length, 0}},
    };
    casgi_event_t start = {.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START};
    casgi_event_t body = {.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_BODY};
    casgi_event_t close = {.type = CASGI_EVENT_WEBSOCKET_CLOSE};
    int rc;

    if (!http_denial)
        return casgi_send(call, &close, NULL, NULL);
    headers[1].value.len = (size_t)snprintf(length, sizeof(length), "%zu", strlen(why->text));
    start.start.status = why->status;
    start.start.headers = headers;
    start.start.num_headers = ARRAY_SIZE(headers);
    body.body.body = CASGI_STR(why->text);
    rc = casgi_send(call, &start, NULL, NULL);
    if (rc == 0)
        rc = casgi_send(call, &body, NULL, NULL);
    return rc;
}

/*
 * Accepts and at once closes with 1008, telling the page why: a browser cannot read the body of
 * a refused handshake, but it does see an error message and a close reason.
 */
static void refuse_nick(member_t *m)
{
    casgi_event_t accept = {.type = CASGI_EVENT_WEBSOCKET_ACCEPT};
    casgi_event_t error = {.type = CASGI_EVENT_WEBSOCKET_SEND, .message = {.is_text = 1}};
    casgi_event_t close = {.type = CASGI_EVENT_WEBSOCKET_CLOSE,
                           .close = {.code = CLOSE_POLICY, .reason = LIT("nickname in use")}};
    char text[NICK_MAX + ROOM_MAX + 64];
    payload_t *p;
    int rc;

    snprintf(text, sizeof(text), "\"%s\" is already in room \"%s\"", m->nick, m->room_name);
    p = error_new(text);
    rc = casgi_send(m->call, &accept, NULL, NULL);
    if (rc == 0 && p != NULL) {
        error.message.data = (casgi_bytes_t){p->json, p->len};
        rc = casgi_send(m->call, &error, NULL, NULL);
    }
    if (rc == 0)
        (void)casgi_send(m->call, &close, NULL, NULL);
    payload_unref(p);
}

/*
 * Joins the room, creating it if need be: accept, then history to the newcomer, the join notice
 * and the member list to everybody (the newcomer included), then the receive loop.
 */
static void join(member_t *m)
{
    casgi_event_t accept = {.type = CASGI_EVENT_WEBSOCKET_ACCEPT};
    room_t *room = room_find(m->chat, m->room_name);
    int rc;

    if (room == NULL && (room = room_new(m->chat, m->room_name)) == NULL) {
        (void)deny(m->call, &(const deny_t){500, "out of memory"}, m->http_denial);
        goto fail;
    }
    rc = casgi_send(m->call, &accept, NULL, NULL);
    if (rc != 0) {
        if (room->num_members == 0)
            room_free(room);
        goto fail;
    }
    room_add(room, m);
    member_send(m, history_new(room));
    room_broadcast(room, notice_new("join", m->nick));
    room_broadcast(room, members_new(room));
    if (!m->doomed && casgi_receive(m->call, on_member_event, m) != 0)
        member_doom(m, CLOSE_INTERNAL, "receive failed");
    return; /* the caller's member_release() settles the room */

fail:
    casgi_call_end(m->call, 0);
    m->ended = 1;
}

/* The first event: websocket.connect, answered with a denial or by joining. */
static void on_connect(casgi_call_t *call, int status, const casgi_event_t *event, void *data)
{
    member_t *m = data;
    room_t *room;

    if (status == CASGI_ECANCELED)
        return;
    m->busy++;
    if (status != 0 || event->type != CASGI_EVENT_WEBSOCKET_CONNECT) {
        casgi_call_end(call, 0); /* the client left during the handshake */
        m->ended = 1;
    } else if (m->deny != NULL) {
        (void)deny(call, m->deny, m->http_denial);
        casgi_call_end(call, 0);
        m->ended = 1;
    } else if ((room = room_find(m->chat, m->room_name)) != NULL && room_has_nick(room, m->nick)) {
        refuse_nick(m);
        casgi_call_end(call, 0);
        m->ended = 1;
    } else {
        join(m);
    }
    member_release(m);
}

/* ---- query string ------------------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes an application/x-www-form-urlencoded value (percent escapes, '+' for a space) into
 * `out`, NUL-terminated, with blanks at both ends trimmed. Fails (-1) when the result is empty,
 * longer than `max` bytes, holds a control character or is not UTF-8.
 */
static int form_value(const char *s, size_t len, char *out, size_t max)
{
    size_t n = 0;
    size_t i;
    size_t start;
    json_t *utf8;

    for (i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len && hex_digit(s[i + 1]) >= 0 &&
                   hex_digit(s[i + 2]) >= 0) {
            c = hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || n == max)
            return -1;
        out[n++] = (char)c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    for (start = 0; start < n && out[start] == ' '; start++)
        ;
    memmove(out, out + start, n - start);
    n -= start;
    out[n] = '\0';
    if (n == 0)
        return -1;
    utf8 = json_stringn(out, n); /* jansson refuses anything that is not UTF-8 */
    if (utf8 == NULL)
        return -1;
    json_decref(utf8);
    return 0;
}

/* Finds `key`'s first value in a query string; 0 and the raw value when present, else -1. */
static int query_get(casgi_bytes_t query, const char *key, casgi_bytes_t *value)
{
    size_t klen = strlen(key);
    const char *p = query.base;
    const char *end = query.base + query.len;

    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) >= klen && memcmp(p, key, klen) == 0 &&
            (p + klen == stop || p[klen] == '=')) {
            value->base = p + klen == stop ? p + klen : p + klen + 1;
            value->len = (size_t)(stop - value->base);
            return 0;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return -1;
}

/* ---- http --------------------------------------------------------------------------------- */

static const char not_found_body[] = "Not Found";

/* A client that left is how web requests often end, not a failure of the app. */
static void end(casgi_call_t *call, int rc)
{
    casgi_call_end(call, rc == CASGI_EDISCONNECTED ? 0 : rc);
}

static int respond(casgi_call_t *call, int status, const char *type, const void *body, size_t len)
{
    char length[24];
    casgi_header_t headers[] = {
        {LIT("content-type"), CASGI_STR(type)},
        {LIT("content-length"), {length, 0}},
        {LIT("cache-control"), LIT("no-cache")},
        {LIT("x-content-type-options"), LIT("nosniff")},
    };
    casgi_event_t start = {
        .type = CASGI_EVENT_HTTP_RESPONSE_START,
        .start = {.status = status, .headers = headers, .num_headers = ARRAY_SIZE(headers)}};
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY, .body = {.body = {body, len}}};
    int rc;

    headers[1].value.len = (size_t)snprintf(length, sizeof(length), "%zu", len);
    rc = casgi_send(call, &start, NULL, NULL);
    if (rc == 0)
        rc = casgi_send(call, &ev, NULL, NULL);
    return rc;
}

/* ---- lifespan ----------------------------------------------------------------------------- */

/*
 * Startup allocates the chat and publishes it as the lifespan state; shutdown frees it, or, if a
 * forced shutdown left rooms open, leaves that to the last room.
 */
static void on_lifespan_event(casgi_call_t *call, int status, const casgi_event_t *event,
                              void *data)
{
    casgi_event_t reply = {.type = CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE};
    chat_t *chat = data;
    int rc = status;

    if (status == CASGI_ECANCELED)
        return; /* a forced shutdown; the runner exits, taking the chat with it */
    if (rc == 0 && event->type == CASGI_EVENT_LIFESPAN_STARTUP) {
        chat = calloc(1, sizeof(*chat));
        if (chat == NULL) {
            reply.type = CASGI_EVENT_LIFESPAN_STARTUP_FAILED;
            reply.failed.message = CASGI_BYTES("chat: out of memory");
            casgi_call_end(call, casgi_send(call, &reply, NULL, NULL));
            return;
        }
        casgi_call_set_state(call, chat);
        reply.type = CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE;
        rc = casgi_send(call, &reply, NULL, NULL);
        if (rc == 0)
            rc = casgi_receive(call, on_lifespan_event, chat);
        if (rc != 0) {
            casgi_call_set_state(call, NULL);
            chat_free(chat);
            casgi_call_end(call, rc);
        }
        return;
    }
    if (chat != NULL) {
        casgi_call_set_state(call, NULL);
        if (chat->num_rooms == 0)
            chat_free(chat);
        else
            chat->stopping = 1;
    }
    if (rc == 0)
        rc = casgi_send(call, &reply, NULL, NULL);
    casgi_call_end(call, rc);
}

/* ---- entry -------------------------------------------------------------------------------- */

/*
 * A new WebSocket: the member takes its own copies of nick and room from the query (the room
 * keeps the nick after this call's scope is gone), decides whether to refuse, and waits for
 * websocket.connect before answering, as ASGI's handshake order has it.
 */
static void websocket_start(casgi_call_t *call, const casgi_scope_t *scope, casgi_bytes_t path)
{
    member_t *m = calloc(1, sizeof(*m));
    casgi_bytes_t value;
    int rc;

    if (m == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    m->call = call;
    m->chat = scope->state;
    m->http_denial = (scope->extensions & CASGI_EXT_WEBSOCKET_HTTP_RESPONSE) != 0;
    if (!IS(path, "/ws"))
        m->deny = &deny_not_found;
    else if (m->chat == NULL)
        m->deny = &deny_no_state;
    else if (query_get(scope->query_string, "nick", &value) != 0 ||
             form_value(value.base, value.len, m->nick, NICK_MAX) != 0)
        m->deny = &deny_bad_nick;
    else if (query_get(scope->query_string, "room", &value) != 0 || value.len == 0)
        memcpy(m->room_name, DEFAULT_ROOM, sizeof(DEFAULT_ROOM));
    else if (form_value(value.base, value.len, m->room_name, ROOM_MAX) != 0)
        m->deny = &deny_bad_room;

    rc = casgi_receive(call, on_connect, m);
    if (rc != 0) {
        casgi_call_end(call, rc);
        free(m);
    }
}

static void chat_entry(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    casgi_bytes_t path = scope->path;
    int get;
    int rc;

    (void)app_data;
    if (scope->type == CASGI_SCOPE_LIFESPAN) {
        rc = casgi_receive(call, on_lifespan_event, NULL);
        if (rc != 0)
            casgi_call_end(call, rc);
        return;
    }

    /* Routes are relative to the mount point: path carries root_path (ASGI). */
    if (path.len >= scope->root_path.len &&
        memcmp(path.base, scope->root_path.base, scope->root_path.len) == 0) {
        path.base += scope->root_path.len;
        path.len -= scope->root_path.len;
    }
    if (scope->type == CASGI_SCOPE_WEBSOCKET) {
        websocket_start(call, scope, path);
        return;
    }
    get = IS(scope->method, "GET") || IS(scope->method, "HEAD");
    if (get && (IS(path, "/") || IS(path, "/index.html")))
        end(call,
            respond(call, 200, "text/html; charset=utf-8", index_html, sizeof(index_html) - 1));
    else
        end(call, respond(call, 404, "text/plain; charset=utf-8", not_found_body,
                          sizeof(not_found_body) - 1));
}

/* What the runner looks up by default ("chat.so" means "chat.so:app"). */
CASGI_EXTERN casgi_app_t app = {.entry = chat_entry};
