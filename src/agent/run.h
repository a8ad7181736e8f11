/*
 * run.h — `odysseus-agent run`: the enrolled node's daemon.
 *
 * Three threads, each with its own curl handle (connections kept alive):
 *   heartbeat    POST /agent/v1/status every heartbeat_interval_s (the
 *                control plane's last answer; 5 s until then), with the
 *                reconciler's containers and events (reconcile.h)
 *   assignments  GET /agent/v1/assignments?wait=30&since=<revision>, again
 *                and again; each answer goes to reconcile_apply
 *   renewal      at 2/3 of the certificate's lifetime: a new key and CSR,
 *                POST /agent/v1/renew, swap the files (state.h)
 * The main thread waits for SIGINT/SIGTERM. The certificate, key and CA
 * bundle in use are kept in memory and handed to curl as blobs; a renewal
 * replaces them under a lock and bumps a generation number, and each
 * thread's next request then opens a new connection with the new
 * certificate. A failed call waits with exponential backoff and full
 * jitter (agent.h). A 401 "node revoked" stops every thread: status 3.
 * The reconciler runs its own two threads (reconcile.h) on the Docker
 * socket; without a reachable Engine the agent runs on and heartbeats
 * carry no "containers".
 * Logs are JSON lines on stderr; never the key.
 */
#ifndef ODX_AGENT_RUN_H
#define ODX_AGENT_RUN_H

struct run_opts {
	const char *state_dir;	   /* NULL: AGENT_STATE_DIR_DEFAULT */
	const char *docker_socket; /* NULL: SAMPLE_DOCKER_SOCKET */
};

/*
 * Runs until a signal (returns AGENT_EXIT_OK), revocation
 * (AGENT_EXIT_REFUSED) or a start-up error (AGENT_EXIT_ERROR). Needs
 * client_global_init.
 */
int run_main(const struct run_opts *o);

#endif
