// SPDX-License-Identifier: MIT
/*
 * load: the client of the data-plane tests, the counterpart of tests/tools/echo.c.
 *
 *   load [-u] [-s] [-n COUNT] [-c CONCURRENCY] [-t SECONDS] [-w TIMEOUT_MS]
 *        [-b BYTES] [-r ROUNDS] [-i INTERVAL_MS] [-P FIRST_PORT] ADDR PORT
 *
 * Opens COUNT TCP connections to ADDR:PORT (-u: sends COUNT UDP datagrams,
 * each from a fresh socket), CONCURRENCY at a time, reads the first line of
 * each answer (the backend's NAME) and prints, on stdout:
 *
 *   NAME COUNT            one line per backend, sorted by name
 *   ok N failed M
 *   rate R/s              with -t: successful connections (datagrams) per second
 *
 * Every failure goes to stderr with a timestamp (the first 100 of them).
 * Exit status: 0 when M is 0, 1 otherwise (or on a set-up error), 2 usage.
 *
 * All sockets are non-blocking under one epoll loop, so a refused connection
 * (TCP RST, ICMP unreachable, also for UDP) fails at once, and anything else
 * that makes no progress for TIMEOUT_MS fails then.  See usage() for the
 * modes: -t (for a time instead of a count), -b (a transfer echoed back) and
 * -s (steady: connections that exchange round trips for the whole run, to
 * show that a daemon restart breaks none; SIGUSR1 ends such a run when the
 * test has seen what it waited for), and -P (a distinct source port per
 * attempt).
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAME   255
#define MAX_REPORT 100 /* failures printed; later ones are only counted */
#define XFER_CHUNK 65536
#define NSEC	   1000000000ull
#define MSEC	   1000000ull

enum state {
	S_IDLE,	   /* no socket; may start at not_before */
	S_CONNECT, /* TCP connect in progress */
	S_NAME,	   /* waiting for "NAME\n" */
	S_XFER,	   /* -b: sending BYTES and reading them back */
	S_PING,	   /* -s: a round trip in flight */
	S_PAUSE,   /* -s: between two round trips */
	S_CLOSING, /* our FIN sent, waiting for the server's */
	S_UDP,	   /* datagram sent, waiting for the reply */
};

struct slot {
	int fd;
	enum state st;
	uint32_t gen;	   /* bumped per socket; tags epoll events */
	uint32_t events;   /* epoll interest registered */
	uint64_t deadline; /* CLOCK_MONOTONIC ns */
	uint64_t not_before;
	unsigned long id; /* attempt number, for messages */
	size_t line_len;
	char line[MAX_NAME + 2];
	size_t sent, recvd; /* -b bytes, or the current ping's */
	unsigned long rounds;
	size_t ping_len;
	char ping[48];
};

struct tally {
	char *name;
	unsigned long count;
};

static struct {
	bool udp, steady;
	unsigned long count, conc, bytes, rounds, first_port;
	uint64_t timeout, interval, duration; /* ns; duration 0 = use count */
	const char *addr, *port;
} opt = {.count = 1, .conc = 1, .rounds = 10, .timeout = 1000 * MSEC, .interval = 10 * MSEC};

static struct sockaddr_storage dst;
static socklen_t dst_len;
static int epfd;
static struct slot *slots;
static uint64_t t_start, t_end, now;
static bool stopping;		   /* -t: time is up, start nothing new */
static volatile sig_atomic_t usr1; /* SIGUSR1: as if -t's time were up */
static sigset_t wait_mask;	   /* the mask in epoll_pwait: SIGUSR1 let through */
static unsigned long started, n_ok, n_failed, n_reported;
static uint64_t first_fail, last_fail;
static struct tally *tallies;
static size_t n_tallies;

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static void slot_close(struct slot *s)
{
	close(s->fd); /* also leaves the epoll set */
	s->fd = -1;
	s->st = S_IDLE;
	/* steady mode paces every slot, also after a failure, so that an outage
	 * does not turn into a busy loop of refused connections */
	s->not_before = opt.steady ? now + opt.interval : now;
}

/* The wall-clock time and the offset from the start of mono() time T. */
static void fmt_time(char *buf, size_t size, uint64_t t)
{
	struct timespec ts;
	struct tm tm;
	char hms[16];
	uint64_t ago = mono() - t;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec -= (time_t)(ago / NSEC);
	ts.tv_nsec -= (long)(ago % NSEC);
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += (long)NSEC;
	}
	localtime_r(&ts.tv_sec, &tm);
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%03ld +%.3fs", hms, ts.tv_nsec / 1000000,
		 (double)(t - t_start) / NSEC);
}

