/* `smtpc send`: one session, every message over it, in order. */
#ifndef SMTPC_CLI_SEND_H
#define SMTPC_CLI_SEND_H

/* argv[0] is "send". Returns the exit status. */
int cli_send_main(int argc, char **argv);

#endif
