#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "http1.h"
#include "http2.h"
#include "listener.h"

void casgi__server_handle_closed(casgi_server_t *server);

static void on_closed(uv_handle_t *handle)
{
    casgi__listener_t *l = handle->data;
    casgi_server_t *server = l->server;
    if (l->unlink_on_close && l->path)
        unlink(l->path);
    casgi__list_remove(&l->node);
    free(l->path);
    free(l);
    casgi__server_handle_closed(server);
}

void casgi__listener_close(casgi__listener_t *l)
{
    if (l->closing)
        return;
    l->closing = 1;
    uv_close(&l->io.handle, on_closed);
}

/*
 * A new connection's first bytes decide its protocol: the HTTP/2 preface (prior knowledge, RFC
 * 9113 3.3) or anything else, which is HTTP/1.x. Until they arrive the connection sits under this
 * table, which only waits.
 */
static void sniff_on_read(casgi__conn_t *conn)
{
    size_t n = casgi__buf_size(&conn->rbuf);
    size_t cmp = n < CASGI_HTTP2_PREFACE_LEN ? n : CASGI_HTTP2_PREFACE_LEN;
    int err;
    if (memcmp(casgi__buf_data(&conn->rbuf), CASGI_HTTP2_PREFACE, cmp) != 0) {
        err = casgi__http1_attach(conn);
        if (err == 0)
            conn->proto->on_read(conn);
    } else if (n >= CASGI_HTTP2_PREFACE_LEN) {
        err = casgi__http2_attach(conn);
    } else {
        return; /* a prefix of the preface so far */
    }
    if (err)
        casgi__conn_close(conn);
}

static void sniff_close(casgi__conn_t *conn)
{
    casgi__conn_close(conn);
}
static void sniff_on_read_error(casgi__conn_t *conn, int status)
{
    (void)conn;
    (void)status;
}
static void sniff_nothing(casgi__conn_t *conn)
{
    (void)conn;
}

static const casgi__proto_t sniff = {
    .name = "sniff",
    .on_read = sniff_on_read,
    .on_read_error = sniff_on_read_error,
    .on_drain = sniff_nothing,
    .on_timeout = sniff_close,
    .on_shutdown = sniff_close,
    .on_close = sniff_nothing,
};

static void accept_one(casgi__listener_t *l)
{
    casgi_server_t *server = l->server;
    casgi__conn_t *conn;
    int err = casgi__conn_new(server, l->is_pipe, &conn);
    if (err) {
        CASGI_LOG(&server->log, CASGI_LOG_ERROR, "cannot accept: %s", casgi_strerror(err));
        return;
    }
    err = uv_accept(&l->io.stream, &conn->io.stream);
    if (err) {
        casgi__conn_discard(conn);
        return;
    }
    casgi__conn_accepted(conn, l->is_pipe ? l->path : NULL, l->local_known ? l->local_host : NULL,
                         l->port);
    if (!server->cfg.http2) {
        if (casgi__http1_attach(conn) != 0)
            casgi__conn_close(conn);
        return;
    }
    casgi__conn_set_proto(conn, &sniff, NULL);
    casgi__conn_set_deadline(conn, server->cfg.timeout_keep_alive);
    casgi__conn_read_start(conn);
}

static void on_connection(uv_stream_t *stream, int status)
{
    casgi__listener_t *l = stream->data;
    if (status < 0) {
        CASGI_LOG(&l->server->log, CASGI_LOG_ERROR, "accept failed: %s", casgi_strerror(status));
        return;
    }
    if (l->server->phase != CASGI__SERVER_RUNNING) {
        /* libuv holds the accepted socket and stops polling until uv_accept(): the rest wait in
         * the kernel's backlog until the app finished starting up. */
        l->pending = 1;
        return;
    }
    accept_one(l);
}

void casgi__listener_start(casgi__listener_t *l)
{
    if (l->pending && !l->closing) {
        l->pending = 0;
        accept_one(l);
    }
}

/* Registers a handle that is initialised but not yet listening; closes it on failure. */
static int finish(casgi__listener_t *l, int err)
{
    casgi_server_t *server = l->server;
    /* On Linux accepted sockets inherit TCP_NODELAY: one system call here, none per connection */
    if (err == 0 && !l->is_pipe)
        (void)uv_tcp_nodelay(&l->io.tcp, 1); /* a refusal costs latency, not correctness */
    if (err == 0)
        err = uv_listen(&l->io.stream, server->cfg.backlog, on_connection);
    if (err == 0 && !l->is_pipe) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (uv_tcp_getsockname(&l->io.tcp, (struct sockaddr *)&ss, &len) == 0) {
            casgi__format_addr(&ss, l->local_host, sizeof(l->local_host), &l->port);
            l->local_known =
                ss.ss_family == AF_INET
                    ? ((struct sockaddr_in *)&ss)->sin_addr.s_addr != INADDR_ANY
                    : !IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr);
        }
    }
    casgi__list_insert_tail(&server->listeners, &l->node);
    server->handles_open++;
    if (err) {
        l->unlink_on_close = 0;
        casgi__listener_close(l);
    }
    return err;
}

/* For a listener that failed before it was registered with the server. */
static void on_unregistered_closed(uv_handle_t *handle)
{
    casgi__listener_t *l = handle->data;
    free(l->path);
    free(l);
}

static casgi__listener_t *listener_alloc(casgi_server_t *server, int is_pipe)
{
    casgi__listener_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->server = server;
    l->is_pipe = is_pipe;
    casgi__list_init(&l->node);
    int err = casgi__stream_init(server->loop, &l->io, is_pipe);
    if (err) {
        free(l);
        return NULL;
    }
    l->io.handle.data = l;
    return l;
}

int casgi__listener_new_tcp(casgi_server_t *server, const char *host, int port)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    if (host == NULL || port < 0 || port > 65535)
        return UV_EINVAL;
    if (uv_ip4_addr(host, port, &addr.in4) != 0 && uv_ip6_addr(host, port, &addr.in6) != 0)
        return UV_EINVAL;
    casgi__listener_t *l = listener_alloc(server, 0);
    if (l == NULL)
        return CASGI_ENOMEM;
    return finish(l, uv_tcp_bind(&l->io.tcp, &addr.sa, 0));
}

int casgi__listener_new_unix(casgi_server_t *server, const char *path)
{
    struct stat st;
    if (path == NULL || path[0] == '\0')
        return UV_EINVAL;
    /* A stale socket file from an earlier run would make bind fail; regular files are kept. */
    if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    casgi__listener_t *l = listener_alloc(server, 1);
    if (l == NULL)
        return CASGI_ENOMEM;
    l->path = strdup(path);
    if (l->path == NULL) {
        uv_close(&l->io.handle, on_unregistered_closed);
        return CASGI_ENOMEM;
    }
    l->unlink_on_close = 1;
    return finish(l, uv_pipe_bind(&l->io.pipe, path));
}

int casgi__listener_new_fd(casgi_server_t *server, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return UV_EBADF;
    int is_pipe = ss.ss_family == AF_UNIX;
    casgi__listener_t *l = listener_alloc(server, is_pipe);
    if (l == NULL)
        return CASGI_ENOMEM;
    int err;
    if (is_pipe) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
        l->path = strdup(len > offsetof(struct sockaddr_un, sun_path) ? sun->sun_path : "");
        if (l->path == NULL) {
            uv_close(&l->io.handle, on_unregistered_closed);
            return CASGI_ENOMEM;
        }
        err = uv_pipe_open(&l->io.pipe, fd);
    } else {
        err = uv_tcp_open(&l->io.tcp, fd);
    }
    return finish(l, err);
}