/* Report a failure of S: WHAT, then strerror(ERR) unless ERR is 0. */
__attribute__((format(printf, 3, 4))) static void slot_fail(struct slot *s, int err,
							    const char *fmt, ...)
{
	char what[256], when[64];
	uint64_t t = mono();
	va_list ap;

	if (!n_failed++)
		first_fail = t;
	last_fail = t;
	if (n_reported++ < MAX_REPORT) {
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		fmt_time(when, sizeof(when), t);
		fprintf(stderr, "load: %s %s %s:%s #%lu: %s%s%s\n", when, opt.udp ? "udp" : "tcp",
			opt.addr, opt.port, s->id, what, err ? ": " : "", err ? strerror(err) : "");
	} else if (n_reported == MAX_REPORT + 1) {
		fprintf(stderr, "load: more failures, not shown\n");
	}
	slot_close(s);
}

static void tally(const char *name)
{
	struct tally *t;

	for (size_t i = 0; i < n_tallies; i++) {
		if (strcmp(tallies[i].name, name) == 0) {
			tallies[i].count++;
			return;
		}
	}
	t = realloc(tallies, (n_tallies + 1) * sizeof(*t));
	if (!t || !(t[n_tallies].name = strdup(name))) {
		fprintf(stderr, "load: out of memory\n");
		exit(1);
	}
	t[n_tallies].count = 1;
	tallies = t;
	n_tallies++;
}

static void slot_ok(struct slot *s)
{
	n_ok++;
	tally(s->line);
	slot_close(s);
}

static int slot_want(struct slot *s, uint32_t events)
{
	struct epoll_event ev = {.events = events,
				 .data.u64 = (uint64_t)s->gen << 32 | (uint64_t)(s - slots)};

	if (s->events == events)
		return 0;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		return -errno;
	s->events = events;
	return 0;
}

/* -P: bind S's socket to source port FIRST_PORT + attempt - 1. */
static int slot_bind(struct slot *s)
{
	struct sockaddr_storage src = {.ss_family = dst.ss_family};
	unsigned long port = opt.first_port + s->id - 1;
	int one = 1;

	if (port > 65535)
		return -EADDRNOTAVAIL; /* -P's range is used up */
	if (src.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&src)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&src)->sin_port = htons((uint16_t)port);
	if (setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&src, dst_len) < 0)
		return -errno;
	return 0;
}

/* A new socket for S, registered for EVENTS; -errno on failure. */
static int slot_socket(struct slot *s, int type, uint32_t events)
{
	struct epoll_event ev = {.events = events};
	int err;

	s->fd = socket(dst.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	if (opt.first_port && (err = slot_bind(s)) < 0) {
		close(s->fd);
		s->fd = -1;
		return err;
	}
	s->gen++;
	ev.data.u64 = (uint64_t)s->gen << 32 | (uint64_t)(s - slots);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		err = errno;
		close(s->fd);
		s->fd = -1;
		return -err;
	}
	s->events = events;
	return 0;
}

/* Turn "NAME\r\n"-ish bytes into a printable one-word name, in place. */
static void clean_name(char *name)
{
	size_t n = strlen(name);

	if (n && name[n - 1] == '\r')
		name[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (name[i] <= ' ' || name[i] > '~')
			name[i] = '?';
	}
}

static uint8_t pattern(size_t off)
{
	return (uint8_t)(off % 251); /* a prime: no alignment with chunk sizes */
}

static void udp_start(struct slot *s)
{
	char msg[32];
	int err, len;

	err = slot_socket(s, SOCK_DGRAM, EPOLLIN);
	if (err < 0) {
		s->st = S_IDLE;
		slot_fail(s, -err, "socket");
		return;
	}
	s->st = S_UDP;
	s->deadline = now + opt.timeout;
	/* connected: an ICMP error comes back as an error on this socket */
	if (connect(s->fd, (struct sockaddr *)&dst, dst_len) < 0) {
		slot_fail(s, errno, "connect");
		return;
	}
	len = snprintf(msg, sizeof(msg), "load %lu\n", s->id);
	if (send(s->fd, msg, (size_t)len, 0) < 0)
		slot_fail(s, errno, "send");
}

