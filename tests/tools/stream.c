// SPDX-License-Identifier: MIT
/*
 * stream: byte-exact TCP transfers and connection endings, for the tests of
 * a relay (the userspace balancer) between a client and a backend.
 *
 *   stream serve NAME PORT                         the backend
 *   stream [-w TIMEOUT_MS] echo ADDR PORT BYTES SEED
 *   stream [-w TIMEOUT_MS] up ADDR PORT BYTES SEED
 *   stream [-w TIMEOUT_MS] down ADDR PORT BYTES SEED
 *   stream [-w TIMEOUT_MS] reset ADDR PORT
 *   stream [-w TIMEOUT_MS] abort ADDR PORT
 *
 * The data is a pseudo-random stream: byte i of stream SEED is byte i % 8 of
 * splitmix64(SEED, i / 8).  Unlike a short repeating pattern, any loss,
 * duplication, reordering or corruption shows at the first byte that
 * differs, which is reported.
 *
 * The server (one process per connection, blocking I/O) sends "NAME\n" as
 * echo.c does; the client reads it, then sends one request line:
 *   echo   "echo\n", then BYTES of stream SEED while reading them back; after
 *          the last byte it shuts down its write side.  The server echoes
 *          until EOF, then closes.  The client checks every byte, the
 *          length, then the EOF.
 *   up     "sink\n", BYTES of stream SEED, then the client's half-close.  The
 *          server reads until EOF, and only then answers "LENGTH FNV1A64\n"
 *          (decimal, 16 hex digits) and closes; the client compares that
 *          with what it sent.  The answer can only arrive through a relay
 *          that passes the client's FIN on and keeps the other way open.
 *   down   "source SEED BYTES\n", then at once the client's half-close.  The
 *          server reads until EOF (nothing may follow the line), then sends
 *          BYTES of stream SEED and closes; the client checks every byte, the
 *          length, then the EOF.
 *   reset  "reset\n".  The server closes with SO_LINGER 0: a RST.  The client
 *          must get ECONNRESET, not an EOF and not data.
 *   abort  "hold\n".  The server answers "held\n" and reads until EOF or an
 *          error; once the client has "held\n" it closes with SO_LINGER 0
 *          (a RST).  The server logs what it saw: "hold: reset" or "hold: eof".
 *
 * The client prints one line on success, "MODE NAME BYTES ok" (NAME the
 * backend's), and exits 0; a failure is one line on stderr and exit 1.  -w:
 * fail when nothing moves for TIMEOUT_MS (default 5000).  The server prints
 * "stream NAME: listening on tcp port PORT", then one line per connection:
 * "NAME MODE: ok" or "NAME MODE: <what went wrong>" (and "NAME hold: reset"
 * or "NAME hold: eof").  It runs until killed.  Exit status 2: usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK	 65536
#define MAX_NAME 255
#define MAX_LINE 128

static int timeout_ms = 5000;
static const char *mode;

/* ---- the stream --------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Bytes [off, off + len) of stream seed into buf. */
static void stream_fill(uint8_t *buf, uint64_t off, size_t len, uint64_t seed)
{
	uint64_t key = splitmix64(seed), block = UINT64_MAX, word = 0;

	for (size_t i = 0; i < len; i++) {
		uint64_t o = off + i;

		if (o / 8 != block) {
			block = o / 8;
			word = splitmix64(key ^ block);
		}
		buf[i] = (uint8_t)(word >> (o % 8 * 8));
	}
}

/* The offset in [0, len) of the first byte of buf that is not the stream's
 * at off, or len. */
static size_t stream_diff(const uint8_t *buf, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t want[CHUNK];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		stream_fill(want, off + done, n, seed);
		if (memcmp(want, buf + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (want[i] != buf[done + i])
					return done + i;
		}
		done += n;
	}
	return len;
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* ---- the server ----------------------------------------------------------- */

static const char *srv_name;

__attribute__((format(printf, 2, 3))) static void srv_log(const char *cmd, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one write: lines of concurrent connections do not interleave */
	dprintf(STDOUT_FILENO, "%s %s: %s\n", srv_name, cmd, msg);
}

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t recv_some(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

/* The request line, without its newline, one byte at a time so that nothing
 * after it is taken.  0, or -1 with a message logged. */
static int srv_line(int fd, char *line)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = recv_some(fd, line + len, 1);

		if (n <= 0) {
			srv_log("?", "no request line: %s", n ? strerror(errno) : "EOF");
			return -1;
		}
		if (line[len] == '\n')
			break;
		if (++len == MAX_LINE) {
			srv_log("?", "request line too long");
			return -1;
		}
	}
	line[len] = '\0';
	return 0;
}

