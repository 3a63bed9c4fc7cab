/*
 * smtpc — an SMTP client library.
 *
 * Walkthrough (blocking use)
 * --------------------------
 *
 *     smtpc_config *cfg = smtpc_config_new();
 *     smtpc_config_set_tls_mode(cfg, SMTPC_TLS_STARTTLS);
 *     smtpc_config_set_ehlo_name(cfg, "client.example");
 *     smtpc_config_set_auth(cfg, "auto", "user", "secret");
 *
 *     smtpc_session *s = smtpc_session_new(cfg);   // cfg is copied
 *     smtpc_config_free(cfg);
 *     if (smtpc_connect(s, "mail.example", 587) != 0 || smtpc_open(s) != 0) {
 *         const smtpc_error *e = smtpc_session_error(s);
 *         fprintf(stderr, "%s\n", smtpc_error_message(e));
 *     }
 *
 *     smtpc_message *m = smtpc_message_new();
 *     smtpc_message_set_from(m, "me@example.org");
 *     smtpc_message_add_rcpt(m, "you@example.net");
 *     smtpc_message_set_body(m, data, len);         // or a read callback
 *     if (smtpc_send(s, m) == 0) ...                // 250 to the final dot
 *     for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++)
 *         smtpc_message_rcpt_result(m, i);          // per-recipient reply
 *     smtpc_quit(s);
 *     smtpc_message_free(m);
 *     smtpc_session_free(s);
 *
 * Non-blocking use
 * ----------------
 * Every blocking call is a poll() loop over a "begin" call and smtpc_step():
 *
 *     smtpc_begin_open(s);
 *     for (;;) {
 *         smtpc_status st = smtpc_step(s);
 *         if (st == SMTPC_DONE || st == SMTPC_FAILED) break;
 *         // wait until smtpc_session_fd(s) is readable (SMTPC_WANT_READ),
 *         // writable (SMTPC_WANT_WRITE) or either (SMTPC_WANT_READWRITE),
 *         // at most until smtpc_session_deadline_ms(s) (CLOCK_MONOTONIC ms).
 *     }
 *
 * smtpc_step() checks the stage deadline itself and fails with kind
 * SMTPC_ERR_TIMEOUT once it has passed. Callbacks are only ever called from
 * inside a library call on the same thread: the body reader from
 * smtpc_step() (or a blocking call), the log callback from any call.
 *
 * Conventions
 * -----------
 * Functions return 0 on success and -1 on failure, or a pointer / NULL.
 * Strings passed in are copied. Pointers returned are borrowed from the handle
 * and stay valid until the next call on that handle that changes it, or its
 * _free. Every _free accepts NULL. The library keeps no global state, never
 * prints and never exits.
 */
#ifndef SMTPC_H
#define SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMTPC_VERSION "0.1.0"
#define SMTPC_VERSION_MAJOR 0
#define SMTPC_VERSION_MINOR 1

#if defined(SMTPC_BUILDING) && defined(__GNUC__)
#define SMTPC_API __attribute__((visibility("default")))
#else
#define SMTPC_API
#endif

typedef struct smtpc_config smtpc_config;
typedef struct smtpc_session smtpc_session;
typedef struct smtpc_message smtpc_message;
typedef struct smtpc_error smtpc_error;
typedef struct smtpc_tlsrpt smtpc_tlsrpt;

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