static void udp_read(struct slot *s)
{
	char buf[2048];
	ssize_t n = recv(s->fd, buf, sizeof(buf) - 1, 0);
	char *nl;

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			slot_fail(s, errno, "no reply");
		return;
	}
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	if (strlen(buf) > MAX_NAME)
		buf[MAX_NAME] = '\0';
	if (!buf[0]) {
		slot_fail(s, 0, "empty reply");
		return;
	}
	strcpy(s->line, buf);
	clean_name(s->line);
	slot_ok(s);
}

static void tcp_start(struct slot *s)
{
	int err = slot_socket(s, SOCK_STREAM, EPOLLOUT);

	if (err < 0) {
		s->st = S_IDLE;
		slot_fail(s, -err, "socket");
		return;
	}
	s->st = S_CONNECT;
	s->deadline = now + opt.timeout;
	s->line_len = 0;
	s->rounds = 0;
	if (connect(s->fd, (struct sockaddr *)&dst, dst_len) == 0) {
		s->st = S_NAME;
		err = slot_want(s, EPOLLIN);
		if (err < 0)
			slot_fail(s, -err, "epoll");
	} else if (errno != EINPROGRESS) {
		slot_fail(s, errno, "connect");
	}
}

static void close_start(struct slot *s)
{
	int err;

	if (shutdown(s->fd, SHUT_WR) < 0) {
		slot_fail(s, errno, "shutdown");
		return;
	}
	s->st = S_CLOSING;
	s->deadline = now + opt.timeout;
	err = slot_want(s, EPOLLIN);
	if (err < 0)
		slot_fail(s, -err, "epoll");
}

static void ping_start(struct slot *s)
{
	ssize_t n;
	int err;

	s->ping_len =
	    (size_t)snprintf(s->ping, sizeof(s->ping), "ping %lu.%lu\n", s->id, s->rounds);
	n = send(s->fd, s->ping, s->ping_len, MSG_NOSIGNAL);
	if (n < 0) {
		slot_fail(s, errno, "send (round trip %lu)", s->rounds + 1);
		return;
	}
	if ((size_t)n != s->ping_len) {
		slot_fail(s, 0, "send (round trip %lu): short write", s->rounds + 1);
		return;
	}
	s->st = S_PING;
	s->recvd = 0;
	s->deadline = now + opt.timeout;
	err = slot_want(s, EPOLLIN);
	if (err < 0)
		slot_fail(s, -err, "epoll");
}

/* After the name: transfer, round trips, or done. */
static void tcp_named(struct slot *s)
{
	int err;

	if (opt.bytes) {
		s->st = S_XFER;
		s->sent = s->recvd = 0;
		s->deadline = now + opt.timeout;
		err = slot_want(s, EPOLLIN | EPOLLOUT);
		if (err < 0)
			slot_fail(s, -err, "epoll");
	} else if (opt.steady) {
		ping_start(s);
	} else {
		slot_ok(s);
	}
}

static void on_connect(struct slot *s, uint32_t events)
{
	socklen_t len = sizeof(int);
	int err = 0, rc;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		slot_fail(s, err, "connect");
		return;
	}
	if (!(events & EPOLLOUT))
		return;
	s->st = S_NAME;
	s->deadline = now + opt.timeout;
	rc = slot_want(s, EPOLLIN);
	if (rc < 0)
		slot_fail(s, -rc, "epoll");
}

static void read_name(struct slot *s)
{
	size_t room = MAX_NAME + 1 - s->line_len;
	ssize_t n = recv(s->fd, s->line + s->line_len, room, 0);
	char *nl;

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			slot_fail(s, errno, "reading the name");
		return;
	}
	if (n == 0) {
		slot_fail(s, 0, "closed by the server before a name");
		return;
	}
	s->line_len += (size_t)n;
	s->line[s->line_len] = '\0';
	nl = memchr(s->line, '\n', s->line_len);
	if (!nl) {
		if (s->line_len > MAX_NAME)
			slot_fail(s, 0, "no newline in the first %d bytes", MAX_NAME + 1);
		return;
	}
	/* echo sends nothing after the name unless asked to */
	if (nl + 1 != s->line + s->line_len && (opt.bytes || opt.steady)) {
		slot_fail(s, 0, "unexpected data after the name");
		return;
	}
	*nl = '\0';
	if (!s->line[0]) {
		slot_fail(s, 0, "empty name");
		return;
	}
	clean_name(s->line);
	tcp_named(s);
}

