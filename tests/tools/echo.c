// SPDX-License-Identifier: MIT
/*
 * echo NAME PORT [PORT...]: the backend of the data-plane tests.
 *
 * Listens on TCP and UDP on every PORT, IPv4 and IPv6 wildcard.  A TCP
 * connection gets "NAME\n", then whatever the client sends is echoed back
 * until the client's EOF, then the connection is closed.  A UDP datagram gets
 * "NAME\n" back, sent from the address it was sent to.  So `load` can tell
 * which backend answered, and a transfer of any length checks the path both
 * ways.
 *
 * One thread, one epoll loop, non-blocking sockets.  A client error only
 * closes that client; the loop ends on SIGTERM or SIGINT (exit 0).
 * Exit status: 0 after a signal, 1 set-up error, 2 usage.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#define MAX_PORTS    32
#define MAX_NAME     255
#define CONN_BUF     16384
#define IO_BUDGET    64	 /* reads or writes per connection per wake-up */
#define ACCEPT_BATCH 256 /* accepts per listener per wake-up */
#define UDP_BATCH    256 /* datagrams per socket per wake-up */
#define UDP_RCVBUF   (4 << 20)

enum kind { K_LISTEN, K_UDP, K_CONN };

/* What an epoll event points at.  The first member of struct conn. */
struct item {
	enum kind kind;
	int fd;
};

/* A TCP client.  buf[off..len) is still to be written; the connection reads
 * only when that is empty, so a slow reader slows its own writer down. */
struct conn {
	struct item it;
	struct conn *prev, *next;
	uint32_t events; /* the epoll interest currently registered */
	bool eof;	 /* the client has finished sending */
	size_t off, len;
	char buf[CONN_BUF];
};

static const char *name;
static size_t name_len;
static int epfd = -1;
static int reserve_fd = -1; /* closed to accept and drop a client when out of fds */
static struct conn *conns;
static struct item socks[MAX_PORTS * 4]; /* listeners and UDP sockets */
static size_t n_socks;
static unsigned long n_tcp, n_udp;

static void conn_close(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->it.fd); /* also leaves the epoll set */
	free(c);
}

static int conn_want(struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (c->events == events)
		return 0;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->it.fd, &ev) < 0)
		return -errno;
	c->events = events;
	return 0;
}

/* Move data until the socket would block; close on EOF (once flushed) or
 * on any error. */
static void conn_run(struct conn *c)
{
	ssize_t n;

	for (int i = 0; i < IO_BUDGET; i++) {
		if (c->off < c->len) {
			n = send(c->it.fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
			if (n >= 0) {
				c->off += (size_t)n;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && conn_want(c, EPOLLOUT) == 0)
				return;
			conn_close(c);
			return;
		}
		if (c->eof) {
			conn_close(c);
			return;
		}
		n = recv(c->it.fd, c->buf, sizeof(c->buf), 0);
		if (n > 0) {
			c->off = 0;
			c->len = (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = true;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && conn_want(c, EPOLLIN) == 0)
			return;
		conn_close(c);
		return;
	}
	/* Out of budget: level-triggered epoll brings us back. */
}

static void conn_new(int fd)
{
	struct conn *c = malloc(sizeof(*c));
	struct epoll_event ev = {.events = EPOLLOUT};

	if (!c) {
		close(fd);
		return;
	}
	c->it.kind = K_CONN;
	c->it.fd = fd;
	c->events = ev.events;
	c->eof = false;
	c->off = 0;
	c->len = name_len + 1;
	memcpy(c->buf, name, name_len);
	c->buf[name_len] = '\n';
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		free(c);
		return;
	}
	c->prev = NULL;
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	n_tcp++;
	conn_run(c);
}

/* Out of file descriptors: the pending client would keep the listener
 * readable forever.  Accept it on the spare descriptor and close it. */
static void shed_one(int lfd)
{
	int fd;

	if (reserve_fd < 0)
		return;
	close(reserve_fd);
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0)
		close(fd);
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_listen(struct item *l)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			shed_one(l->fd);
			continue;
		}
		return; /* EAGAIN, or a transient error (ENOBUFS...): wait for the next event */
	}
}

/* Answer every datagram with NAME, from the address it was sent to (the
 * socket is bound to the wildcard, and a pod may have several addresses). */
static void on_udp(struct item *u)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_storage from;
	char data[2048];
	struct iovec in = {data, sizeof(data)};
	char reply[MAX_NAME + 1];
	struct iovec out = {reply, name_len + 1};

	memcpy(reply, name, name_len);
	reply[name_len] = '\n';
	for (int i = 0; i < UDP_BATCH; i++) {
		struct msghdr msg = {.msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &in,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf)};
		struct cmsghdr *cm;

		if (recvmsg(u->fd, &msg, MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN)
				return;
			continue; /* a queued ICMP error or the like: not ours to handle */
		}
		n_udp++;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
				((struct in_pktinfo *)(void *)CMSG_DATA(cm))->ipi_ifindex = 0;
		}
		msg.msg_iov = &out;
		msg.msg_flags = 0;
		if (sendmsg(u->fd, &msg, MSG_DONTWAIT) < 0 && errno != EAGAIN) {
			/* e.g. sent to a broadcast address: answer from the default one */
			msg.msg_control = NULL;
			msg.msg_controllen = 0;
			(void)sendmsg(u->fd, &msg, MSG_DONTWAIT);
		}
		msg.msg_iov = &in;
	}
}

