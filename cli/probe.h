/* `smtpc probe DOMAIN`: what a sender would do for the domain, without mail. */
#ifndef SMTPC_CLI_PROBE_H
#define SMTPC_CLI_PROBE_H

/* argv[0] is "probe". Returns the exit status. */
int cli_probe_main(int argc, char **argv);

#endif