typedef enum {
    SMTPC_ERR_NONE = 0,
    SMTPC_ERR_STATUS,        /* server replied with an unexpected code */
    SMTPC_ERR_PROTOCOL,      /* malformed or oversized reply */
    SMTPC_ERR_TLS,           /* TLS handshake, verification or STARTTLS refused */
    SMTPC_ERR_SIZE,          /* message larger than the server's SIZE */
    SMTPC_ERR_8BITMIME,      /* 8-bit message, server lacks 8BITMIME */
    SMTPC_ERR_SMTPUTF8,      /* SMTPUTF8 required, server lacks it */
    SMTPC_ERR_REQUIRETLS,    /* REQUIRETLS required, server lacks it */
    SMTPC_ERR_BOTCHED,       /* an earlier error left the session unusable */
    SMTPC_ERR_CLOSED,        /* session already closed */
    SMTPC_ERR_IO,            /* connection lost, reset, read/write failure */
    SMTPC_ERR_TIMEOUT,       /* a stage deadline passed */
    SMTPC_ERR_AUTH,          /* authentication refused, failed or withheld */
    SMTPC_ERR_CONNECT,       /* could not connect */
    SMTPC_ERR_NO_RECIPIENTS, /* several recipients, none accepted */
    SMTPC_ERR_USAGE,         /* API misuse or invalid argument (e.g. CR in address) */
    SMTPC_ERR_CONFIG,        /* configuration unusable (unreadable CA file ...) */
    SMTPC_ERR_MESSAGE,       /* invalid message (bare CR or LF) */
    SMTPC_ERR_NOMEM,         /* allocation failure */
    SMTPC_ERR_DNS,           /* delivery: lookup failed (SERVFAIL/bogus transient, NXDOMAIN permanent) */
    SMTPC_ERR_NO_MAIL,       /* delivery: null MX (RFC 7505), 556 5.1.10 */
    SMTPC_ERR_POLICY,        /* delivery: MTA-STS / REQUIRETLS policy unmet, 554 5.7.30 */
} smtpc_error_kind;

typedef enum {
    SMTPC_CMD_NONE = 0,
    SMTPC_CMD_GREETING,
    SMTPC_CMD_EHLO,
    SMTPC_CMD_HELO,
    SMTPC_CMD_STARTTLS,
    SMTPC_CMD_AUTH,
    SMTPC_CMD_MAILFROM,
    SMTPC_CMD_RCPTTO,
    SMTPC_CMD_DATA,
    SMTPC_CMD_RSET,
    SMTPC_CMD_QUIT,
    SMTPC_CMD_CONNECT,
    SMTPC_CMD_TLS,           /* implicit-TLS handshake */
} smtpc_command;

/* Stable lower-case names, as used in the CLI's JSON ("no-recipients", "mailfrom"). */
SMTPC_API const char *smtpc_error_kind_name(smtpc_error_kind k);
SMTPC_API const char *smtpc_command_name(smtpc_command c);

/* An SMTP outcome: a session/transaction error, or one recipient's reply.
 * All getters accept NULL (and then return zero values / ""). */
SMTPC_API smtpc_error_kind smtpc_error_get_kind(const smtpc_error *e);
SMTPC_API bool smtpc_error_permanent(const smtpc_error *e);
SMTPC_API int smtpc_error_code(const smtpc_error *e);           /* 0 when no reply */
/* Full RFC 3463 code as sent ("5.7.1"), "" when absent. Parsed only after
 * ENHANCEDSTATUSCODES and only when its class matches the reply code. */
SMTPC_API const char *smtpc_error_enhanced_code(const smtpc_error *e);
SMTPC_API smtpc_command smtpc_error_command(const smtpc_error *e);
SMTPC_API const char *smtpc_error_line(const smtpc_error *e);   /* first reply line */
SMTPC_API size_t smtpc_error_more_line_count(const smtpc_error *e);
SMTPC_API const char *smtpc_error_more_line(const smtpc_error *e, size_t i);
SMTPC_API int smtpc_error_errno(const smtpc_error *e);
/* Human-readable description, e.g. "got 550, expected 250 (permanent): 550 5.1.1 no such user". */
SMTPC_API const char *smtpc_error_message(const smtpc_error *e);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

typedef enum {
    SMTPC_LOG_ERROR = 0,
    SMTPC_LOG_WARN,
    SMTPC_LOG_INFO,
    SMTPC_LOG_DEBUG,
    SMTPC_LOG_TRACE,      /* protocol trace: "C: EHLO x" / "S: 250 ok" */
    SMTPC_LOG_TRACE_DATA, /* message data as sent (only at this level) */
} smtpc_log_level;