static int set_int(int fd, int level, int opt, int val)
{
	return setsockopt(fd, level, opt, &val, sizeof(val));
}

/* Open, bind and register one socket; -EAFNOSUPPORT when the family is
 * missing (a kernel without IPv6), another -errno on failure. */
static int open_one(int family, int type, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	struct epoll_event ev = {.events = EPOLLIN};
	struct item *it;
	int fd, err;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
		goto fail;
	/* Room for a burst of hundreds of datagrams (a small one costs about
	 * 2 KiB of buffer): above net.core.rmem_max when root, else up to it. */
	if (type == SOCK_DGRAM && set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, UDP_RCVBUF) < 0)
		(void)set_int(fd, SOL_SOCKET, SO_RCVBUF, UDP_RCVBUF);
	if (family == AF_INET6) {
		sin6.sin6_addr = in6addr_any;
		if (set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)
			goto fail;
		if (type == SOCK_DGRAM && set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) < 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)
			goto fail;
	} else {
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		if (type == SOCK_DGRAM && set_int(fd, IPPROTO_IP, IP_PKTINFO, 1) < 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto fail;
	}
	if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)
		goto fail;
	it = &socks[n_socks];
	it->kind = type == SOCK_STREAM ? K_LISTEN : K_UDP;
	it->fd = fd;
	ev.data.ptr = it;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	n_socks++;
	return 0;
fail:
	err = errno;
	close(fd);
	return -err;
}

static int open_port(int port)
{
	static const struct {
		int family, type;
		const char *what;
	} kinds[] = {{AF_INET, SOCK_STREAM, "tcp"},
		     {AF_INET6, SOCK_STREAM, "tcp6"},
		     {AF_INET, SOCK_DGRAM, "udp"},
		     {AF_INET6, SOCK_DGRAM, "udp6"}};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int err = open_one(kinds[i].family, kinds[i].type, port);

		if (err == -EAFNOSUPPORT && kinds[i].family == AF_INET6)
			continue; /* no IPv6 in this kernel: IPv4 only */
		if (err < 0) {
			fprintf(stderr, "echo: %s port %d: %s\n", kinds[i].what, port,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

static int parse_port(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return -1;
	return (int)v;
}

static void usage(void)
{
	fprintf(stderr, "usage: echo NAME PORT [PORT...]\n"
			"  Answers on TCP and UDP, IPv4 and IPv6, on each PORT: a TCP connection\n"
			"  gets \"NAME\\n\" then an echo of what it sends until EOF; a UDP\n"
			"  datagram gets \"NAME\\n\".  Stops on SIGTERM or SIGINT.\n");
	exit(2);
}

static volatile sig_atomic_t stop;
static sigset_t wait_mask; /* the mask during epoll_pwait: SIGTERM and SIGINT let through */

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* SIGTERM and SIGINT stay blocked except inside epoll_pwait, so one that
 * arrives while an event is handled ends the wait that follows. */
static int setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, &wait_mask) < 0)
		return -errno;
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	/* also replaces the SIG_IGN for SIGINT that a shell's background job starts with */
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGPIPE, &ign, NULL) < 0)
		return -errno;
	return 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run(void)
{
	struct epoll_event evs[128];

	while (!stop) {
		int n = epoll_pwait(epfd, evs, 128, -1, &wait_mask);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "echo: epoll_pwait: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct item *it = evs[i].data.ptr;

			switch (it->kind) {
			case K_LISTEN:
				on_listen(it);
				break;
			case K_UDP:
				on_udp(it);
				break;
			case K_CONN:
				/* one event per fd per batch: it cannot have been freed yet */
				conn_run((struct conn *)it);
				break;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int ports[MAX_PORTS];
	int nports = argc - 2;
	int rc;

	if (argc < 3 || nports > MAX_PORTS)
		usage();
	name = argv[1];
	name_len = strlen(name);
	if (name_len == 0 || name_len > MAX_NAME || strchr(name, '\n')) {
		fprintf(stderr, "echo: NAME must be 1-%d bytes, without a newline\n", MAX_NAME);
		return 2;
	}
	for (int i = 0; i < nports; i++) {
		ports[i] = parse_port(argv[i + 2]);
		if (ports[i] < 0) {
			fprintf(stderr, "echo: bad port '%s' (1-65535)\n", argv[i + 2]);
			return 2;
		}
	}
	raise_nofile();
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "echo: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	rc = setup_signals();
	if (rc < 0) {
		fprintf(stderr, "echo: signals: %s\n", strerror(-rc));
		return 1;
	}
	for (int i = 0; i < nports; i++) {
		if (open_port(ports[i]) < 0)
			return 1;
	}
	printf("echo %s: listening on tcp and udp port", name);
	for (int i = 0; i < nports; i++)
		printf(" %d", ports[i]);
	printf("\n");
	fflush(stdout);

	rc = run();
	while (conns)
		conn_close(conns);
	for (size_t i = 0; i < n_socks; i++)
		close(socks[i].fd);
	printf("echo %s: stopping after %lu tcp connections, %lu udp datagrams\n", name, n_tcp,
	       n_udp);
	return rc;
}
