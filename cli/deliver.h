/* `smtpc deliver`: direct delivery to each recipient domain's MX hosts. */
#ifndef SMTPC_CLI_DELIVER_H
#define SMTPC_CLI_DELIVER_H

/* argv[0] is "deliver". Returns the exit status. */
int cli_deliver_main(int argc, char **argv);

#endif