/* Called synchronously; msg has no trailing newline and is valid only during the call. */
typedef void (*smtpc_log_fn)(void *userdata, smtpc_log_level level, const char *msg);

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

typedef enum {
    SMTPC_TLS_IMMEDIATE = 0,  /* implicit TLS on connect (port 465) */
    SMTPC_TLS_STARTTLS,       /* STARTTLS required: sent even when not advertised */
    SMTPC_TLS_OPPORTUNISTIC,  /* STARTTLS only when advertised */
    SMTPC_TLS_NONE,           /* never TLS ("skip") */
} smtpc_tls_mode;

typedef enum {
    SMTPC_TIMEOUT_CONNECT = 0,
    SMTPC_TIMEOUT_TLS,        /* TLS handshake (implicit or STARTTLS) */
    SMTPC_TIMEOUT_GREETING,
    SMTPC_TIMEOUT_COMMAND,    /* EHLO, HELO, STARTTLS, AUTH, RSET replies */
    SMTPC_TIMEOUT_MAIL,
    SMTPC_TIMEOUT_RCPT,
    SMTPC_TIMEOUT_DATA,       /* reply to DATA */
    SMTPC_TIMEOUT_DATA_BLOCK, /* each write of message data */
    SMTPC_TIMEOUT_DATA_END,   /* reply to the final dot */
    SMTPC_TIMEOUT_QUIT,
    SMTPC_TIMEOUT_WRITE,      /* each write of commands, while output is pending */
    SMTPC_TIMEOUT__COUNT
} smtpc_timeout_stage;

SMTPC_API smtpc_config *smtpc_config_new(void);
SMTPC_API void smtpc_config_free(smtpc_config *c);

SMTPC_API void smtpc_config_set_log(smtpc_config *c, smtpc_log_fn fn, void *userdata,
                                    smtpc_log_level max_level);
/* Show AUTH payloads in the trace (default: redacted). */
SMTPC_API void smtpc_config_set_trace_secrets(smtpc_config *c, bool on);

/* Name sent in EHLO/HELO (default "localhost"). Must be a domain or address literal. */
SMTPC_API int smtpc_config_set_ehlo_name(smtpc_config *c, const char *name);
/* Local address to bind before connecting (NULL: none). */
SMTPC_API int smtpc_config_set_local_address(smtpc_config *c, const char *ip);
/* Stage timeouts in milliseconds (0 restores the RFC 5321 4.5.3.2 default). */
SMTPC_API void smtpc_config_set_timeout(smtpc_config *c, smtpc_timeout_stage stage, int ms);
/* Set every stage to ms. */
SMTPC_API void smtpc_config_set_all_timeouts(smtpc_config *c, int ms);
SMTPC_API void smtpc_config_set_pipelining(smtpc_config *c, bool allowed); /* default true */

/* TLS. */
SMTPC_API void smtpc_config_set_tls_mode(smtpc_config *c, smtpc_tls_mode mode);
/* Enforce PKIX verification (default true). PKIX is evaluated and recorded either way. */
SMTPC_API void smtpc_config_set_tls_verify_pkix(smtpc_config *c, bool enforce);
/* Record verification failures but never fail the handshake for them. */
SMTPC_API void smtpc_config_set_ignore_tls_errors(smtpc_config *c, bool ignore);
/* Trust roots: a PEM bundle file and/or a hashed directory; default the system store. */
SMTPC_API int smtpc_config_set_ca_file(smtpc_config *c, const char *path);
SMTPC_API int smtpc_config_set_ca_dir(smtpc_config *c, const char *path);
/* Name for SNI, PKIX and DANE checks (default: the host passed to
 * smtpc_connect; an IP address is checked against the certificate's IP
 * addresses and sent without SNI). */
SMTPC_API int smtpc_config_set_tls_name(smtpc_config *c, const char *name);
SMTPC_API int smtpc_config_set_client_cert(smtpc_config *c, const char *cert_file,
                                           const char *key_file);

