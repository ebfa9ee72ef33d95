#ifndef CASGI_LISTENER_H
#define CASGI_LISTENER_H

#include <netinet/in.h>

#include "server.h"

/* One listening socket. Connections that arrive before the server runs wait in the backlog. */
typedef struct casgi__listener_s {
    casgi__list_t node; /* server->listeners */
    casgi_server_t *server;
    casgi__stream_t io;
    int is_pipe;
    int port;   /* TCP only */
    /* TCP bound to one address (not a wildcard): every connection's local end, formatted once */
    char local_host[INET6_ADDRSTRLEN];
    int local_known;
    char *path; /* Unix socket path, owned */
    int unlink_on_close;
    unsigned pending : 1; /* a connection arrived before the server ran */
    unsigned closing : 1;
} casgi__listener_t;

int casgi__listener_new_tcp(casgi_server_t *server, const char *host, int port);
int casgi__listener_new_unix(casgi_server_t *server, const char *path);
int casgi__listener_new_fd(casgi_server_t *server, int fd);
/* The server runs: accept what waited. */
void casgi__listener_start(casgi__listener_t *l);
/* Stops listening; the memory goes in the close callback. */
void casgi__listener_close(casgi__listener_t *l);

#endif
