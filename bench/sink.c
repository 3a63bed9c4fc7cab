/*
 * sink: a minimal single-threaded epoll SMTP sink for benchmarking clients.
 *
 * It accepts every command, counts delivered messages and throws the data
 * away. It exists because Postfix's smtp-sink saturates a core at about 20k
 * messages/s, which is too slow to tell fast clients apart.
 *
 * Design points:
 *  - Level-triggered epoll, non-blocking sockets, TCP_NODELAY.
 *  - Pipelining (RFC 2920): every complete command in the input buffer is
 *    parsed; the replies to one read are batched into one write.
 *  - The end-of-data dot (RFC 5321 4.1.1.4) is found with a small state
 *    machine, so "\r\n.\r\n" split across reads is detected.
 *  - Every buffer is bounded; a command line longer than MAX_LINE gets a 500
 *    and is discarded up to its end; when the output buffer is nearly full,
 *    input processing pauses until the socket drains.
 *  - SIGTERM/SIGINT arrive through a signalfd (no global state); the total
 *    message count is printed on exit.
 *
 * Usage: sink [-v] PORT      (PORT 0 picks a free port)
 * Prints "listening 127.0.0.1:PORT" once ready, "messages N" on exit, and
 * with -v one line per closed session:
 *   "session messages=N seconds=S rate=R"
 * where the time runs from accept to QUIT (or to EOF without QUIT).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_SIZE (64 * 1024)
#define OUT_SIZE (16 * 1024)
#define MAX_LINE 1024       /* RFC 5321 4.5.3.1.4 says 512; be lenient */
#define REPLY_RESERVE 512   /* larger than any single reply */
#define MAX_EVENTS 64
#define MAX_CONNS 256

enum dot_state {
    D_MID,     /* inside a line */
    D_CR,      /* seen CR */
    D_BOL,     /* at the beginning of a line (seen CRLF) */
    D_DOT,     /* seen CRLF "." */
    D_DOT_CR,  /* seen CRLF "." CR */
};

struct conn {
    int fd;
    bool in_data;       /* reading message data */
    bool discarding;    /* skipping the rest of an overlong line */
    bool quitting;      /* QUIT seen: flush, then close */
    bool have_mail, have_rcpt;
    enum dot_state dot;
    uint64_t messages;
    struct timespec start, end;
    size_t in_len;
    size_t out_off, out_len;
    char in[IN_SIZE];
    char out[OUT_SIZE];
};

struct sink {
    int epfd, lfd, sigfd;
    bool verbose;
    size_t nconns;
    uint64_t messages;
};

