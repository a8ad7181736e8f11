/*
 * enroll.h — `odysseus-agent enroll`: trade an enrollment token for a node
 * identity (a key made here and a client certificate from the control
 * plane's CA).
 *
 * Steps, each only after the one before succeeded: check the token's shape;
 * open the state directory (0700, locked) and refuse one that already holds
 * agent.json; pin the CA by the token's fingerprint (pin.h) and write it to
 * ca.crt; make node.key.new and a CSR; POST /agent/v1/enroll over TLS that
 * trusts only ca.crt, offering ALPN "odysseus-enroll/1"; on 201 write
 * ca.crt (the CA bundle) and node.crt, rename node.key.new to node.key and
 * write agent.json last. On failure node.key.new is removed.
 */
#ifndef ODX_AGENT_ENROLL_H
#define ODX_AGENT_ENROLL_H

struct enroll_opts {
	const char *server;    /* https://HOST:PORT */
	const char *token;     /* odx-enroll-...: never printed */
	const char *name;      /* NULL: the control plane names the node */
	const char *state_dir; /* NULL: AGENT_STATE_DIR_DEFAULT */
};

/*
 * Runs the enrollment, printing progress to stdout and errors to stderr.
 * Returns an AGENT_EXIT_* status. Needs client_global_init.
 */
int enroll_main(const struct enroll_opts *o);

#endif