/* DANE (RFC 7672). Enabling DANE with no usable record means no certificate can verify.
 * Records with usage PKIX-TA(0)/PKIX-EE(1) are ignored (RFC 7672 3.1.3). */
SMTPC_API void smtpc_config_enable_dane(smtpc_config *c);
SMTPC_API int smtpc_config_add_tlsa(smtpc_config *c, uint8_t usage, uint8_t selector,
                                    uint8_t mtype, const unsigned char *data, size_t len);
/* "USAGE SELECTOR MTYPE HEX", e.g. "3 1 1 2bb1...". Enables DANE. */
SMTPC_API int smtpc_config_add_tlsa_text(smtpc_config *c, const char *text);
/* Further names a DANE-TA certificate may carry (the TLS name is always allowed). */
SMTPC_API int smtpc_config_add_dane_name(smtpc_config *c, const char *name);

/* Authentication. mech is a SASL name (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1,
 * SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-256-PLUS, XOAUTH2, OAUTHBEARER) or
 * "auto" (strongest shared). Secrets are copied and wiped on free. */
SMTPC_API int smtpc_config_set_auth(smtpc_config *c, const char *mech, const char *user,
                                    const char *password);
SMTPC_API int smtpc_config_set_oauth_token(smtpc_config *c, const char *token);
/* Allow credentials over plaintext or unverified TLS (default: refuse). */
SMTPC_API void smtpc_config_set_insecure_auth(smtpc_config *c, bool allow);

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* Reads up to len bytes into buf; returns the count, 0 at end, -1 on error. */
typedef ssize_t (*smtpc_read_fn)(void *userdata, char *buf, size_t len);

enum {
    SMTPC_MSG_8BIT = 1 << 0,          /* body has 8-bit data: BODY=8BITMIME when offered */
    SMTPC_MSG_REQUIRE_8BITMIME = 1 << 1, /* fail (permanent) without 8BITMIME */
    SMTPC_MSG_SMTPUTF8 = 1 << 2,      /* needs SMTPUTF8 (fails, transient, without it) */
    SMTPC_MSG_REQUIRETLS = 1 << 3,    /* RFC 8689 REQUIRETLS */
    SMTPC_MSG_NORMALIZE_LF = 1 << 4,  /* bare LF becomes CRLF instead of an error */
};

SMTPC_API smtpc_message *smtpc_message_new(void);
SMTPC_API void smtpc_message_free(smtpc_message *m);
/* Reverse-path without angle brackets; "" is the null path. Rejects CR, LF, controls, '<' '>'. */
SMTPC_API int smtpc_message_set_from(smtpc_message *m, const char *addr);
SMTPC_API int smtpc_message_add_rcpt(smtpc_message *m, const char *addr);
SMTPC_API void smtpc_message_set_flags(smtpc_message *m, unsigned flags);
/* Body from memory (borrowed until the send finishes). Sets the size. */
SMTPC_API void smtpc_message_set_body(smtpc_message *m, const char *data, size_t len);
/* Body streamed from a callback; size (for SIZE=) may be -1 when unknown. */
SMTPC_API void smtpc_message_set_body_reader(smtpc_message *m, smtpc_read_fn fn,
                                             void *userdata, int64_t size);
/* Rewinds a reader body to its start (returns 0, or -1 on failure). Needed
 * only when a message goes out more than once: after a failed transaction,
 * in recipient batches, to the next MX host (smtpc_deliver). Without it such
 * a retry fails with kind SMTPC_ERR_MESSAGE. */
typedef int (*smtpc_rewind_fn)(void *userdata);
SMTPC_API void smtpc_message_set_body_rewind(smtpc_message *m, smtpc_rewind_fn fn);
/* Results of the last send of this message. */
SMTPC_API size_t smtpc_message_rcpt_count(const smtpc_message *m);
SMTPC_API const char *smtpc_message_rcpt(const smtpc_message *m, size_t i);
/* The recipient's RCPT reply: kind NONE and code 250 when accepted; code 0
 * when no reply was received; NULL before the message was sent. */
