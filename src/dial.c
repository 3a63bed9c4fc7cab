/* RFC 8305 connection racing over a host's addresses. */
#include "dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct pending {
    int fd;
    size_t idx;
    int64_t deadline;
} pending;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int to_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

/* Binds the first local address of the same family (spec 14.3). */
static int bind_local(int fd, int family, char *const *local_ips, size_t nlocal)
{
    for (size_t i = 0; i < nlocal; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (to_sockaddr(local_ips[i], 0, &ss, &len) == 0 && ss.ss_family == family)
            return bind(fd, (struct sockaddr *)&ss, len);
    }
    return 0;
}

static int start_connect(const char *ip, uint16_t port, char *const *local_ips, size_t nlocal,
                         int *err_no)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (to_sockaddr(ip, port, &ss, &len) != 0) {
        *err_no = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind_local(fd, ss.ss_family, local_ips, nlocal) != 0 ||
        (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS)) {
        *err_no = errno;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void fail_msg(dial_result *out, const char *ip, int err_no)
{
    out->err_no = err_no;
    snprintf(out->ip, sizeof out->ip, "%s", ip);
    snprintf(out->msg, sizeof out->msg, "connecting to %s: %s", ip,
             err_no == ETIMEDOUT ? "timed out" : strerror(err_no));
}

static void drop(pending *p, size_t *np, size_t i)
{
    close(p[i].fd);
    p[i] = p[--*np];
}

/* Polls the attempts in flight until wait_ms; returns the index of one that
 * connected, or -1. Failed or timed-out attempts are dropped. */
static int poll_pending(pending *p, size_t *np, int wait_ms, char (*ips)[64], dial_result *out)
{
    struct pollfd pfd[DIAL_MAX_PARALLEL];
    for (size_t i = 0; i < *np; i++)
        pfd[i] = (struct pollfd){.fd = p[i].fd, .events = POLLOUT};
    if (poll(pfd, *np, wait_ms < 0 ? 0 : wait_ms) < 0 && errno != EINTR)
        return -1;
    int64_t now = now_ms();
    for (size_t i = *np; i-- > 0;) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (pfd[i].revents) {
            getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (soerr == 0)
                return (int)i;
        } else if (now >= p[i].deadline) {
            soerr = ETIMEDOUT;
        } else {
            continue;
        }
        fail_msg(out, ips[p[i].idx], soerr);
        drop(p, np, i);
    }
    return -1;
}

static int64_t next_wakeup(const pending *p, size_t np, int64_t next_start)
{
    int64_t t = next_start;
    for (size_t i = 0; i < np; i++)
        if (t < 0 || p[i].deadline < t)
            t = p[i].deadline;
    return t;
}

int dial_happy(char (*ips)[64], size_t nips, uint16_t port, char *const *local_ips,
               size_t nlocal, int timeout_ms, dial_result *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    snprintf(out->msg, sizeof out->msg, "no address to connect to");
    pending p[DIAL_MAX_PARALLEL];
    size_t np = 0, next = 0;
    int64_t next_start = now_ms();
    while (next < nips || np > 0) {
        int64_t now = now_ms();
        if (next < nips && np < DIAL_MAX_PARALLEL && (np == 0 || now >= next_start)) {
            int err_no = 0;
            int fd = start_connect(ips[next], port, local_ips, nlocal, &err_no);
            if (fd < 0)
                fail_msg(out, ips[next], err_no);
            else
                p[np++] = (pending){fd, next, now + timeout_ms};
            next++;
            next_start = now + DIAL_STAGGER_MS;
            continue;
        }
        int64_t wake = next_wakeup(p, np, next < nips ? next_start : -1);
        int won = poll_pending(p, &np, (int)(wake - now), ips, out);
        if (won >= 0) {
            out->fd = p[won].fd;
            snprintf(out->ip, sizeof out->ip, "%s", ips[p[won].idx]);
            p[won] = p[--np];
            while (np > 0)
                drop(p, &np, 0);
            return 0;
        }
        if (np == 0)
            next_start = now_ms(); /* all in flight failed: start the next at once */
    }
    return -1;
}