/* Read until EOF; *bytes and *hash (FNV-1a) of what came. 0, or -errno. */
static int srv_drain(int fd, uint64_t *bytes, uint64_t *hash)
{
	static uint8_t buf[CHUNK];

	*bytes = 0;
	*hash = FNV_INIT;
	for (;;) {
		ssize_t n = recv_some(fd, buf, sizeof(buf));

		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*bytes += (uint64_t)n;
		*hash = fnv1a(*hash, buf, (size_t)n);
	}
}

static void srv_echo(int fd)
{
	static uint8_t buf[CHUNK];
	uint64_t total = 0;
	int err;

	for (;;) {
		ssize_t n = recv_some(fd, buf, sizeof(buf));

		if (n < 0) {
			srv_log("echo", "receive after %" PRIu64 " bytes: %s", total,
				strerror(errno));
			return;
		}
		if (n == 0)
			break;
		err = send_all(fd, buf, (size_t)n);
		if (err) {
			srv_log("echo", "send after %" PRIu64 " bytes: %s", total, strerror(-err));
			return;
		}
		total += (uint64_t)n;
	}
	srv_log("echo", "ok %" PRIu64 " bytes", total);
}

static void srv_sink(int fd)
{
	uint64_t bytes, hash;
	char reply[64];
	int err = srv_drain(fd, &bytes, &hash);

	if (err) {
		srv_log("sink", "receive after %" PRIu64 " bytes: %s", bytes, strerror(-err));
		return;
	}
	snprintf(reply, sizeof(reply), "%" PRIu64 " %016" PRIx64 "\n", bytes, hash);
	err = send_all(fd, reply, strlen(reply));
	if (err)
		srv_log("sink", "send: %s", strerror(-err));
	else
		srv_log("sink", "ok %" PRIu64 " bytes", bytes);
}

static void srv_source(int fd, const char *args)
{
	static uint8_t buf[CHUNK];
	uint64_t seed, bytes, extra, hash, sent = 0;
	int err;

	if (sscanf(args, "%" SCNu64 " %" SCNu64, &seed, &bytes) != 2) {
		srv_log("source", "bad request '%s'", args);
		return;
	}
	err = srv_drain(fd, &extra, &hash);
	if (err || extra) {
		srv_log("source", "waiting for the client's EOF: %s",
			err ? strerror(-err) : "data after the request");
		return;
	}
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof(buf) ? (size_t)(bytes - sent) : sizeof(buf);

		stream_fill(buf, sent, n, seed);
		err = send_all(fd, buf, n);
		if (err) {
			srv_log("source", "send after %" PRIu64 " bytes: %s", sent, strerror(-err));
			return;
		}
		sent += n;
	}
	srv_log("source", "ok %" PRIu64 " bytes", sent);
}

static void srv_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		srv_log("reset", "SO_LINGER: %s", strerror(errno));
	else
		srv_log("reset", "ok");
	/* the caller's close() sends the RST */
}

static void srv_hold(int fd)
{
	uint64_t bytes, hash;
	int err = send_all(fd, "held\n", 5);

	if (err) {
		srv_log("hold", "send: %s", strerror(-err));
		return;
	}
	err = srv_drain(fd, &bytes, &hash);
	if (err == -ECONNRESET)
		srv_log("hold", "reset");
	else if (err)
		srv_log("hold", "%s", strerror(-err));
	else
		srv_log("hold", "eof");
}

