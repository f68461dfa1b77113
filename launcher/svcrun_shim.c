// SPDX-License-Identifier: MIT
// The shim: stays outside the container.  It makes the cgroup and the log
// pipe, clones the init into the new namespaces, reports the start (state
// file, sync line), then copies the command's output into the log file
// (rotated at --log-max), forwards signals to the init, and records the exit.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "svcrun.h"

struct shim {
	struct sr_opts *o;
	struct sr_cgroup cg;
	struct sr_err err;
	pid_t pid;		 /* the init, on the host */
	int pidfd, sock, sfd;	 /* the init's pidfd, the socket to it, the signalfd */
	int devnull, netns, out; /* handed to the init */
	int logr, logfd;	 /* the pipe's read end, the log file */
	int64_t log_size;
	char log1[PATH_MAX]; /* FILE.1 */
	int front;	     /* --detach: pipe to the process svcd started; -1 */
	struct timespec started, finished;
	int status;	/* the command's wait status (or the init's) */
	cpu_set_t cpus; /* the shim's CPUs: the init's and the command's too */
	int ncpus;	/* how many; 0 when unknown */
	bool alive;	/* the init is cloned and not reaped yet */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- reporting: state file, sync line, stderr ---------------------------------- */

/* Field 22 of /proc/self/stat: with shim_pid, tells this shim from a later
 * process that reuses its pid. */
static unsigned long long self_start(void)
{
	char buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), f;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces; field 3 follows ") " */
	for (f = 2; p && f < 22; f++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

static int fmt_time(char *buf, size_t n, const struct timespec *t)
{
	return snprintf(buf, n, "%lld.%06ld", (long long)t->tv_sec, t->tv_nsec / 1000);
}

/* Newlines would end the value: the error text goes on one line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

static size_t state_body(const struct shim *s, const char *state, char *buf, size_t n)
{
	char t[64];
	size_t len;

	len =
	    (size_t)snprintf(buf, n, "shim_pid=%d\nshim_start=%llu\n", (int)getpid(), self_start());
	if (s->pid > 0)
		len += (size_t)snprintf(buf + len, n - len, "pid=%d\n", (int)s->pid);
	fmt_time(t, sizeof(t), &s->started);
	len += (size_t)snprintf(buf + len, n - len, "state=%s\nstarted=%s\n", state, t);
	if (!strcmp(state, "running"))
		return len;
	fmt_time(t, sizeof(t), &s->finished);
	len += (size_t)snprintf(buf + len, n - len, "finished=%s\n", t);
	if (!strcmp(state, "error"))
		return len + (size_t)snprintf(buf + len, n - len, "error=%s: %s\n", s->err.step,
					      s->err.msg);
	if (WIFSIGNALED(s->status))
		return len + (size_t)snprintf(buf + len, n - len, "exit_code=%d\nsignal=%d\n",
					      128 + WTERMSIG(s->status), WTERMSIG(s->status));
	return len + (size_t)snprintf(buf + len, n - len, "exit_code=%d\n", WEXITSTATUS(s->status));
}

/* Temp file in the same directory, fsync, rename: a reader sees the old
 * state or the new one, never half of one. */
static int state_write(const struct shim *s, const char *state)
{
	char buf[2048], tmp[PATH_MAX];
	size_t len;
	int fd, err = 0;

	if (!s->o->state)
		return 0;
	len = state_body(s, state, buf, sizeof(buf));
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->o->state);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	errno = EIO; /* a short write sets none */
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err && rename(tmp, s->o->state) < 0)
		err = errno;
	if (err)
		unlink(tmp);
	return -err;
}