/* -b: returns 0, or -1 once the slot has failed. */
static int xfer_send(struct slot *s)
{
	uint8_t buf[XFER_CHUNK];

	while (s->sent < opt.bytes) {
		size_t len = opt.bytes - s->sent;
		ssize_t n;

		if (len > sizeof(buf))
			len = sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern(s->sent + i);
		n = send(s->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			slot_fail(s, errno, "send after %zu of %lu bytes", s->sent, opt.bytes);
			return -1;
		}
		s->sent += (size_t)n;
		s->deadline = now + opt.timeout;
	}
	if (shutdown(s->fd, SHUT_WR) < 0) {
		slot_fail(s, errno, "shutdown");
		return -1;
	}
	if (slot_want(s, EPOLLIN) < 0) {
		slot_fail(s, errno, "epoll");
		return -1;
	}
	return 0;
}

static int xfer_recv(struct slot *s)
{
	uint8_t buf[XFER_CHUNK];

	for (;;) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			slot_fail(s, errno, "receive after %zu of %lu bytes", s->recvd, opt.bytes);
			return -1;
		}
		if (n == 0) {
			if (s->recvd == opt.bytes && s->sent == opt.bytes) {
				slot_ok(s);
			} else {
				slot_fail(s, 0, "closed by the server after %zu of %lu bytes",
					  s->recvd, opt.bytes);
			}
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (s->recvd + (size_t)i >= opt.bytes ||
			    buf[i] != pattern(s->recvd + (size_t)i)) {
				slot_fail(s, 0, "echoed data differs at byte %zu",
					  s->recvd + (size_t)i);
				return -1;
			}
		}
		s->recvd += (size_t)n;
		s->deadline = now + opt.timeout;
	}
}

static void on_ping(struct slot *s)
{
	char buf[sizeof(s->ping)];
	ssize_t n = recv(s->fd, buf, s->ping_len - s->recvd, 0);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			slot_fail(s, errno, "round trip %lu", s->rounds + 1);
		return;
	}
	if (n == 0) {
		slot_fail(s, 0, "closed by the server in round trip %lu", s->rounds + 1);
		return;
	}
	if (memcmp(buf, s->ping + s->recvd, (size_t)n) != 0) {
		slot_fail(s, 0, "round trip %lu: wrong echo", s->rounds + 1);
		return;
	}
	s->recvd += (size_t)n;
	if (s->recvd < s->ping_len)
		return;
	s->rounds++;
	if (stopping || s->rounds >= opt.rounds) {
		close_start(s);
		return;
	}
	s->st = S_PAUSE; /* still reading: a reset or close shows up at once */
	s->deadline = now + opt.interval;
}

/* S_PAUSE and S_CLOSING: the server must send nothing more, only its FIN. */
static void on_quiet(struct slot *s)
{
	char buf[64];
	ssize_t n = recv(s->fd, buf, sizeof(buf), 0);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			slot_fail(s, errno, "after %lu round trips", s->rounds);
	} else if (n > 0) {
		slot_fail(s, 0, "unexpected data after %lu round trips", s->rounds);
	} else if (s->st == S_CLOSING) {
		slot_ok(s);
	} else {
		slot_fail(s, 0, "closed by the server after %lu round trips", s->rounds);
	}
}

static void on_event(struct slot *s, uint32_t events)
{
	switch (s->st) {
	case S_IDLE:
		break;
	case S_CONNECT:
		on_connect(s, events);
		break;
	case S_NAME:
		read_name(s);
		break;
	case S_XFER:
		if (xfer_recv(s) == 0 && s->sent < opt.bytes && (events & EPOLLOUT))
			xfer_send(s);
		break;
	case S_PING:
		on_ping(s);
		break;
	case S_PAUSE:
	case S_CLOSING:
		on_quiet(s);
		break;
	case S_UDP:
		udp_read(s);
		break;
	}
}

static void on_timeout(struct slot *s)
{
	unsigned long ms = (unsigned long)(opt.timeout / MSEC);

	switch (s->st) {
	case S_IDLE:
		break;
	case S_CONNECT:
		slot_fail(s, 0, "connect: no answer within %lu ms", ms);
		break;
	case S_NAME:
		slot_fail(s, 0, "no name within %lu ms", ms);
		break;
	case S_XFER:
		slot_fail(s, 0, "transfer stalled for %lu ms (sent %zu, received %zu of %lu bytes)",
			  ms, s->sent, s->recvd, opt.bytes);
		break;
	case S_PING:
		slot_fail(s, 0, "round trip %lu: no echo within %lu ms", s->rounds + 1, ms);
		break;
	case S_PAUSE:
		if (stopping)
			close_start(s);
		else
			ping_start(s);
		break;
	case S_CLOSING:
		slot_fail(s, 0, "no close from the server within %lu ms", ms);
		break;
	case S_UDP:
		slot_fail(s, 0, "no reply within %lu ms", ms);
		break;
	}
}

