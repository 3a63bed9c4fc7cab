/* Envelopes for the library's smtpc_message. */
#include "envelope.h"

static bool non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

unsigned cli_envelope_flags(const struct cli_opts *o, const char *const *rcpts, size_t n)
{
    unsigned f = SMTPC_MSG_NORMALIZE_LF;
    bool utf8 = non_ascii(o->from);
    for (size_t i = 0; i < n; i++)
        utf8 = utf8 || non_ascii(rcpts[i]);
    if (o->require_8bitmime)
        f |= SMTPC_MSG_8BIT | SMTPC_MSG_REQUIRE_8BITMIME;
    if (o->require_smtputf8 || utf8)
        f |= SMTPC_MSG_SMTPUTF8;
    if (o->requiretls)
        f |= SMTPC_MSG_REQUIRETLS;
    return f;
}

smtpc_message *cli_envelope(const char *from, const char *const *rcpts, size_t n,
                            struct cli_err *err)
{
    smtpc_message *m = smtpc_message_new();
    if (m == NULL) {
        cli_err_set(err, CLI_EX_CONFIG, "out of memory");
        return NULL;
    }
    if (smtpc_message_set_from(m, from) != 0) {
        cli_err_set(err, CLI_EX_USAGE, "invalid --from address \"%s\"", from);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (smtpc_message_add_rcpt(m, rcpts[i]) != 0) {
            cli_err_set(err, CLI_EX_USAGE, "invalid --to address \"%s\"", rcpts[i]);
            goto fail;
        }
    }
    return m;
fail:
    smtpc_message_free(m);
    return NULL;
}
