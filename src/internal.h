/* Internal definitions of the public opaque handles (config, message). */
#ifndef SMTPC_INTERNAL_H
#define SMTPC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "log.h"
#include "smtpc.h"
#include "tls.h"

#define CONFIG_MAX_TLSA 64
#define CONFIG_MAX_DANE_NAMES 16
#define MESSAGE_MAX_RCPTS 10000
#define ADDR_MAX 1024

struct smtpc_config {
    logger log;
    bool trace_secrets;
    char *ehlo_name;
    char *local_address;
    int timeouts_ms[SMTPC_TIMEOUT__COUNT];
    bool pipelining;

    smtpc_tls_mode tls_mode;
    bool pkix_enforce;
    bool ignore_tls_errors;
    char *ca_file, *ca_dir, *tls_name, *cert_file, *key_file;
    bool dane;
    tlsa_rec tlsa[CONFIG_MAX_TLSA];
    size_t ntlsa;
    char *dane_names[CONFIG_MAX_DANE_NAMES];
    size_t ndane_names;

    char *auth_mech, *auth_user, *auth_password, *oauth_token;
    bool insecure_auth;
};

int config_copy(smtpc_config *dst, const smtpc_config *src);
void config_clear(smtpc_config *c);
void config_forget_secrets(smtpc_config *c);
int config_timeout(const smtpc_config *c, smtpc_timeout_stage st);

struct smtpc_message {
    char *from;
    char **rcpts;
    size_t nrcpts;
    unsigned flags;
    const char *body;       /* borrowed buffer, or NULL */
    size_t body_len;
    smtpc_read_fn reader;
    void *reader_ud;
    smtpc_rewind_fn rewind;
    bool body_used;         /* the reader was read from: a resend must rewind */
    int64_t size;           /* -1 unknown */

    /* Results of the last send. */
    smtpc_error *results;   /* nrcpts entries; kind NONE + code 0 = no reply */
    bool *accepted;
    bool results_valid;
    smtpc_error error;
};

/* Prepares the result arrays for a new transaction. Returns -1 on nomem. */
int message_reset_results(smtpc_message *m);
/* Next body bytes: from the buffer or the reader. Returns count, 0 at end, -1 on error. */
ssize_t message_read_body(smtpc_message *m, size_t *offset, char *buf, size_t len);
/* Readies the body to be sent from its start. Returns -1 when a used reader
 * cannot be rewound. */
int message_body_restart(smtpc_message *m);
/* RFC 5321 4.1.2 path check for our purposes (Q19): no CR, LF, controls, '<', '>'. */
bool address_acceptable(const char *addr);

#endif