/* May slot S start a new attempt now? */
static bool may_start(const struct slot *s)
{
	if (opt.duration)
		return !stopping && s->not_before <= now;
	return started < opt.count;
}

/* Start what may start; return the earliest deadline, or UINT64_MAX. */
static uint64_t schedule(unsigned long nslots, unsigned long *active)
{
	uint64_t next = UINT64_MAX;

	*active = 0;
	for (unsigned long i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];

		if (s->st == S_IDLE && may_start(s)) {
			s->id = ++started;
			if (opt.udp)
				udp_start(s);
			else
				tcp_start(s);
		}
		if (s->st == S_PAUSE && stopping)
			close_start(s);
		if (s->st != S_IDLE) {
			(*active)++;
			if (s->deadline < next)
				next = s->deadline;
		} else if (opt.duration && !stopping && s->not_before < next) {
			next = s->not_before;
		}
	}
	if (opt.duration && !stopping && t_start + opt.duration < next)
		next = t_start + opt.duration;
	return next;
}

static int run(unsigned long nslots)
{
	struct epoll_event evs[256];
	unsigned long active;

	for (;;) {
		uint64_t next;
		int timeout, n;

		now = mono();
		stopping = opt.duration && (now >= t_start + opt.duration || usr1);
		next = schedule(nslots, &active);
		if (!active && (stopping || (!opt.duration && started >= opt.count)))
			return 0;
		timeout = -1;
		if (next != UINT64_MAX)
			timeout = next <= now ? 0 : (int)((next - now + MSEC - 1) / MSEC);
		n = epoll_pwait(epfd, evs, 256, timeout, &wait_mask);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "load: epoll_pwait: %s\n", strerror(errno));
			return -1;
		}
		now = mono();
		for (int i = 0; i < n; i++) {
			struct slot *s = &slots[evs[i].data.u64 & 0xffffffff];

			if (s->st != S_IDLE && s->gen == evs[i].data.u64 >> 32)
				on_event(s, evs[i].events);
		}
		for (unsigned long i = 0; i < nslots; i++) {
			if (slots[i].st != S_IDLE && slots[i].deadline <= now)
				on_timeout(&slots[i]);
		}
	}
}

static int cmp_tally(const void *a, const void *b)
{
	return strcmp(((const struct tally *)a)->name, ((const struct tally *)b)->name);
}

static void print_results(void)
{
	qsort(tallies, n_tallies, sizeof(*tallies), cmp_tally);
	for (size_t i = 0; i < n_tallies; i++)
		printf("%s %lu\n", tallies[i].name, tallies[i].count);
	printf("ok %lu failed %lu\n", n_ok, n_failed);
	if (opt.duration) {
		double secs = (double)(t_end - t_start) / NSEC;

		printf("rate %.0f/s\n", secs > 0 ? (double)n_ok / secs : 0.0);
	}
	fflush(stdout);
	if (n_failed) {
		char from[64], to[64];

		fmt_time(from, sizeof(from), first_fail);
		fmt_time(to, sizeof(to), last_fail);
		fprintf(stderr, "load: %lu failures, from %s to %s\n", n_failed, from, to);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: load [-u] [-s] [-n COUNT] [-c CONCURRENCY] [-t SECONDS] [-w TIMEOUT_MS]\n"
		"            [-b BYTES] [-r ROUNDS] [-i INTERVAL_MS] [-P FIRST_PORT] ADDR PORT\n"
		"  Connects COUNT times (default 1) to ADDR:PORT, CONCURRENCY (1) at a time,\n"
		"  reads the first line (the backend's name) and prints \"NAME COUNT\" per\n"
		"  name, then \"ok N failed M\"; exit 0 when M is 0.\n"
		"  -u  UDP: one datagram per attempt from a fresh socket, first line of reply\n"
		"  -t  run for SECONDS (fractions allowed) instead of COUNT; print \"rate R/s\"\n"
		"  -w  fail what makes no progress for TIMEOUT_MS (default 1000); refused\n"
		"      connections (RST, ICMP) fail at once\n"
		"  -b  TCP: after the name, send BYTES and expect them echoed, then EOF\n"
		"  -s  steady (needs -t): each of the CONCURRENCY slots keeps a connection\n"
		"      doing a round trip every INTERVAL_MS (default 10), closes it after\n"
		"      ROUNDS (default 10) round trips and opens the next; with -u, a\n"
		"      datagram every INTERVAL_MS per slot.  Every failure is reported with\n"
		"      its time.\n"
		"  -P  bind attempt K's socket to source port FIRST_PORT+K-1, so that no two\n"
		"      attempts share one (with -u: each datagram a new flow for sure)\n"
		"  SIGUSR1 ends a -t run at once, as if its time were up (connections in\n"
		"  their pause close; results as usual); no effect without -t.\n");
	exit(2);
}