/* "ok PID" or "error STEP: MSG", one line, then the fd is closed. */
static void sync_line(struct sr_opts *o, const struct sr_err *e, pid_t pid)
{
	char buf[640];
	int n;

	if (o->sync_fd < 0)
		return;
	if (e)
		n = snprintf(buf, sizeof(buf), "error %s: %s\n", e->step, e->msg);
	else
		n = snprintf(buf, sizeof(buf), "ok %d\n", (int)pid);
	if (n >= (int)sizeof(buf)) {
		n = sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	while (write(o->sync_fd, buf, (size_t)n) < 0 && errno == EINTR)
		;
	close(o->sync_fd);
	o->sync_fd = -1;
}

/* --detach: the process that svcd (or a shell) waits for exits now, with
 * svcrun's status for the start. */
static void release_front(struct shim *s, int code)
{
	unsigned char c = (unsigned char)code;

	if (s->front < 0)
		return;
	while (write(s->front, &c, 1) < 0 && errno == EINTR)
		;
	close_fd(&s->front);
}

/* Nothing runs: say why everywhere it is looked for, once. */
static int report_error(struct shim *s)
{
	one_line(s->err.msg);
	clock_gettime(CLOCK_REALTIME, &s->finished);
	if (!s->started.tv_sec)
		s->started = s->finished;
	fprintf(stderr, "svcrun: %s: %s\n", s->err.step, s->err.msg);
	state_write(s, "error");
	sync_line(s->o, &s->err, 0);
	release_front(s, s->err.code ? s->err.code : SR_EXIT_FAIL);
	return s->err.code ? s->err.code : SR_EXIT_FAIL;
}

int sr_report_early(struct sr_opts *o, const struct sr_err *e)
{
	struct shim s = {.o = o, .err = *e, .front = -1};

	if (o->sync_fd >= 0 && fcntl(o->sync_fd, F_GETFD) < 0)
		o->sync_fd = -1;
	return report_error(&s);
}

/* The command runs: state file first, since svcd reads it after the sync
 * line. */
static int report_ok(struct shim *s)
{
	int rc = state_write(s, "running");

	if (rc < 0) {
		sr_fail(&s->err, "state", -rc, "%s", s->o->state);
		return -1;
	}
	sync_line(s->o, NULL, s->pid);
	release_front(s, 0);
	if (s->o->detach) {
		dup2(s->devnull, 0);
		dup2(s->devnull, 1);
		dup2(s->devnull, 2);
	}
	return 0;
}

/* ---- start -------------------------------------------------------------------- */

void sr_close_except(int a, int b)
{
	unsigned int from = 3;
	int keep[2] = {a < b ? a : b, a < b ? b : a};

	for (int i = 0; i < 2; i++) {
		if (keep[i] < (int)from)
			continue;
		if (keep[i] > (int)from)
			syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
}

/* --detach: fork; the parent waits for the start's outcome and exits with
 * it, the child goes on as the shim in its own session.  Descriptors svcd
 * may have leaked to us (all but the sync fd) are closed first: the shim
 * lives long, and must not hold them. */
static int detach(struct shim *s)
{
	int p[2], sfd = s->o->sync_fd;
	unsigned char code;
	pid_t pid;

	sr_close_except(sfd, s->devnull);
	if (pipe2(p, O_CLOEXEC) < 0)
		return sr_fail(&s->err, "detach", errno, "pipe");
	pid = fork();
	if (pid < 0)
		return sr_fail(&s->err, "detach", errno, "fork");
	if (pid > 0) {
		ssize_t n;

		close(p[1]);
		if (sfd >= 0)
			close(sfd);
		do
			n = read(p[0], &code, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? code : SR_EXIT_FAIL);
	}
	close(p[0]);
	s->front = p[1];
	setsid();
	return 0;
}

/* Default dispositions (svcd may ignore SIGCHLD or SIGPIPE, and an ignored
 * signal stays ignored across exec), except SIGPIPE for the shim itself;
 * the forwarded signals arrive through a signalfd. */
static int signals(struct shim *s)
{
	sigset_t set;

	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, sig == SIGPIPE ? SIG_IGN : SIG_DFL);
	sr_fwd_sigset(&set);
	if (sigprocmask(SIG_SETMASK, &set, NULL) < 0)
		return sr_fail(&s->err, "signals", errno, NULL);
	s->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return s->sfd < 0 ? sr_fail(&s->err, "signals", errno, "signalfd") : 0;
}

static int open_log(struct shim *s)
{
	const char *log = s->o->log;
	struct stat st;
	int p[2];

	if (!log) {
		s->out = s->o->detach ? s->devnull : -1;
		return 0;
	}
	snprintf(s->log1, sizeof(s->log1), "%s.1", log);
	s->logfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (s->logfd < 0 || fstat(s->logfd, &st) < 0)
		return sr_fail(&s->err, "log", errno, "%s", log);
	s->log_size = st.st_size;
	if (pipe2(p, O_CLOEXEC) < 0)
		return sr_fail(&s->err, "log", errno, "pipe");
	s->logr = p[0];
	s->out = p[1];
	return 0;
}

static int open_fds(struct shim *s)
{
	const char *ns = s->o->netns;
	int sv[2];

	if (open_log(s))
		return -1;
	if (ns && strcmp(ns, "host")) {
		s->netns = open(ns, O_RDONLY | O_CLOEXEC);
		if (s->netns < 0)
			return sr_fail(&s->err, "netns", errno, "%s", ns);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return sr_fail(&s->err, "clone", errno, "socketpair");
	s->sock = sv[0];
	return sv[1];
}

/* The init and the shim work in parallel until the command starts: a new
 * task often lands on its parent's CPU, and would then wait for it, so the
 * init is sent to another one.  It takes all of them back before the
 * command (which inherits its CPUs). */
static void away_from(struct shim *s, int here)
{
	cpu_set_t other = s->cpus;

	if (s->ncpus < 2 || here < 0 || !CPU_ISSET(here, &other))
		return;
	CPU_CLR(here, &other);
	sched_setaffinity(s->pid, sizeof(other), &other);
}

/* The init: clone3 into new pid, mount, uts and ipc namespaces, and
 * straight into a v2 cgroup.  No CLONE_NEWNET: the init makes that one
 * itself, while the shim mounts the overlay.  Returns in the shim only. */
static int clone_init(struct shim *s, int child_sock)
{
	const struct sr_opts *o = s->o;
	bool new_net = !o->netns;
	struct clone_args ca = {
	    .flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD,
	    .pidfd = (uint64_t)(uintptr_t)&s->pidfd,
	    .exit_signal = SIGCHLD,
	};
	struct sr_init_fds fds = {.sock = child_sock,
				  .netns = s->netns,
				  .devnull = s->devnull,
				  .out = s->out,
				  .wait_go = s->cg.mode == SR_CG_V1,
				  .new_net = new_net};
	long pid;

	int here = sched_getcpu();

	if (s->cg.mode == SR_CG_V2) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)s->cg.v2_fd;
	}
	if (sched_getaffinity(0, sizeof(s->cpus), &s->cpus) == 0) {
		s->ncpus = CPU_COUNT(&s->cpus);
		fds.cpus = &s->cpus;
	}
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0)
		return sr_fail(&s->err, "clone", errno, NULL);
	if (pid == 0) /* the shim's descriptors are closed in the init's first step */
		sr_init_main(o, &fds);
	s->pid = (pid_t)pid;
	s->alive = true;
	away_from(s, here);
	return 0;
}

