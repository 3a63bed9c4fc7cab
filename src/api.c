/* The blocking API (a poll loop over smtpc_step) and the session getters. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static int run(smtpc_session *s)
{
    for (;;) {
        smtpc_status st = smtpc_step(s);
        if (st == SMTPC_DONE)
            return 0;
        if (st == SMTPC_FAILED)
            return -1;
        struct pollfd pfd = {.fd = s->tr.fd};
        pfd.events = st == SMTPC_WANT_READ    ? POLLIN
                     : st == SMTPC_WANT_WRITE ? POLLOUT
                                              : POLLIN | POLLOUT;
        int64_t wait = s->deadline_ms < 0 ? -1 : s->deadline_ms - session_now_ms();
        if (wait < 0 && s->deadline_ms >= 0)
            wait = 0;
        if (poll(&pfd, 1, (int)(wait > 86400000 ? 86400000 : wait)) < 0 && errno != EINTR)
            core_io_failed(&s->core, SMTPC_ERR_IO, errno, "poll failed");
    }
}

int smtpc_connect(smtpc_session *s, const char *host, uint16_t port)
{
    return smtpc_begin_connect(s, host, port) != 0 ? -1 : run(s);
}

int smtpc_open(smtpc_session *s) { return smtpc_begin_open(s) != 0 ? -1 : run(s); }
int smtpc_send(smtpc_session *s, smtpc_message *m) { return smtpc_begin_send(s, m) != 0 ? -1 : run(s); }
int smtpc_reset(smtpc_session *s) { return smtpc_begin_reset(s) != 0 ? -1 : run(s); }

int smtpc_quit(smtpc_session *s)
{
    if (smtpc_begin_quit(s) != 0)
        return -1;
    int rc = s->op == OP_QUIT ? run(s) : 0;
    transport_close(&s->tr); /* Q2: the socket is closed whatever happened */
    s->core.closed = true;
    return rc;
}

const smtpc_error *smtpc_session_error(const smtpc_session *s) { return &s->core.err; }
bool smtpc_session_botched(const smtpc_session *s) { return s->core.botched || s->core.closed; }

const char *smtpc_server_greeting(const smtpc_session *s)
{
    return s->core.greeting ? s->core.greeting : "";
}

const char *smtpc_server_name(const smtpc_session *s)
{
    return s->core.server_name ? s->core.server_name : "";
}

unsigned smtpc_server_extensions(const smtpc_session *s) { return s->core.ehlo.ext; }
size_t smtpc_server_ext_count(const smtpc_session *s) { return s->core.ehlo.nkeywords; }

const char *smtpc_server_ext(const smtpc_session *s, size_t i)
{
    return i < s->core.ehlo.nkeywords ? s->core.ehlo.keywords[i] : NULL;
}

int64_t smtpc_server_max_size(const smtpc_session *s) { return s->core.ehlo.max_size; }
size_t smtpc_server_auth_count(const smtpc_session *s) { return s->core.ehlo.nauth; }

const char *smtpc_server_auth(const smtpc_session *s, size_t i)
{
    return i < s->core.ehlo.nauth ? s->core.ehlo.auth[i] : NULL;
}

size_t smtpc_server_limit_count(const smtpc_session *s) { return s->core.ehlo.nlimits; }

const char *smtpc_server_limit_name(const smtpc_session *s, size_t i)
{
    return i < s->core.ehlo.nlimits ? s->core.ehlo.limit_names[i] : NULL;
}

const char *smtpc_server_limit_value(const smtpc_session *s, size_t i)
{
    return i < s->core.ehlo.nlimits ? s->core.ehlo.limit_values[i] : NULL;
}

int smtpc_server_mailmax(const smtpc_session *s) { return s->core.ehlo.mailmax; }
int smtpc_server_rcptmax(const smtpc_session *s) { return s->core.ehlo.rcptmax; }
int smtpc_server_rcptdomainmax(const smtpc_session *s) { return s->core.ehlo.rcptdomainmax; }

bool smtpc_tls_active(const smtpc_session *s) { return s->core.tls; }

const char *smtpc_tls_version(const smtpc_session *s)
{
    return s->core.tls ? s->tls_version : NULL;
}

const char *smtpc_tls_cipher(const smtpc_session *s)
{
    return s->core.tls ? s->tls_cipher : NULL;
}

bool smtpc_tls_pkix_verified(const smtpc_session *s) { return s->core.tls && s->pkix_verified; }
const char *smtpc_tls_dane_record(const smtpc_session *s) { return s->dane_record; }

const smtpc_tlsrpt *smtpc_session_tlsrpt(const smtpc_session *s, smtpc_tlsrpt_which which)
{
    return which == SMTPC_TLSRPT_HOST ? &s->rpt_host : &s->rpt_rcpt;
}
