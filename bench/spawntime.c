// SPDX-License-Identifier: MIT
/* spawntime N OUT -- CMD [ARG...]: run CMD N times, one after the other,
 * and append each run's wall time in microseconds to OUT, one per line.
 * "{}" at the end of an argument becomes the run's number (unique
 * container names).
 * posix_spawn (vfork underneath) keeps the harness's own cost to a small
 * fraction of a millisecond, where a shell's fork and exec cost about one:
 * a constant both tools pay, which would shrink every ratio. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;
	char num[32], **args, **owned;
	FILE *out;
	long n;

	if (argc < 5 || strcmp(argv[3], "--") || (n = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: spawntime N OUT -- CMD [ARG...]\n");
		return 2;
	}
	if (!(out = fopen(argv[2], "a")) || !(args = calloc((size_t)argc, sizeof(*args))) ||
	    !(owned = calloc((size_t)argc, sizeof(*owned)))) {
		perror("spawntime");
		return 1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	for (long i = 0; i < n; i++) {
		long long t0;
		pid_t pid;
		int st, r;

		snprintf(num, sizeof(num), "%ld-%lld", i, now_us());
		for (int k = 4; k < argc; k++) {
			size_t len = strlen(argv[k]);
			free(owned[k]);
			owned[k] = NULL;
			args[k - 4] = argv[k];
			if (len >= 2 && !strcmp(argv[k] + len - 2, "{}") &&
			    (owned[k] = malloc(len + sizeof(num)))) {
				snprintf(owned[k], len + sizeof(num), "%.*s%s", (int)(len - 2),
					 argv[k], num);
				args[k - 4] = owned[k];
			}
		}
		t0 = now_us();
		if ((r = posix_spawnp(&pid, args[0], &fa, NULL, args, environ))) {
			fprintf(stderr, "spawntime: %s: %s\n", args[0], strerror(r));
			return 1;
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "spawntime: %s failed (status %d)\n", args[0], st);
			return 1;
		}
		fprintf(out, "%lld\n", now_us() - t0);
	}
	fclose(out);
	return 0;
}