SMTPC_API const smtpc_error *smtpc_message_rcpt_result(const smtpc_message *m, size_t i);
SMTPC_API bool smtpc_message_rcpt_accepted(const smtpc_message *m, size_t i);
/* The transaction's error (NULL when the message was accepted). */
SMTPC_API const smtpc_error *smtpc_message_error(const smtpc_message *m);

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

typedef enum {
    SMTPC_DONE = 0,
    SMTPC_WANT_READ,
    SMTPC_WANT_WRITE,
    SMTPC_WANT_READWRITE,
    SMTPC_FAILED,
} smtpc_status;

/* Copies cfg. Returns NULL only when out of memory. */
SMTPC_API smtpc_session *smtpc_session_new(const smtpc_config *cfg);
/* Closes the socket without QUIT if still open. */
SMTPC_API void smtpc_session_free(smtpc_session *s);

/* The session's error (kind SMTPC_ERR_NONE when there is none). Sticky once
 * the connection is botched. */
SMTPC_API const smtpc_error *smtpc_session_error(const smtpc_session *s);
SMTPC_API bool smtpc_session_botched(const smtpc_session *s);

/* Blocking API. */
SMTPC_API int smtpc_connect(smtpc_session *s, const char *host, uint16_t port);
/* Use a socket the caller connected; the session takes ownership. */
SMTPC_API int smtpc_attach_fd(smtpc_session *s, int fd, const char *host);
/* Greeting, EHLO/HELO, TLS as configured, AUTH when configured. */
SMTPC_API int smtpc_open(smtpc_session *s);
/* One transaction: MAIL, RCPT..., DATA, body. 0 when the server accepted the
 * message for at least one recipient; per-recipient results on m. */
SMTPC_API int smtpc_send(smtpc_session *s, smtpc_message *m);
SMTPC_API int smtpc_reset(smtpc_session *s);
/* QUIT and close. Always closes the connection. */
SMTPC_API int smtpc_quit(smtpc_session *s);

/* Non-blocking API. smtpc_begin_connect starts a non-blocking connect; the
 * others queue an operation that smtpc_step() drives. */
SMTPC_API int smtpc_begin_connect(smtpc_session *s, const char *host, uint16_t port);
SMTPC_API int smtpc_begin_open(smtpc_session *s);
SMTPC_API int smtpc_begin_send(smtpc_session *s, smtpc_message *m);
SMTPC_API int smtpc_begin_reset(smtpc_session *s);
SMTPC_API int smtpc_begin_quit(smtpc_session *s);
SMTPC_API smtpc_status smtpc_step(smtpc_session *s);
SMTPC_API int smtpc_session_fd(const smtpc_session *s);
/* Monotonic deadline of the current stage in ms, -1 when none. */
SMTPC_API int64_t smtpc_session_deadline_ms(const smtpc_session *s);