/* Stop the init (if still there) and reap it. */
static int reap_init(struct shim *s)
{
	int st = 0;

	if (!s->alive)
		return 0;
	syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
	waitpid(s->pid, &st, 0);
	s->alive = false;
	return st;
}

/* The init failed or died before the command ran: reap it, and say why. */
static int start_failed(struct shim *s, const struct sr_msg *m, ssize_t n)
{
	int st = reap_init(s);

	if (n == (ssize_t)sizeof(*m) && m->type == SR_MSG_ERROR) {
		s->err = m->err;
		return -1;
	}
	if (WIFSIGNALED(st))
		return sr_fail(&s->err, "init", 0, "killed by signal %d", WTERMSIG(st));
	return sr_fail(&s->err, "init", 0, "exited with status %d", WEXITSTATUS(st));
}

/* The overlay, made while the init sets up its namespaces, passed to it. */
static int send_overlay(struct shim *s)
{
	int fd, rc;

	if (!s->o->scratch)
		return 0;
	fd = sr_overlay_make(s->o, &s->err);
	if (fd < 0)
		return -1;
	rc = sr_send_fd(s->sock, fd);
	close(fd);
	return rc ? sr_fail(&s->err, "overlay", -rc, "passing it to the init") : 0;
}

/* The init's word, OK or ERROR.  A signal to the shim meanwhile (svcd
 * stopping a container that is still starting) ends the start. */
