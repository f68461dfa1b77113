// SPDX-License-Identifier: MIT
/* svcctl: a kubectl-like front end for svcd.  main() reads the global
 * options and hands the rest to one subcommand from the table below. */
#include "svcctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int help_main(struct ctl *ctl, int argc, char **argv);

static const struct {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *help;
} commands[] = {
    {"apply", ctl_apply_main, "Create or update objects from manifest files"},
    {"delete", ctl_delete_main, "Delete objects by file or by kind and name"},
    {"get", ctl_get_main, "Show objects of one kind (table, json, yaml), or watch them"},
    {"list", ctl_list_main, "Show every service with its ports and endpoints"},
    {"status", ctl_status_main, "Show whether the data plane is in sync"},
    {"describe", ctl_describe_main, "Show a pod's status, containers and events"},
    {"logs", ctl_logs_main, "Print (or follow) a container's log"},
    {"image", ctl_image_main, "Import, list and remove container images"},
    {"help", help_main, "Show this help, or a command's usage"},
};

static const char synopsis[] = "Usage: svcctl [--socket PATH] [--timeout SECONDS] COMMAND [ARGS]\n";

static void usage(FILE *f)
{
	fprintf(f, "%s\nCommands:\n", synopsis);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fputs("\nThe socket is --socket, else $SVCD_SOCKET, else " CTL_DEFAULT_SOCKET ".\n"
	      "Run 'svcctl COMMAND --help' for a command's options.\n",
	      f);
}

static int find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i].name))
			return (int)i;
	return -1;
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "svcctl: %s \"%s\"\n%sRun 'svcctl --help' for the commands.\n", what, arg,
		synopsis);
	return CTL_USAGE;
}

static int help_main(struct ctl *ctl, int argc, char **argv)
{
	char help[] = "--help";
	char *args[] = {argv[argc > 1 ? 1 : 0], help, NULL};
	int i;

	if (argc < 2) {
		usage(stdout);
		return CTL_OK;
	}
	i = find_command(argv[1]);
	if (i < 0 || commands[i].fn == help_main)
		return usage_error("unknown command", argv[1]);
	return commands[i].fn(ctl, 2, args);
}

/* The value of "--name VALUE" or "--name=VALUE" at argv[*i], or NULL. */
static const char *global_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return NULL;
	return *i + 1 < argc ? argv[++*i] : "";
}

/* Options before the command; returns -1 to go on, else the exit status. */
static int parse_globals(struct ctl *ctl, int argc, char **argv, int *i)
{
	for (*i = 1; *i < argc && argv[*i][0] == '-'; ++*i) {
		const char *a = argv[*i], *v;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return CTL_OK;
		} else if ((v = global_value(argc, argv, i, "--socket"))) {
			if (!*v)
				return usage_error("--socket needs a path, got", v);
			ctl->socket = v;
		} else if ((v = global_value(argc, argv, i, "--timeout"))) {
			if (ctl_parse_timeout(v, &ctl->timeout_ms))
				return usage_error("invalid --timeout", v);
			ctl->timeout_set = true;
		} else {
			return usage_error("unknown global option", a);
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *env = getenv("SVCD_SOCKET");
	struct ctl ctl = {.socket = env && *env ? env : CTL_DEFAULT_SOCKET,
			  .timeout_ms = CTL_DEFAULT_TIMEOUT_MS};
	int i, cmd, ret = parse_globals(&ctl, argc, argv, &i);

	if (ret >= 0)
		return ret;
	if (i >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	cmd = find_command(argv[i]);
	if (cmd < 0)
		return usage_error("unknown command", argv[i]);
	opterr = 0; /* ctl_option() words getopt's complaints itself */
	ret = commands[cmd].fn(&ctl, argc - i, argv + i);
	if (fflush(stdout) || ferror(stdout))
		return ctl_fail("writing output: %s", strerror(errno ? errno : EIO));
	return ret;
}
