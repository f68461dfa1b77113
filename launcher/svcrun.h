/* SPDX-License-Identifier: MIT */
/* svcrun, the container launcher (docs/svcrun.md).  Private to launcher/svcrun*.c:
 * svcrun.c parses the command line, svcrun_shim.c runs the shim (logs, state
 * file, sync line), svcrun_setup.c the container's init (namespaces, mounts,
 * user, capabilities, the command), svcrun_cgroup.c the cgroups.
 * Functions return 0 or -errno and fill a struct sr_err; only the shim's
 * report (sync line, state file, one line on stderr) tells the outcome. */
#ifndef SVCRUN_H
#define SVCRUN_H
#include <stdbool.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* svcrun's own exit status when the command did not run. */
#define SR_EXIT_FAIL	 125 /* svcrun failed */
#define SR_EXIT_NOEXEC	 126 /* the command could not be executed */
#define SR_EXIT_NOTFOUND 127 /* the command was not found */

/* The first failure: the step that failed ("pivot_root") and what happened. */
struct sr_err {
	char step[16];
	char msg[496];
	int code; /* svcrun's exit status for it (SR_EXIT_*) */
};

/* Record a failure of STEP: the formatted detail, then ": strerror(err)" when
 * err (a positive errno) is not 0.  Returns -err, or -EINVAL when err is 0. */
int sr_fail(struct sr_err *e, const char *step, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct sr_bind {
	const char *src; /* host path */
	const char *dst; /* absolute path in the container */
	bool ro;
};

struct sr_opts {
	const char *rootfs, *scratch, *netns, *hostname, *cwd, *user, *cgroup;
	const char *log, *state;
	char **env; /* -e K=V, in order */
	size_t n_env;
	struct sr_bind *binds;
	size_t n_binds;
	char **argv;		   /* the command, NULL-terminated */
	int64_t memory, cpu, pids; /* limits; -1 when unset */
	int64_t log_max;	   /* 0: never rotate */
	uint64_t caps;		   /* capability mask kept */
	int sync_fd;		   /* -1 when unset */
	bool detach;
	char *self_start, *self_end; /* svcrun's own argv strings (renamed in the init) */
};

/* svcrun.c */
/* Parse `svcrun run ...` (argv[0] is "run"); 0 or -EINVAL with e set. */
int sr_parse(int argc, char **argv, struct sr_opts *o, struct sr_err *e);
void sr_opts_free(struct sr_opts *o);

/* svcrun_cgroup.c */
enum sr_cg_mode { SR_CG_NONE, SR_CG_V2, SR_CG_V1 };
#define SR_CG_MAX 3
struct sr_cgroup {
	enum sr_cg_mode mode;
	int v2_fd;	       /* the v2 leaf directory, for CLONE_INTO_CGROUP; -1 */
	char *dirs[SR_CG_MAX]; /* leaf directories made, one per hierarchy */
	size_t n;
};
/* Make the container's cgroup(s) with their limits (nothing without --cgroup). */
int sr_cgroup_create(const struct sr_opts *o, struct sr_cgroup *cg, struct sr_err *e);
/* v1: move PID into every leaf (v2 uses CLONE_INTO_CGROUP instead). */
int sr_cgroup_place(const struct sr_cgroup *cg, pid_t pid, struct sr_err *e);
/* Remove the leaf directories (the processes are gone) and free cg. */
void sr_cgroup_remove(struct sr_cgroup *cg);

/* svcrun_setup.c: the init, pid 1 of the container. */
struct sr_init_fds {
	int sock;	       /* SOCK_SEQPACKET to the shim: struct sr_msg out; in, the
				* overlay's fd (--scratch), then a go byte (v1 cgroups) */
	int netns;	       /* --netns to join, or -1 */
	int devnull;	       /* the command's stdin */
	int out;	       /* the command's stdout and stderr, or -1 to keep svcrun's */
	bool wait_go;	       /* the shim moves us into v1 cgroups: wait before the command */
	bool new_net;	       /* a new network namespace: bring lo up */
	const cpu_set_t *cpus; /* the CPUs the command may use (the shim's), or NULL */
};
enum sr_msg_type { SR_MSG_OK = 1, SR_MSG_ERROR, SR_MSG_EXIT };
/* Init to shim, one datagram each: OK once the command runs, ERROR if it
 * could not be started, EXIT (raw wait status) when it has exited. */
struct sr_msg {
	int type;
	int status;
	struct sr_err err;
};
_Noreturn void sr_init_main(const struct sr_opts *o, const struct sr_init_fds *fds);
/* The overlay of --scratch on --rootfs as a detached mount (made by the
 * shim while the init starts); its fd, or -1 with e set. */
int sr_overlay_make(const struct sr_opts *o, struct sr_err *e);
/* Remove the workdir that sr_overlay_make set aside (DIR/work.old). */
void sr_overlay_tidy(const struct sr_opts *o);
/* Pass FD over the init's socket (SCM_RIGHTS); 0 or -errno. */
int sr_send_fd(int sock, int fd);
/* The signals the shim and the init forward: TERM INT HUP QUIT USR1 USR2. */
void sr_fwd_sigset(sigset_t *set);

/* The capability mask of a comma-separated list of names ("CHOWN" or
 * "CAP_CHOWN", any case; "ALL"; "" for none).  0 or -EINVAL with e set. */
int sr_caps_parse(const char *list, uint64_t *mask, struct sr_err *e);
#define SR_CAPS_DOCKER 0x00000000a80425fbULL

/* svcrun_shim.c */
/* Everything after parsing: returns svcrun's exit status. */
int sr_shim_run(struct sr_opts *o);
/* Close every descriptor above 2 but A and B (-1: none). */
void sr_close_except(int a, int b);
/* Report a failure that happened before the shim started (bad arguments). */
int sr_report_early(struct sr_opts *o, const struct sr_err *e);

#endif
