/*
 * odysseus-agent — the node daemon: argument parsing only. The work is in
 * src/agent/ (enroll.c, run.c); docs/agent.md describes it.
 *
 *   odysseus-agent enroll --server URL --token TOKEN [--name NAME] [--state-dir DIR]
 *   odysseus-agent run [--state-dir DIR] [--docker-socket PATH]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/client.h"
#include "agent/enroll.h"
#include "agent/run.h"

static const char usage_text[] =
    "usage: odysseus-agent enroll --server https://HOST:PORT --token TOKEN [--name NAME]\n"
    "                             [--state-dir DIR]\n"
    "       odysseus-agent run [--state-dir DIR] [--docker-socket PATH]\n"
    "       odysseus-agent --help | --version\n"
    "\n"
    "enroll  trades a one-time enrollment token (from 'odysseus nodes token') for this\n"
    "        node's key and certificate; the control plane is checked against the CA\n"
    "        fingerprint in the token before anything is sent to it\n"
    "run     sends heartbeats, polls for assignments and renews the certificate\n"
    "\n"
    "  --server URL          the control plane's agent API, e.g. https://cp.example:8444\n"
    "  --token TOKEN         odx-enroll-...; never printed or logged\n"
    "  --name NAME           the node's name ([a-z0-9-], up to 63); default node-<id>\n"
    "  --state-dir DIR       default " AGENT_STATE_DIR_DEFAULT " (mode 0700)\n"
    "  --docker-socket PATH  default /var/run/docker.sock\n"
    "\n"
    "exit status: 0 done, 1 error, 2 usage, 3 refused by the control plane (bad token,\n"
    "node revoked), 4 the server is not the control plane the token names\n";

enum { OPT_SERVER = 1, OPT_TOKEN, OPT_NAME, OPT_STATE_DIR, OPT_DOCKER_SOCKET, OPT_HELP };

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "odysseus-agent: %s%s\n%s", msg, arg != NULL ? arg : "", usage_text);
	return AGENT_EXIT_USAGE;
}

/* Names a bad option without any value glued to it (--tokn=SECRET). */
static int bad_option(const char *arg)
{
	char name[64];
	size_t n = strcspn(arg, "=");

	if (arg[0] != '-' || n >= sizeof(name))
		return usage_error("bad option or missing value", NULL);
	memcpy(name, arg, n);
	name[n] = '\0';
	return usage_error("bad option or missing value: ", name);
}

/*
 * Parses argv (argv[0] is the command) with opts into val[OPT_*]. Returns
 * -1 to go on, or an exit status (help shown, or a usage error).
 */
static int parse(int argc, char **argv, const struct option *opts, char **val)
{
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			fputs(usage_text, stdout);
			return AGENT_EXIT_OK;
		}
		if (c == '?' || c == ':')
			return bad_option(argv[optind - 1]);
		val[c] = optarg;
	}
	/* Not echoed: a misplaced argument may well be the token. */
	if (optind < argc)
		return usage_error("unexpected argument after the options", NULL);
	return -1;
}

/* The token leaves the command line (ps, /proc/PID/cmdline) as soon as it is read. */
static char *take_token(char *arg)
{
	char *copy = strdup(arg);
	explicit_bzero(arg, strlen(arg));
	return copy;
}

static int cmd_enroll(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, OPT_SERVER},
	    {"token", required_argument, NULL, OPT_TOKEN},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	char *val[OPT_HELP + 1] = {0};
	int rc = parse(argc, argv, opts, val);

	if (rc >= 0)
		return rc;
	if (val[OPT_SERVER] == NULL || val[OPT_TOKEN] == NULL)
		return usage_error("enroll needs --server and --token", NULL);
	char *token = take_token(val[OPT_TOKEN]);
	if (token == NULL) {
		fputs("odysseus-agent: out of memory\n", stderr);
		return AGENT_EXIT_ERROR;
	}
	struct enroll_opts o = {.server = val[OPT_SERVER],
				.token = token,
				.name = val[OPT_NAME],
				.state_dir = val[OPT_STATE_DIR]};
	rc = enroll_main(&o);
	explicit_bzero(token, strlen(token));
	free(token);
	return rc;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
	    {"docker-socket", required_argument, NULL, OPT_DOCKER_SOCKET},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	char *val[OPT_HELP + 1] = {0};
	int rc = parse(argc, argv, opts, val);

	if (rc >= 0)
		return rc;
	struct run_opts o = {.state_dir = val[OPT_STATE_DIR],
			     .docker_socket = val[OPT_DOCKER_SOCKET]};
	return run_main(&o);
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2)
		return usage_error("a command is needed", NULL);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return AGENT_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		puts("odysseus-agent " ODYSSEUS_VERSION);
		return AGENT_EXIT_OK;
	}
	if (strcmp(argv[1], "enroll") != 0 && strcmp(argv[1], "run") != 0)
		return usage_error("unknown command: ",
				   strncmp(argv[1], "odx-", 4) == 0 ? "(not shown)" : argv[1]);
	/* A server may close a TLS connection under our feet: an error, not a death. */
	signal(SIGPIPE, SIG_IGN);
	if (client_global_init() < 0) {
		fputs("odysseus-agent: cannot initialise libcurl\n", stderr);
		return AGENT_EXIT_ERROR;
	}
	if (strcmp(argv[1], "enroll") == 0)
		rc = cmd_enroll(argc - 1, argv + 1);
	else
		rc = cmd_run(argc - 1, argv + 1);
	client_global_done();
	return rc;
}