static void srv_conn(int fd)
{
	char line[MAX_LINE + 1], hello[MAX_NAME + 2];
	int err;

	snprintf(hello, sizeof(hello), "%s\n", srv_name);
	err = send_all(fd, hello, strlen(hello));
	if (err) {
		srv_log("?", "sending the name: %s", strerror(-err));
		return;
	}
	if (srv_line(fd, line) < 0)
		return;
	if (!strcmp(line, "echo"))
		srv_echo(fd);
	else if (!strcmp(line, "sink"))
		srv_sink(fd);
	else if (!strncmp(line, "source ", 7))
		srv_source(fd, line + 7);
	else if (!strcmp(line, "reset"))
		srv_reset(fd);
	else if (!strcmp(line, "hold"))
		srv_hold(fd);
	else
		srv_log("?", "unknown request '%s'", line);
}

static int serve(const char *name, const char *port_s)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	char *end;
	long port = strtol(port_s, &end, 10);
	int lfd, one = 1;

	if (!*name || strlen(name) > MAX_NAME || strchr(name, '\n') || *end || end == port_s ||
	    port < 1 || port > 65535) {
		fprintf(stderr, "stream: serve NAME PORT: bad NAME or PORT\n");
		return 2;
	}
	srv_name = name;
	sin.sin_port = htons((uint16_t)port);
	/* children are reaped by the kernel; a client gone is an error, not a signal */
	if (sigaction(SIGCHLD, &ign, NULL) < 0 || sigaction(SIGPIPE, &ign, NULL) < 0)
		return 1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, SOMAXCONN) < 0) {
		fprintf(stderr, "stream: tcp port %ld: %s\n", port, strerror(errno));
		return 1;
	}
	printf("stream %s: listening on tcp port %ld\n", name, port);
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "stream: accept: %s\n", strerror(errno));
			return 1;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			srv_conn(fd);
			close(fd);
			_exit(0);
		}
		if (pid < 0)
			fprintf(stderr, "stream: fork: %s\n", strerror(errno));
		close(fd);
	}
}

/* ---- the client ----------------------------------------------------------- */

static const char *c_addr, *c_port;
static char backend[MAX_NAME + 1] = "?";

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "stream: %s %s:%s: ", mode, c_addr, c_port);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Wait until fd has one of events; returns revents.  Fails after timeout_ms
 * without any. */
static short wait_fd(int fd, short events, const char *what)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("poll: %s", strerror(errno));
	if (n == 0)
		die("%s: nothing for %d ms", what, timeout_ms);
	return p.revents;
}

/* Non-blocking recv; 0 when it would block (*eof set on EOF); dies on error
 * unless the caller asks for the errno. */
