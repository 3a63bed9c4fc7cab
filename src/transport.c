/* Sockets: non-blocking connect over the resolved addresses, plain or TLS
 * reads and writes, TCP tuning. */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void transport_init(transport *t)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

void transport_close(transport *t)
{
    /* The TLS object goes first without a close_notify wait (spec 11.2). */
    tls_conn_free(t->tls);
    t->tls = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    if (t->ai)
        freeaddrinfo(t->ai);
    t->ai = t->ai_next = NULL;
    t->connecting = false;
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    buf[0] = '\0';
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)len);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)len);
}

/* Records the addresses for TLS reporting and disables Nagle: we coalesce
 * writes ourselves, and a delayed small write costs a round trip. */
static void socket_connected(transport *t)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(t->fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_text(&ss, t->local_ip, sizeof t->local_ip);
    sl = sizeof ss;
    if (getpeername(t->fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_text(&ss, t->peer_ip, sizeof t->peer_ip);
    int one = 1;
    setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int transport_attach(transport *t, int fd)
{
    if (set_nonblock(fd) != 0) {
        t->err_no = errno;
        snprintf(t->errmsg, sizeof t->errmsg, "fcntl: %s", strerror(errno));
        return -1;
    }
    t->fd = fd;
    socket_connected(t);
    return 0;
}

static int bind_local(transport *t, int family)
{
    if (!t->local_bind[0])
        return 0;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        if (inet_pton(AF_INET, t->local_bind, &a->sin_addr) != 1)
            return 0; /* another family's address: leave the choice to the kernel */
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, t->local_bind, &a->sin6_addr) != 1)
            return 0;
        sl = sizeof *a;
    }
    return bind(t->fd, (struct sockaddr *)&ss, sl);
}

/* Starts connecting to t->ai_next, moving on past addresses that fail at once. */
static tr_status try_address(transport *t)
{
    while (t->ai_next) {
        struct addrinfo *a = t->ai_next;
        t->ai_next = a->ai_next;
        if (t->fd >= 0)
            close(t->fd);
        t->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       a->ai_protocol);
        if (t->fd < 0 || bind_local(t, a->ai_family) != 0) {
            t->err_no = errno;
            continue;
        }
        if (connect(t->fd, a->ai_addr, a->ai_addrlen) == 0)
            return TR_OK;
        if (errno == EINPROGRESS)
            return TR_WANT_WRITE;
        t->err_no = errno;
    }
    snprintf(t->errmsg, sizeof t->errmsg, "connect: %s",
             strerror(t->err_no ? t->err_no : ECONNREFUSED));
    return TR_ERR;
}

int transport_connect_start(transport *t, const char *host, uint16_t port, const char *local_ip)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    snprintf(t->local_bind, sizeof t->local_bind, "%s", local_ip ? local_ip : "");
    int rc = getaddrinfo(host, portstr, &hints, &t->ai);
    if (rc != 0) {
        t->err_no = rc == EAI_MEMORY ? ENOMEM : 0;
        snprintf(t->errmsg, sizeof t->errmsg, "cannot resolve %s: %s", host, gai_strerror(rc));
        t->ai = NULL;
        return -1;
    }
    t->ai_next = t->ai;
    t->connecting = true;
    return 0;
}

tr_status transport_connect_next(transport *t)
{
    tr_status st = try_address(t);
    if (st == TR_OK) {
        t->connecting = false;
        socket_connected(t);
    }
    return st;
}

tr_status transport_connect_step(transport *t)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr == ECONNRESET) {
        /* Connected, then reset before we looked (a refusal is ECONNREFUSED):
         * a lost connection, not a failed connect. Reading SO_ERROR cleared the
         * error, so the first read returns what arrived, then the end (io). */
        t->connecting = false;
        socket_connected(t);
        return TR_OK;
    }
    if (soerr == 0) {
        struct sockaddr_storage ss;
        sl = sizeof ss;
        if (getpeername(t->fd, (struct sockaddr *)&ss, &sl) != 0)
            return TR_WANT_WRITE; /* still in progress */
        t->connecting = false;
        socket_connected(t);
        return TR_OK;
    }
    t->err_no = soerr;
    return transport_connect_next(t);
}

static void quickack(int fd)
{
#ifdef TCP_QUICKACK
    /* Acknowledge at once: otherwise a peer's small post-handshake records
     * plus Nagle and delayed ACK stall each session by ~40 ms. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
    (void)fd;
#endif
}

static tr_status map_tls(transport *t, tls_io st)
{
    switch (st) {
    case TLS_IO_OK:
        return TR_OK;
    case TLS_IO_WANT_READ:
        return TR_WANT_READ;
    case TLS_IO_WANT_WRITE:
        return TR_WANT_WRITE;
    case TLS_IO_EOF:
        return TR_EOF;
    default:
        t->err_no = 0;
        return TR_ERR;
    }
}

tr_status transport_read(transport *t, char *buf, size_t len, size_t *n)
{
    *n = 0;
    quickack(t->fd);
    if (t->tls)
        return map_tls(t, tls_conn_read(t->tls, buf, len, n, t->errmsg, sizeof t->errmsg));
    ssize_t r = read(t->fd, buf, len);
    if (r > 0) {
        *n = (size_t)r;
        return TR_OK;
    }
    if (r == 0)
        return TR_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return TR_WANT_READ;
    t->err_no = errno;
    snprintf(t->errmsg, sizeof t->errmsg, "read: %s", strerror(errno));
    return TR_ERR;
}

tr_status transport_write(transport *t, const char *buf, size_t len, size_t *n)
{
    *n = 0;
    if (t->tls)
        return map_tls(t, tls_conn_write(t->tls, buf, len, n, t->errmsg, sizeof t->errmsg));
    ssize_t w = send(t->fd, buf, len, MSG_NOSIGNAL);
    if (w >= 0) {
        *n = (size_t)w;
        return TR_OK;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return TR_WANT_WRITE;
    t->err_no = errno;
    snprintf(t->errmsg, sizeof t->errmsg, "write: %s", strerror(errno));
    return TR_ERR;
}