static int wait_start(struct shim *s)
{
	struct pollfd p[2] = {{.fd = s->sock, .events = POLLIN}, {.fd = s->sfd, .events = POLLIN}};
	struct signalfd_siginfo si;
	struct sr_msg m;
	ssize_t n;

	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		if (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			reap_init(s);
			return sr_fail(&s->err, "init", 0,
				       "stopped by signal %u before the command ran", si.ssi_signo);
		}
	}
	n = recv(s->sock, &m, sizeof(m), MSG_DONTWAIT);
	if (n == (ssize_t)sizeof(m) && m.type == SR_MSG_OK)
		return 0;
	return start_failed(s, &m, n);
}

/* The init may fail (an unknown user, say) before the shim has handed it
 * the overlay or placed it in its cgroups: its message, already queued on
 * the socket, says why, better than the EPIPE the shim then meets. */
static bool init_failed_first(struct shim *s)
{
	struct sr_msg m;
	ssize_t n = recv(s->sock, &m, sizeof(m), MSG_DONTWAIT);

	if (n != (ssize_t)sizeof(m) || m.type != SR_MSG_ERROR)
		return false;
	s->err = m.err;
	return true;
}

/* While the init sets up: the overlay for it, then (v1) move it into the
 * cgroups before it may start the command. */
static int handshake(struct shim *s)
{
	if (send_overlay(s) < 0) {
		init_failed_first(s);
		reap_init(s);
		return -1;
	}
	if (s->cg.mode == SR_CG_V1 && (sr_cgroup_place(&s->cg, s->pid, &s->err) < 0 ||
				       send(s->sock, "g", 1, MSG_NOSIGNAL) != 1)) {
		int err = errno;
		if (!init_failed_first(s) && !s->err.step[0])
			sr_fail(&s->err, "cgroup", err, "starting the init");
		reap_init(s);
		return -1;
	}
	if (s->o->scratch) /* while the init goes on */
		sr_overlay_tidy(s->o);
	return wait_start(s);
}

static int start(struct shim *s)
{
	int child_sock, rc;

	/* with 0, 1 or 2 closed, /dev/null fills them: nothing of ours may
	 * land there and be taken for stdio */
	s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	while (s->devnull >= 0 && s->devnull <= 2) {
		fcntl(s->devnull, F_SETFD, 0);
		s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	}
	if (s->devnull < 0)
		return sr_fail(&s->err, "stdio", errno, "/dev/null");
	if ((s->o->detach && detach(s)) || signals(s))
		return -1;
	child_sock = open_fds(s);
	if (child_sock < 0)
		return -1;
	if (sr_cgroup_create(s->o, &s->cg, &s->err)) {
		close(child_sock);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &s->started);
	rc = clone_init(s, child_sock);
	close(child_sock);
	if (s->out >= 0 && s->out != s->devnull)
		close(s->out);
	s->out = -1;
	close_fd(&s->netns);
	return rc ? rc : handshake(s);
}

/* ---- running: logs and signals --------------------------------------------------- */