static ssize_t c_recv(int fd, void *buf, size_t len, bool *eof, int *err, const char *what)
{
	ssize_t n = recv(fd, buf, len, 0);

	*eof = false;
	if (n > 0)
		return n;
	if (n == 0) {
		*eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	if (err) {
		*err = errno;
		return -1;
	}
	die("%s: %s", what, strerror(errno));
}

static void c_send_all(int fd, const void *buf, size_t len, const char *what)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			wait_fd(fd, POLLOUT, what);
			continue;
		}
		if (n < 0)
			die("%s: %s", what, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* Read one line (at most cap - 1 bytes) into line, nothing beyond it. */
static void c_line(int fd, char *line, size_t cap, const char *what)
{
	size_t len = 0;
	bool eof;

	for (;;) {
		ssize_t n = c_recv(fd, line + len, 1, &eof, NULL, what);

		if (eof)
			die("%s: closed by the server", what);
		if (n == 0) {
			wait_fd(fd, POLLIN, what);
			continue;
		}
		if (line[len] == '\n')
			break;
		if (++len == cap - 1)
			die("%s: no newline in %zu bytes", what, cap - 1);
	}
	line[len] = '\0';
}

static int c_connect(void)
{
	struct addrinfo hints = {
	    .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	socklen_t len = sizeof(int);
	int fd, rc = getaddrinfo(c_addr, c_port, &hints, &res), err = 0;

	if (rc)
		die("%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			die("connect: %s", strerror(errno));
		wait_fd(fd, POLLOUT, "connect");
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err)
			die("connect: %s", strerror(err));
	}
	freeaddrinfo(res);
	c_line(fd, backend, sizeof(backend), "reading the backend's name");
	return fd;
}

/* Check n received bytes at offset *got against stream seed; die at the
 * first difference or beyond total. */
static void c_check(const uint8_t *buf, size_t n, uint64_t *got, uint64_t total, uint64_t seed)
{
	size_t at;

	if (*got + n > total)
		die("received more than the %" PRIu64 " bytes sent (%" PRIu64 ")", total, *got + n);
	at = stream_diff(buf, *got, n, seed);
	if (at < n)
		die("received data differs from the stream at byte %" PRIu64, *got + at);
	*got += n;
}

static void c_done(int fd, uint64_t bytes)
{
	close(fd);
	printf("%s %s %" PRIu64 " ok\n", mode, backend, bytes);
}

static void c_echo(uint64_t bytes, uint64_t seed)
{
	static uint8_t out[CHUNK], in[CHUNK];
	uint64_t sent = 0, got = 0;
	size_t off = 0, len = 0;
	bool eof = false, shut = false;
	int fd = c_connect();

	c_send_all(fd, "echo\n", 5, "sending the request");
	while (!eof) {
		short ev = wait_fd(fd, POLLIN | (shut ? 0 : POLLOUT), "echo");
		ssize_t n;

		if (ev & (POLLIN | POLLERR | POLLHUP)) {
			n = c_recv(fd, in, sizeof(in), &eof, NULL, "receive");
			if (n > 0)
				c_check(in, (size_t)n, &got, bytes, seed);
		}
		if (!shut && (ev & POLLOUT)) {
			if (off == len && sent < bytes) {
				len = bytes - sent < sizeof(out) ? (size_t)(bytes - sent)
								 : sizeof(out);
				stream_fill(out, sent, len, seed);
				off = 0;
			}
			if (off < len) {
				n = send(fd, out + off, len - off, MSG_NOSIGNAL);
				if (n < 0 && errno != EAGAIN && errno != EINTR)
					die("send after %" PRIu64 " bytes: %s", sent,
					    strerror(errno));
				if (n > 0) {
					off += (size_t)n;
					sent += (uint64_t)n;
				}
			}
			if (sent == bytes && off == len) {
				if (shutdown(fd, SHUT_WR) < 0)
					die("shutdown: %s", strerror(errno));
				shut = true;
			}
		}
	}
	if (!shut || got != bytes)
		die("EOF after %" PRIu64 " of %" PRIu64 " bytes echoed (%" PRIu64 " sent)", got,
		    bytes, sent);
	c_done(fd, bytes);
}

static void c_up(uint64_t bytes, uint64_t seed)
{
	static uint8_t out[CHUNK];
	uint64_t sent = 0, hash = FNV_INIT, r_bytes, r_hash;
	char line[MAX_LINE], extra;
	bool eof;
	int fd = c_connect();

	c_send_all(fd, "sink\n", 5, "sending the request");
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof(out) ? (size_t)(bytes - sent) : sizeof(out);

		stream_fill(out, sent, n, seed);
		hash = fnv1a(hash, out, n);
		c_send_all(fd, out, n, "send");
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown: %s", strerror(errno));
	c_line(fd, line, sizeof(line), "reading the server's digest after the half-close");
	if (sscanf(line, "%" SCNu64 " %" SCNx64, &r_bytes, &r_hash) != 2)
		die("bad digest line '%s'", line);
	if (r_bytes != bytes || r_hash != hash)
		die("the server received %" PRIu64 " bytes, FNV-1a %016" PRIx64 "; sent %" PRIu64
		    " bytes, FNV-1a %016" PRIx64,
		    r_bytes, r_hash, bytes, hash);
	for (;;) {
		if (c_recv(fd, &extra, 1, &eof, NULL, "waiting for the server's EOF") > 0)
			die("data after the digest");
		if (eof)
			break;
		wait_fd(fd, POLLIN, "waiting for the server's EOF");
	}
	c_done(fd, bytes);
}

static void c_down(uint64_t bytes, uint64_t seed)
{
	static uint8_t in[CHUNK];
	char req[MAX_LINE];
	uint64_t got = 0;
	bool eof = false;
	int fd = c_connect();

	snprintf(req, sizeof(req), "source %" PRIu64 " %" PRIu64 "\n", seed, bytes);
	c_send_all(fd, req, strlen(req), "sending the request");
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown: %s", strerror(errno));
	while (!eof) {
		ssize_t n = c_recv(fd, in, sizeof(in), &eof, NULL, "receive");

		if (n > 0)
			c_check(in, (size_t)n, &got, bytes, seed);
		else if (!eof)
			wait_fd(fd, POLLIN, "receive");
	}
	if (got != bytes)
		die("EOF after %" PRIu64 " of %" PRIu64 " bytes", got, bytes);
	c_done(fd, bytes);
}

static void c_reset(void)
{
	uint8_t buf[256];
	bool eof;
	int fd = c_connect(), err = 0;

	c_send_all(fd, "reset\n", 6, "sending the request");
	for (;;) {
		ssize_t n = c_recv(fd, buf, sizeof(buf), &eof, &err, "receive");

		if (n < 0 && err == ECONNRESET)
			break;
		if (n < 0)
			die("expected ECONNRESET, got: %s", strerror(err));
		if (eof)
			die("expected ECONNRESET, got an EOF (a FIN, not a RST)");
		if (n > 0)
			die("expected ECONNRESET, got %zd bytes of data", n);
		wait_fd(fd, POLLIN, "waiting for the RST");
	}
	c_done(fd, 0);
}

static void c_abort(void)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	char line[MAX_LINE];
	int fd = c_connect();

	c_send_all(fd, "hold\n", 5, "sending the request");
	c_line(fd, line, sizeof(line), "waiting for \"held\"");
	if (strcmp(line, "held"))
		die("expected \"held\", got '%s'", line);
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		die("SO_LINGER: %s", strerror(errno));
	c_done(fd, 0); /* close() sends the RST */
}