static double elapsed(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void reply(struct conn *c, const char *s)
{
    size_t n = strlen(s);
    /* REPLY_RESERVE is checked before each command, so this always fits. */
    if (c->out_len + n <= OUT_SIZE) {
        memcpy(c->out + c->out_len, s, n);
        c->out_len += n;
    }
}

static bool verb_is(const char *line, size_t len, const char *verb)
{
    size_t n = strlen(verb);
    if (len < n || strncasecmp(line, verb, n) != 0)
        return false;
    return len == n || line[n] == ' ' || line[n] == ':';
}

static void command(struct conn *c, const char *line, size_t len)
{
    if (verb_is(line, len, "EHLO")) {
        c->have_mail = c->have_rcpt = false;
        reply(c, "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                 "250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (verb_is(line, len, "HELO")) {
        c->have_mail = c->have_rcpt = false;
        reply(c, "250 sink\r\n");
    } else if (verb_is(line, len, "MAIL")) {
        c->have_mail = true;
        c->have_rcpt = false;
        reply(c, "250 2.1.0 ok\r\n");
    } else if (verb_is(line, len, "RCPT")) {
        if (!c->have_mail) {
            reply(c, "503 5.5.1 MAIL first\r\n");
            return;
        }
        c->have_rcpt = true;
        reply(c, "250 2.1.5 ok\r\n");
    } else if (verb_is(line, len, "DATA")) {
        if (!c->have_rcpt) {
            reply(c, "503 5.5.1 RCPT first\r\n");
            return;
        }
        c->in_data = true;
        c->dot = D_BOL; /* "DATA\r\n" just ended a line */
        reply(c, "354 end with <CRLF>.<CRLF>\r\n");
    } else if (verb_is(line, len, "RSET") || verb_is(line, len, "NOOP")) {
        if (verb_is(line, len, "RSET"))
            c->have_mail = c->have_rcpt = false;
        reply(c, "250 2.0.0 ok\r\n");
    } else if (verb_is(line, len, "QUIT")) {
        c->quitting = true;
        clock_gettime(CLOCK_MONOTONIC, &c->end);
        reply(c, "221 2.0.0 bye\r\n");
    } else {
        reply(c, "500 5.5.2 unrecognized command\r\n");
    }
}

static void message_done(struct sink *sk, struct conn *c)
{
    c->in_data = false;
    c->have_mail = c->have_rcpt = false;
    c->messages++;
    sk->messages++;
    reply(c, "250 2.0.0 queued\r\n");
}

/* Consumes message data from p[0..len); returns the bytes used. Stops just
 * after the terminating "\r\n.\r\n" (RFC 5321 4.1.1.4). */
static size_t data_bytes(struct sink *sk, struct conn *c, const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (c->dot == D_MID) {
            /* Fast path: skip to the next CR. */
            const char *cr = memchr(p + i, '\r', len - i);
            if (!cr)
                return len;
            i = (size_t)(cr - p);
        }
        char ch = p[i++];
        switch (c->dot) {
        case D_CR:
            c->dot = ch == '\n' ? D_BOL : ch == '\r' ? D_CR : D_MID;
            break;
        case D_BOL:
            c->dot = ch == '.' ? D_DOT : ch == '\r' ? D_CR : D_MID;
            break;
        case D_DOT:
            c->dot = ch == '\r' ? D_DOT_CR : D_MID;
            break;
        case D_DOT_CR:
            if (ch == '\n') {
                message_done(sk, c);
                return i;
            }
            c->dot = ch == '\r' ? D_CR : D_MID;
            break;
        default:
            c->dot = ch == '\r' ? D_CR : D_MID;
            break;
        }
    }
    return i;
}

/* Handles one command line in p[0..len) if complete; returns bytes used,
 * 0 when more input is needed. */
static size_t command_bytes(struct conn *c, const char *p, size_t len)
{
    const char *lf = memchr(p, '\n', len);
    if (!lf) {
        if (len > MAX_LINE && !c->discarding) {
            c->discarding = true;
            reply(c, "500 5.5.2 line too long\r\n");
        }
        return c->discarding ? len : 0;
    }
    size_t used = (size_t)(lf - p) + 1;
    if (c->discarding) {
        c->discarding = false;
        return used;
    }
    size_t n = used - 1;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n > MAX_LINE)
        reply(c, "500 5.5.2 line too long\r\n");
    else
        command(c, p, n);
    return used;
}

/* Parses everything complete in the input buffer while output space lasts. */
static void process(struct sink *sk, struct conn *c)
{
    size_t off = 0;
    while (off < c->in_len && !c->quitting) {
        if (OUT_SIZE - c->out_len < REPLY_RESERVE)
            break; /* resume once the socket drains */
        size_t used = c->in_data ? data_bytes(sk, c, c->in + off, c->in_len - off)
                                 : command_bytes(c, c->in + off, c->in_len - off);
        if (used == 0)
            break;
        off += used;
    }
    if (c->quitting)
        off = c->in_len; /* nothing after QUIT matters */
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

/* Writes pending output; returns -1 on a socket error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    else if (c->out_off > 0 && OUT_SIZE - c->out_len < REPLY_RESERVE) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return 0;
}

static void close_conn(struct sink *sk, struct conn *c)
{
    if (!c->quitting)
        clock_gettime(CLOCK_MONOTONIC, &c->end);
    if (sk->verbose) {
        double secs = elapsed(&c->start, &c->end);
        printf("session messages=%llu seconds=%.6f rate=%.1f\n",
               (unsigned long long)c->messages, secs,
               secs > 0 ? (double)c->messages / secs : 0.0);
        fflush(stdout);
    }
    epoll_ctl(sk->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
    sk->nconns--;
}

/* Interest follows state: read while output has room, write while pending. */
static void update_interest(struct sink *sk, struct conn *c)
{
    struct epoll_event ev = {.data.ptr = c};
    if (c->out_len > c->out_off)
        ev.events |= EPOLLOUT;
    if (!c->quitting && OUT_SIZE - c->out_len >= REPLY_RESERVE && c->in_len < IN_SIZE)
        ev.events |= EPOLLIN;
    epoll_ctl(sk->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_conn(struct sink *sk, struct conn *c, uint32_t events)
{
    bool eof = false;
    if (events & EPOLLIN) {
        ssize_t n = read(c->fd, c->in + c->in_len, IN_SIZE - c->in_len);
        if (n > 0)
            c->in_len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            eof = true;
    }
    if (eof || ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))) {
        close_conn(sk, c);
        return;
    }
    /* Normally one pass: parse all complete input, one write. More passes
     * only when the output buffer filled up and then drained. */
    for (;;) {
        size_t in_before = c->in_len;
        process(sk, c);
        if (flush_out(c) < 0 || (c->quitting && c->out_len == 0)) {
            close_conn(sk, c);
            return;
        }
        if (c->quitting || c->in_len == 0 || c->in_len == in_before)
            break;
    }
    update_interest(sk, c);
}

static void on_accept(struct sink *sk)
{
    for (;;) {
        int fd = accept4(sk->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct conn *c = sk->nconns < MAX_CONNS ? malloc(sizeof *c) : NULL;
        if (!c) {
            close(fd);
            continue;
        }
        memset(c, 0, offsetof(struct conn, in));
        c->fd = fd;
        clock_gettime(CLOCK_MONOTONIC, &c->start);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        reply(c, "220 sink ESMTP\r\n");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(sk->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        sk->nconns++;
        if (flush_out(c) < 0) {
            close_conn(sk, c);
            continue;
        }
        update_interest(sk, c);
    }
}

static int listen_on(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("listening 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

static int setup(struct sink *sk, uint16_t port)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sk->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    sk->epfd = epoll_create1(EPOLL_CLOEXEC);
    sk->lfd = listen_on(port);
    if (sk->sigfd < 0 || sk->epfd < 0 || sk->lfd < 0)
        return -1;
    /* data.ptr NULL marks the listener; &sk->sigfd marks the signalfd. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(sk->epfd, EPOLL_CTL_ADD, sk->lfd, &ev) < 0)
        return -1;
    ev.data.ptr = &sk->sigfd;
    return epoll_ctl(sk->epfd, EPOLL_CTL_ADD, sk->sigfd, &ev);
}

static void run(struct sink *sk)
{
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(sk->epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            return;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == NULL)
                on_accept(sk);
            else if (p == &sk->sigfd)
                return;
            else
                on_conn(sk, p, evs[i].events);
        }
    }
}

int main(int argc, char **argv)
{
    struct sink sk = {.epfd = -1, .lfd = -1, .sigfd = -1};
    int argi = 1;
    if (argi < argc && strcmp(argv[argi], "-v") == 0) {
        sk.verbose = true;
        argi++;
    }
    char *end = NULL;
    long port = argi + 1 == argc ? strtol(argv[argi], &end, 10) : -1;
    if (port < 0 || port > 65535 || !end || *end != '\0') {
        fprintf(stderr, "usage: %s [-v] PORT\n", argv[0]);
        return 64;
    }
    if (setup(&sk, (uint16_t)port) < 0) {
        perror("sink");
        return 1;
    }
    run(&sk);
    printf("messages %llu\n", (unsigned long long)sk.messages);
    fflush(stdout);
    return 0;
}