/* FILE reaches --log-max: it becomes FILE.1 and a new FILE begins. */
static void log_rotate(struct shim *s)
{
	int fd;

	if (rename(s->o->log, s->log1) < 0)
		return;
	fd = open(s->o->log, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	close(s->logfd);
	s->logfd = fd;
	s->log_size = 0;
}

/* Writes are split at the limit, so FILE never exceeds --log-max. */
static void log_write(struct shim *s, const char *buf, size_t n)
{
	int64_t max = s->o->log_max;

	while (n > 0) {
		size_t room = n;
		ssize_t w;

		if (max > 0 && s->log_size >= max)
			log_rotate(s);
		if (max > 0 && s->log_size < max && (int64_t)room > max - s->log_size)
			room = (size_t)(max - s->log_size);
		w = write(s->logfd, buf, room);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) /* disk full: drop, never block the container */
			return;
		s->log_size += w;
		buf += w;
		n -= (size_t)w;
	}
	if (max > 0 && s->log_size >= max)
		log_rotate(s);
}

static void log_drain(struct shim *s)
{
	char buf[65536];
	ssize_t n = read(s->logr, buf, sizeof(buf));

	if (n > 0)
		log_write(s, buf, (size_t)n);
	else if (n == 0 || (errno != EINTR && errno != EAGAIN))
		close_fd(&s->logr);
}

static void forward_signals(struct shim *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		syscall(SYS_pidfd_send_signal, s->pidfd, (int)si.ssi_signo, NULL, 0);
}

/* Until the init has exited and the log pipe is drained (the kernel kills
 * what is left in the container when its pid 1 exits, so EOF follows). */
static void run(struct shim *s)
{
	bool init_done = false;

	while (!init_done || s->logr >= 0) {
		struct pollfd p[3];
		nfds_t n = 0;

		if (!init_done) {
			p[n++] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
			p[n++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
		}
		if (s->logr >= 0)
			p[n++] = (struct pollfd){.fd = s->logr, .events = POLLIN};
		if (poll(p, n, -1) < 0)
			continue;
		for (nfds_t i = 0; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (p[i].fd == s->sfd)
				forward_signals(s);
			else if (p[i].fd == s->pidfd && waitpid(s->pid, &s->status, 0) == s->pid)
				init_done = !(s->alive = false);
			else if (p[i].fd == s->logr)
				log_drain(s);
		}
	}
}

/* The command's status, as the init sent it before leaving; the init's own
 * when it died first (killed). */
static int finish(struct shim *s)
{
	struct sr_msg m;
	int rc;

	if (recv(s->sock, &m, sizeof(m), MSG_DONTWAIT) == (ssize_t)sizeof(m) &&
	    m.type == SR_MSG_EXIT)
		s->status = m.status;
	clock_gettime(CLOCK_REALTIME, &s->finished);
	sr_cgroup_remove(&s->cg);
	rc = state_write(s, "exited");
	if (rc < 0 && !s->o->detach)
		fprintf(stderr, "svcrun: state: %s: %s\n", s->o->state, strerror(-rc));
	return WIFSIGNALED(s->status) ? 128 + WTERMSIG(s->status) : WEXITSTATUS(s->status);
}

static void cleanup(struct shim *s)
{
	if (s->out == s->devnull) /* not a descriptor of its own */
		s->out = -1;
	close_fd(&s->pidfd);
	close_fd(&s->sock);
	close_fd(&s->sfd);
	close_fd(&s->devnull);
	close_fd(&s->netns);
	close_fd(&s->logr);
	close_fd(&s->logfd);
	close_fd(&s->front);
	close_fd(&s->out);
}

int sr_shim_run(struct sr_opts *o)
{
	struct shim s = {.o = o,
			 .pidfd = -1,
			 .sock = -1,
			 .sfd = -1,
			 .devnull = -1,
			 .netns = -1,
			 .out = -1,
			 .logr = -1,
			 .logfd = -1,
			 .front = -1};
	int rc;

	if (start(&s) < 0 || report_ok(&s) < 0) {
		reap_init(&s); /* a command whose state cannot be recorded is stopped */
		sr_cgroup_remove(&s.cg);
		rc = report_error(&s);
		cleanup(&s);
		return rc;
	}
	run(&s);
	rc = finish(&s);
	cleanup(&s);
	return rc;
}
