/* The torture test's in-process SMTP server: a thread serving one connection
 * at a time on two loopback listeners, with STARTTLS (a certificate from a CA
 * made at start-up), a real SCRAM-SHA-256 server side, PLAIN, and mail
 * transactions. It records what it saw per connection so the test can check
 * that the client never reports a delivery the server did not make. */
#ifndef TORTURE_SERVER_H
#define TORTURE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#define SRV_USER "user"
#define SRV_PASS "pencil"
#define SRV_CRAM_CHALLENGE "<1896.697170952@mx.test>" /* RFC 2195 2 */
#define SRV_REJECT "bad@example.net" /* RCPT answered 550 5.1.1 */
#define SRV_MAX_RCPT 8
#define SRV_BODY_MAX 8192

/* The listener a connection came in on decides the server's behaviour. */
typedef enum {
    SRV_PIPELINING = 0, /* STARTTLS; PIPELINING, AUTH SCRAM-SHA-256 PLAIN; AUTH required */
    SRV_PLAIN,          /* STARTTLS; no PIPELINING, AUTH PLAIN LOGIN; AUTH required */
    SRV_NOAUTH,         /* STARTTLS required, no AUTH */
    SRV_NOTLS,          /* neither STARTTLS nor AUTH */
    SRV_IMPLICIT,       /* implicit TLS; AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256; AUTH required */
    SRV__COUNT
} srv_kind;

/* What the server saw on one connection. */
typedef struct srv_record {
    int client_port;             /* the client's local port: the key */
    bool tls;
    char mech[32];               /* mechanism that authenticated, "" none */
    int delivered;               /* messages answered 250 after the final dot */
    char rcpts[SRV_MAX_RCPT][64]; /* accepted recipients of the last delivery */
    int nrcpts;
    char body[SRV_BODY_MAX];     /* last delivered body, unstuffed */
    size_t body_len;
    char anomaly[256];           /* the client broke the protocol ("" none) */
} srv_record;

typedef struct server server;

/* Makes the CA and the server certificate, writes the CA to a temporary
 * file, listens and starts the thread. NULL on failure (message on stderr). */
server *server_start(void);
void server_stop(server *s);
int server_port(const server *s, srv_kind kind);
const char *server_ca_file(const server *s);
/* "3 1 1 <hex>": a DANE-EE TLSA record for the server's key. */
const char *server_tlsa(const server *s);
/* An empty directory: as CA directory it makes PKIX fail. */
const char *server_empty_dir(const server *s);
/* Number of connections finished so far. */
unsigned long server_seq(server *s);
/* Waits (up to timeout_ms) until the connection from client_port, finished
 * after the first `since` connections, is done; copies its record. Returns
 * 0, or -1 on timeout. */
int server_wait(server *s, unsigned long since, int client_port, int timeout_ms,
                srv_record *out);

#endif