static unsigned long parse_num(const char *s, unsigned long min, unsigned long max,
			       const char *what)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "load: %s: expected a number %lu-%lu, got '%s'\n", what, min, max,
			s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	double secs;
	char *end;
	int c;

	while ((c = getopt(argc, argv, "usn:c:t:w:b:r:i:P:")) != -1) {
		switch (c) {
		case 'u':
			opt.udp = true;
			break;
		case 's':
			opt.steady = true;
			break;
		case 'n':
			opt.count = parse_num(optarg, 1, ULONG_MAX, "-n");
			break;
		case 'c':
			opt.conc = parse_num(optarg, 1, 100000, "-c");
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (end == optarg || *end || !(secs > 0 && secs <= 86400)) {
				fprintf(stderr, "load: -t: expected seconds (0-86400], got '%s'\n",
					optarg);
				exit(2);
			}
			opt.duration = (uint64_t)(secs * NSEC);
			break;
		case 'w':
			opt.timeout = parse_num(optarg, 1, 3600000, "-w") * MSEC;
			break;
		case 'b':
			opt.bytes = parse_num(optarg, 0, ULONG_MAX, "-b");
			break;
		case 'r':
			opt.rounds = parse_num(optarg, 1, ULONG_MAX, "-r");
			break;
		case 'i':
			opt.interval = parse_num(optarg, 0, 3600000, "-i") * MSEC;
			break;
		case 'P':
			opt.first_port = parse_num(optarg, 1, 65535, "-P");
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	opt.addr = argv[optind];
	opt.port = argv[optind + 1];
	parse_num(opt.port, 1, 65535, "PORT");
	if (opt.steady && !opt.duration) {
		fprintf(stderr, "load: -s needs -t SECONDS\n");
		exit(2);
	}
	if (opt.bytes && (opt.udp || opt.steady)) {
		fprintf(stderr, "load: -b is for TCP without -s\n");
		exit(2);
	}
	if (!opt.duration && opt.conc > opt.count)
		opt.conc = opt.count;
	if (opt.first_port && !opt.duration && opt.count > 65536 - opt.first_port) {
		fprintf(stderr, "load: -P %lu leaves fewer than %lu source ports\n", opt.first_port,
			opt.count);
		exit(2);
	}
}

static int resolve(void)
{
	struct addrinfo hints = {.ai_socktype = opt.udp ? SOCK_DGRAM : SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	int rc = getaddrinfo(opt.addr, opt.port, &hints, &res);

	if (rc) {
		fprintf(stderr, "load: %s: %s\n", opt.addr,
			rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	memcpy(&dst, res->ai_addr, res->ai_addrlen);
	dst_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* CONCURRENCY sockets plus a few must fit under RLIMIT_NOFILE. */
static int check_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && opt.conc + 16 > rl.rlim_cur) {
		fprintf(stderr, "load: -c %lu needs more file descriptors than the limit, %lu\n",
			opt.conc, (unsigned long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

/* SIGUSR1 stays blocked except inside epoll_pwait, so that one arriving
 * while events are handled ends the wait that follows at once. */
static int setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, &wait_mask) < 0 || sigaction(SIGUSR1, &sa, NULL) < 0)
		return -1;
	sigdelset(&wait_mask, SIGUSR1);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	parse_args(argc, argv);
	if (setup_signals() < 0) {
		fprintf(stderr, "load: signals: %s\n", strerror(errno));
		return 1;
	}
	if (resolve() < 0 || check_nofile() < 0)
		return 1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	slots = calloc(opt.conc, sizeof(*slots));
	if (epfd < 0 || !slots) {
		fprintf(stderr, "load: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned long i = 0; i < opt.conc; i++)
		slots[i].fd = -1;
	t_start = mono();
	rc = run(opt.conc);
	t_end = mono();
	print_results();
	for (size_t i = 0; i < n_tallies; i++)
		free(tallies[i].name);
	free(tallies);
	free(slots);
	close(epfd);
	return rc < 0 || n_failed ? 1 : 0;
}