static void usage(void)
{
	fprintf(stderr,
		"usage: stream serve NAME PORT\n"
		"       stream [-w TIMEOUT_MS] echo|up|down ADDR PORT BYTES SEED\n"
		"       stream [-w TIMEOUT_MS] reset|abort ADDR PORT\n"
		"  serve: the backend (TCP PORT, one process per connection); sends \"NAME\\n\",\n"
		"         then does what the client's request line asks.\n"
		"  echo:  send BYTES of pseudo-random stream SEED, half-close, check the echo\n"
		"         byte for byte, its length and the EOF\n"
		"  up:    send BYTES, half-close; the server answers with the length and\n"
		"         FNV-1a of what it got, which must match\n"
		"  down:  half-close at once; the server then sends BYTES of stream SEED,\n"
		"         checked byte for byte, length and EOF\n"
		"  reset: the server resets the connection; expect ECONNRESET\n"
		"  abort: reset the connection once the server holds it; the server\n"
		"         logs \"NAME hold: reset\" (or \"eof\" if a FIN came instead)\n"
		"  -w: fail when nothing moves for TIMEOUT_MS (default 5000).\n"
		"  Prints \"MODE BACKEND BYTES ok\"; exit 0 ok, 1 failure, 2 usage.\n");
	exit(2);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "stream: %s: expected a number, got '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	int c;

	if (argc >= 2 && !strcmp(argv[1], "serve")) {
		if (argc != 4)
			usage();
		return serve(argv[2], argv[3]);
	}
	while ((c = getopt(argc, argv, "w:")) != -1) {
		if (c != 'w')
			usage();
		uint64_t ms = parse_u64(optarg, "-w");

		if (ms < 1 || ms > 3600000)
			usage();
		timeout_ms = (int)ms;
	}
	argc -= optind;
	argv += optind;
	if (argc < 3)
		usage();
	mode = argv[0];
	c_addr = argv[1];
	c_port = argv[2];
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "reset") || !strcmp(mode, "abort")) {
		if (argc != 3)
			usage();
		if (!strcmp(mode, "reset"))
			c_reset();
		else
			c_abort();
		return 0;
	}
	if (argc != 5)
		usage();
	if (!strcmp(mode, "echo"))
		c_echo(parse_u64(argv[3], "BYTES"), parse_u64(argv[4], "SEED"));
	else if (!strcmp(mode, "up"))
		c_up(parse_u64(argv[3], "BYTES"), parse_u64(argv[4], "SEED"));
	else if (!strcmp(mode, "down"))
		c_down(parse_u64(argv[3], "BYTES"), parse_u64(argv[4], "SEED"));
	else
		usage();
	return 0;
}