/* What the server told us. */
enum {
    SMTPC_EXT_STARTTLS = 1 << 0,
    SMTPC_EXT_ENHANCEDSTATUSCODES = 1 << 1,
    SMTPC_EXT_8BITMIME = 1 << 2,
    SMTPC_EXT_PIPELINING = 1 << 3,
    SMTPC_EXT_SMTPUTF8 = 1 << 4,
    SMTPC_EXT_SIZE = 1 << 5,
    SMTPC_EXT_AUTH = 1 << 6,
    SMTPC_EXT_REQUIRETLS = 1 << 7,
    SMTPC_EXT_LIMITS = 1 << 8,
};
SMTPC_API const char *smtpc_server_greeting(const smtpc_session *s); /* first line */
SMTPC_API const char *smtpc_server_name(const smtpc_session *s);     /* first word after code */
SMTPC_API unsigned smtpc_server_extensions(const smtpc_session *s);  /* SMTPC_EXT_* bits */
SMTPC_API size_t smtpc_server_ext_count(const smtpc_session *s);
/* Keyword uppercased, parameters as sent ("SIZE 512"). */
SMTPC_API const char *smtpc_server_ext(const smtpc_session *s, size_t i);
SMTPC_API int64_t smtpc_server_max_size(const smtpc_session *s);     /* 0: no limit */
SMTPC_API size_t smtpc_server_auth_count(const smtpc_session *s);
SMTPC_API const char *smtpc_server_auth(const smtpc_session *s, size_t i);
/* RFC 9422 LIMITS: pairs (names uppercased, values as sent) and the known limits (0: none). */
SMTPC_API size_t smtpc_server_limit_count(const smtpc_session *s);
SMTPC_API const char *smtpc_server_limit_name(const smtpc_session *s, size_t i);
SMTPC_API const char *smtpc_server_limit_value(const smtpc_session *s, size_t i);
SMTPC_API int smtpc_server_mailmax(const smtpc_session *s);
SMTPC_API int smtpc_server_rcptmax(const smtpc_session *s);
SMTPC_API int smtpc_server_rcptdomainmax(const smtpc_session *s);

/* TLS state: NULL / false when the session is not (yet) TLS. */
SMTPC_API bool smtpc_tls_active(const smtpc_session *s);
SMTPC_API const char *smtpc_tls_version(const smtpc_session *s);  /* "TLSv1.3" */
SMTPC_API const char *smtpc_tls_cipher(const smtpc_session *s);
SMTPC_API bool smtpc_tls_pkix_verified(const smtpc_session *s);
/* "USAGE SELECTOR MTYPE hex" of the TLSA record that verified, or NULL. */
SMTPC_API const char *smtpc_tls_dane_record(const smtpc_session *s);

/* ------------------------------------------------------------------ */
/* TLS reporting (RFC 8460) results                                    */
/* ------------------------------------------------------------------ */

typedef enum {
    SMTPC_TLSRPT_RECIPIENT_DOMAIN = 0, /* PKIX/MTA-STS outcome */
    SMTPC_TLSRPT_HOST,                 /* DANE outcome for the MX host */
} smtpc_tlsrpt_which;

SMTPC_API const smtpc_tlsrpt *smtpc_session_tlsrpt(const smtpc_session *s,
                                                   smtpc_tlsrpt_which which);
SMTPC_API smtpc_tlsrpt *smtpc_tlsrpt_new(void);
SMTPC_API void smtpc_tlsrpt_free(smtpc_tlsrpt *r);
/* Adds counts and merges details of src into dst (RFC 8460 summaries). */
SMTPC_API int smtpc_tlsrpt_merge(smtpc_tlsrpt *dst, const smtpc_tlsrpt *src);
/* The policy a result is about: type "sts", "tlsa" or "no-policy-found" and its
 * domain (both "" for plain session results). */
SMTPC_API const char *smtpc_tlsrpt_policy_type(const smtpc_tlsrpt *r);
SMTPC_API const char *smtpc_tlsrpt_policy_domain(const smtpc_tlsrpt *r);
SMTPC_API int64_t smtpc_tlsrpt_success(const smtpc_tlsrpt *r);
SMTPC_API int64_t smtpc_tlsrpt_failure(const smtpc_tlsrpt *r);
SMTPC_API size_t smtpc_tlsrpt_detail_count(const smtpc_tlsrpt *r);
/* Field names as in RFC 8460: "result-type", "sending-mta-ip", "receiving-mx-hostname",
 * "receiving-mx-helo", "receiving-ip", "failure-reason-code". */
SMTPC_API const char *smtpc_tlsrpt_detail_field(const smtpc_tlsrpt *r, size_t i,
                                                const char *field);
SMTPC_API int64_t smtpc_tlsrpt_detail_failed_sessions(const smtpc_tlsrpt *r, size_t i);

#ifdef __cplusplus
}
#endif

#include "smtpc_deliver.h"

#endif /* SMTPC_H */
