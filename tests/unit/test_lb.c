// SPDX-License-Identifier: MIT
/* The userspace balancer's bookkeeping: a service change is all or nothing
 * (a port it cannot listen on leaves the service as it was), listeners are
 * kept across changes, counters and listings.  Loopback only, so nothing
 * here needs root or touches an interface; one relayed connection checks
 * the round trip through a real loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb.h"
#include "sendq.h"
#include "unit.h"

struct seen {
	char listen[8][64];
	int nlisten;
	char eps[8][64];
	int neps;
};

static void on_listen(void *ctx, const char *where)
{
	struct seen *s = ctx;

	if (s->nlisten < 8)
		snprintf(s->listen[s->nlisten++], 64, "%s", where);
}

static void on_ep(void *ctx, const char *ep, const struct lb_counters *c)
{
	struct seen *s = ctx;

	(void)c;
	if (s->neps < 8)
		snprintf(s->eps[s->neps++], 64, "%s", ep);
}

static struct seen walk(struct lb *lb, const char *key, int *rc)
{
	struct seen s = {0};
	struct lb_counters tot;

	*rc = lb_service_walk(lb, key, on_listen, on_ep, &tot, &s);
	return s;
}

/* A TCP socket listening on 127.0.0.1 at a port the kernel picks. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static uint16_t port_of(const char *where)
{
	const char *colon = strrchr(where, ':');

	return colon ? (uint16_t)atoi(colon + 1) : 0;
}

/* Loopback only: nothing here adds an address or needs root.  The
 * relaying tests run twice: sends batched (io_uring, where the kernel has
 * it) and one by one. */
static bool uring_here; /* sendq_open works: the balancer can batch */
static struct lb_config cfg = {.connect_timeout = 1,
			       .drain_grace = 1,
			       .udp_timeout = 1,
			       .max_conns = 100,
			       .loopback_only = true};

/* A balancer (configuration c) with service KEY: ClusterIP 10.96.0.VIP,
 * PORT/PROTO over endpoints on 127.0.0.1 at EPS[N] (N <= 4).  Returns
 * the address it listens on (loopback only: a port the kernel picked). */
static struct sockaddr_in svc_open(struct ev_loop *loop, const struct lb_config *c, const char *key,
				   uint8_t vip_last, uint8_t proto, uint16_t port,
				   const uint16_t *eps, uint32_t n, struct lb **out)
{
	struct svc_addr vip = {.family = AF_INET, .a = {10, 96, 0, vip_last}};
	struct lb_target t[4];
	struct lb_port_spec ps = {.proto = proto, .port = port, .targets = t, .ntargets = n};
	struct lb_service_spec spec = {.addrs = &vip, .naddrs = 1, .ports = &ps, .nports = 1};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct svc_err e = {0};
	struct seen seen;
	int rc;

	for (uint32_t i = 0; i < n && i < 4; i++)
		t[i] = (struct lb_target){.addr = {.family = AF_INET, .a = {127, 0, 0, 1}},
					  .port = eps[i]};
	CHECK(lb_new(loop, c, out, &e) == 0);
	CHECK(lb_service_set(*out, key, &spec, &e) == 0);
	seen = walk(*out, key, &rc);
	a.sin_port = htons(port_of(seen.listen[0]));
	return a;
}

static void test_all_or_nothing(struct ev_loop *loop)
{
	struct svc_addr vip = {.family = AF_INET, .a = {10, 96, 0, 9}};
	struct lb_target t[2] = {{.addr = {.family = AF_INET, .a = {127, 0, 0, 1}}, .port = 1},
				 {.addr = {.family = AF_INET6, .a = {[15] = 1}}, .port = 65535}};
	struct lb_port_spec ps = {.proto = IPPROTO_TCP, .port = 80, .targets = t, .ntargets = 2};
	struct lb_service_spec spec = {.addrs = &vip, .naddrs = 1, .ports = &ps, .nports = 1};
	struct svc_err e = {0};
	struct lb *lb = NULL;
	uint16_t busy;
	int busy_fd = listener(&busy), rc;
	struct seen s;
	char first[64];

	CHECK(busy_fd >= 0);
	CHECK(lb_new(loop, &cfg, &lb, &e) == 0);
	CHECK(lb_service_set(lb, "default/web", &spec, &e) == 0);
	s = walk(lb, "default/web", &rc);
	CHECK(rc == 0);
	CHECK(s.nlisten == 1);
	CHECK(!strncmp(s.listen[0], "127.0.0.1:", 10) && strstr(s.listen[0], "/TCP"));
	CHECK(port_of(s.listen[0]) != 0);
	CHECK(s.neps == 2);
	CHECK_STR(s.eps[0], "127.0.0.1:1");
	CHECK_STR(s.eps[1], "[::1]:65535");
	snprintf(first, sizeof(first), "%s", s.listen[0]);

	/* A nodePort another program holds: refused, named, nothing changed. */
	ps.node_port = busy;
	ps.ntargets = 1;
	CHECK(lb_service_set(lb, "default/web", &spec, &e) == -EADDRINUSE);
	CHECK_HAS(e.msg, "default/web");
	CHECK_HAS(e.msg, "Address already in use");
	s = walk(lb, "default/web", &rc);
	CHECK(s.nlisten == 1 && s.neps == 2);
	CHECK_STR(s.listen[0], first);
	svc_err_clear(&e);

	/* A new service that cannot listen is not half there. */
	CHECK(lb_service_set(lb, "default/other", &spec, &e) == -EADDRINUSE);
	CHECK(!lb_has_service(lb, "default/other"));
	svc_err_clear(&e);

	/* An endpoint change keeps the listener (same socket, same port). */
	ps.node_port = 0;
	CHECK(lb_service_set(lb, "default/web", &spec, &e) == 0);
	s = walk(lb, "default/web", &rc);
	CHECK(s.nlisten == 1 && s.neps == 1);
	CHECK_STR(s.listen[0], first);

	/* Removed: gone from the walk. */
	CHECK(lb_service_set(lb, "default/web", NULL, &e) == 0);
	CHECK(!lb_has_service(lb, "default/web"));
	walk(lb, "default/web", &rc);
	CHECK(rc == -ENOENT);
	lb_free(lb);
	close(busy_fd);
}

/* One connection through the balancer: a service over one endpoint
 * listening on 127.0.0.1 (srv_fd) and a client connected to the service;
 * the endpoint's side of the connection (peer) and the client are watched
 * with a test's callbacks, whose state begins with the rig. */
struct rig {
	struct lb *lb;
	int srv_fd, peer, client;
	ev_io srv_io, peer_io, cli_io;
	void (*accepted)(struct rig *r); /* the endpoint has its connection */
};

static void rig_on_srv(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rig *r = w->data;

	(void)revents;
	r->peer = accept(r->srv_fd, NULL, NULL);
	ev_io_stop(loop, w);
	if (r->accepted)
		r->accepted(r);
	ev_io_set(&r->peer_io, r->peer, EV_READ);
	ev_io_start(loop, &r->peer_io);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Set up service KEY (ClusterIP 10.96.0.VIP, port PORT) over a fresh
 * endpoint, and connect the client to it. */
static void rig_open(struct ev_loop *loop, struct rig *r, const char *key, uint8_t vip_last,
		     uint16_t port, void (*on_peer)(struct ev_loop *, ev_io *, int),
		     void (*on_cli)(struct ev_loop *, ev_io *, int))
{
	uint16_t ep;
	struct sockaddr_in a;

	r->peer = -1;
	r->srv_fd = listener(&ep);
	CHECK(r->srv_fd >= 0);
	a = svc_open(loop, &cfg, key, vip_last, IPPROTO_TCP, port, &ep, 1, &r->lb);
	r->client = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(r->client, (struct sockaddr *)&a, sizeof(a)) == 0);
	ev_io_init(&r->srv_io, rig_on_srv, r->srv_fd, EV_READ);
	ev_io_init(&r->peer_io, on_peer, 0, EV_READ);
	ev_io_init(&r->cli_io, on_cli, r->client, EV_READ);
	r->srv_io.data = r->peer_io.data = r->cli_io.data = r;
}

/* Run until a callback breaks the loop, 5 s at most. */
static void rig_run(struct ev_loop *loop, struct rig *r)
{
	ev_timer guard;

	ev_io_start(loop, &r->srv_io);
	ev_io_start(loop, &r->cli_io);
	ev_timer_init(&guard, on_timeout, 5, 0);
	ev_timer_start(loop, &guard);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	ev_io_stop(loop, &r->srv_io);
	ev_io_stop(loop, &r->peer_io);
	ev_io_stop(loop, &r->cli_io);
}

static void rig_close(struct rig *r)
{
	close(r->client);
	if (r->peer >= 0)
		close(r->peer);
	close(r->srv_fd);
	lb_free(r->lb);
}

/* An echo endpoint and a client that sends and half-closes: the round trip
 * and its counters. */
struct relay {
	struct rig rig;
	char got[16];
	size_t ngot;
};

static void on_peer(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rig *r = w->data;
	char buf[64];
	ssize_t n = read(r->peer, buf, sizeof(buf));

	(void)revents;
	if (n > 0) {
		CHECK(write(r->peer, buf, (size_t)n) == n); /* echo */
		return;
	}
	ev_io_stop(loop, w); /* EOF: the client's half-close arrived */
	close(r->peer);
	r->peer = -1;
}

static void on_cli(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay *r = w->data;
	ssize_t n = read(r->rig.client, r->got + r->ngot, sizeof(r->got) - 1 - r->ngot);

	(void)revents;
	if (n > 0) {
		r->ngot += (size_t)n;
		return;
	}
	ev_io_stop(loop, w); /* EOF: the whole answer, then the FIN */
	ev_break(loop, EVBREAK_ALL);
}

static void test_relay(struct ev_loop *loop)
{
	struct relay r = {0};
	struct lb_counters tot;
	struct lb_stats st;

	rig_open(loop, &r.rig, "default/echo", 9, 80, on_peer, on_cli);
	lb_stats(r.rig.lb, &st);
	CHECK(st.batched_sends == (uring_here && !cfg.send_one_by_one));
	CHECK(write(r.rig.client, "hello", 5) == 5);
	shutdown(r.rig.client, SHUT_WR);
	rig_run(loop, &r.rig);
	r.got[r.ngot] = 0;
	CHECK_STR(r.got, "hello");
	CHECK(lb_service_walk(r.rig.lb, "default/echo", NULL, NULL, &tot, NULL) == 0);
	CHECK(tot.total == 1);
	CHECK(tot.bytes_in == 5 && tot.bytes_out == 5);
	CHECK(tot.connect_failures == 0);
	lb_stats(r.rig.lb, &st);
	CHECK((st.sends_batched > 0) == st.batched_sends); /* the echo came back that way */
	rig_close(&r.rig);
}

/* An endpoint that answers and shuts down its side at once (its answer and
 * FIN arrive together: the balancer sends its FIN with the answer) and
 * still reads: the client gets the whole answer, then EOF and no reset,
 * and what it sends afterwards still reaches the endpoint. */
struct halfclose {
	struct rig rig;
	char got[64], late[64];
	size_t ngot, nlate;
	bool answered, peer_eof;
	int cli_end; /* the client's last read: 0 (EOF) or -errno */
};

static void hc_on_peer(struct ev_loop *loop, ev_io *w, int revents)
{
	struct halfclose *h = w->data;
	char buf[64];
	ssize_t n = read(h->rig.peer, buf, sizeof(buf));

	(void)revents;
	if (n == 3 && !h->answered && !memcmp(buf, "ask", 3)) {
		CHECK(write(h->rig.peer, "answer", 6) == 6);
		shutdown(h->rig.peer, SHUT_WR);
		h->answered = true;
		return;
	}
	if (n > 0) {
		if (h->nlate + (size_t)n < sizeof(h->late)) {
			memcpy(h->late + h->nlate, buf, (size_t)n);
			h->nlate += (size_t)n;
		}
		return;
	}
	h->peer_eof = n == 0;
	ev_io_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void hc_on_cli(struct ev_loop *loop, ev_io *w, int revents)
{
	struct halfclose *h = w->data;
	ssize_t n = read(h->rig.client, h->got + h->ngot, sizeof(h->got) - 1 - h->ngot);

	(void)revents;
	if (n > 0) {
		h->ngot += (size_t)n;
		return;
	}
	h->cli_end = n == 0 ? 0 : -errno;
	ev_io_stop(loop, w);
	/* Our side is still open: it speaks after the endpoint's FIN. */
	CHECK(write(h->rig.client, "after", 5) == 5);
	shutdown(h->rig.client, SHUT_WR);
}

static void test_endpoint_closes_first(struct ev_loop *loop)
{
	struct halfclose h = {.cli_end = 1};

	rig_open(loop, &h.rig, "default/first", 10, 80, hc_on_peer, hc_on_cli);
	CHECK(write(h.rig.client, "ask", 3) == 3);
	rig_run(loop, &h.rig);
	h.got[h.ngot] = 0;
	h.late[h.nlate] = 0;
	CHECK_STR(h.got, "answer");
	CHECK(h.cli_end == 0); /* EOF, not a reset */
	CHECK_STR(h.late, "after");
	CHECK(h.peer_eof);
	rig_close(&h.rig);
}

/* A server-first protocol: the client says nothing until the endpoint's
 * greeting arrives.  The balancer awaits the client's first bytes a moment,
 * then connects without them: the greeting reaches the client, and its
 * answer the endpoint. */
struct greet {
	struct rig rig;
	char got[64], heard[64];
	size_t ngot, nheard;
};

static void gr_accepted(struct rig *r)
{
	CHECK(write(r->peer, "220 hello\n", 10) == 10);
}

static void gr_on_peer(struct ev_loop *loop, ev_io *w, int revents)
{
	struct greet *g = w->data;
	ssize_t n = read(g->rig.peer, g->heard + g->nheard, sizeof(g->heard) - 1 - g->nheard);

	(void)revents;
	if (n > 0) {
		g->nheard += (size_t)n;
		return;
	}
	ev_io_stop(loop, w); /* the client's FIN after its answer */
	ev_break(loop, EVBREAK_ALL);
}

static void gr_on_cli(struct ev_loop *loop, ev_io *w, int revents)
{
	struct greet *g = w->data;
	ssize_t n = read(g->rig.client, g->got + g->ngot, sizeof(g->got) - 1 - g->ngot);

	(void)revents;
	if (n <= 0) {
		ev_io_stop(loop, w);
		return;
	}
	g->ngot += (size_t)n;
	if (g->ngot == 10) { /* the whole greeting: answer it and end */
		CHECK(write(g->rig.client, "QUIT\n", 5) == 5);
		shutdown(g->rig.client, SHUT_WR);
	}
}

static void test_server_speaks_first(struct ev_loop *loop)
{
	struct greet g = {.rig.accepted = gr_accepted};

	rig_open(loop, &g.rig, "default/smtp", 11, 25, gr_on_peer, gr_on_cli);
	rig_run(loop, &g.rig);
	g.got[g.ngot] = 0;
	g.heard[g.nheard] = 0;
	CHECK_STR(g.got, "220 hello\n");
	CHECK_STR(g.heard, "QUIT\n");
	rig_close(&g.rig);
}

/* Backpressure: an endpoint behind a small receive buffer reads nothing
 * until the client can write no more.  The balancer's sends to it come up
 * short, then say EAGAIN; once it reads, it gets every byte the client
 * wrote, in order.  The client writes 8 KB a millisecond, so until the
 * endpoint's side is full the balancer reads less than its buffer each
 * time and sends from it; what piles up meanwhile fills the buffer at the
 * next read and goes by splice from then on. */
#define BP_TOTAL (2u << 20)
#define BP_CHUNK 8192

struct bp {
	struct rig rig;
	ev_timer tick;
	size_t sent, got;
	bool blocked, wrong;
};

static uint8_t bp_byte(size_t i)
{
	return (uint8_t)(i % 251);
}

static void bp_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bp *b = w->data;
	uint8_t chunk[BP_CHUNK];
	size_t n = BP_TOTAL - b->sent < BP_CHUNK ? BP_TOTAL - b->sent : BP_CHUNK;
	ssize_t k;

	(void)revents;
	for (size_t i = 0; i < n; i++)
		chunk[i] = bp_byte(b->sent + i);
	k = send(b->rig.client, chunk, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (k > 0)
		b->sent += (size_t)k;
	else if (k < 0 && errno == EAGAIN && !b->blocked) {
		b->blocked = true; /* everything between is full: the endpoint reads */
		if (b->rig.peer >= 0)
			ev_io_start(loop, &b->rig.peer_io);
	}
	if (b->sent == BP_TOTAL)
		ev_timer_stop(loop, w);
}

static void bp_on_peer(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bp *b = w->data;
	static uint8_t buf[65536];
	ssize_t n;

	(void)revents;
	if (!b->blocked) {
		ev_io_stop(loop, w);
		return;
	}
	n = read(b->rig.peer, buf, sizeof(buf));
	for (ssize_t i = 0; i < n && !b->wrong; i++)
		b->wrong = buf[i] != bp_byte(b->got + (size_t)i);
	if (n > 0)
		b->got += (size_t)n;
	if (n == 0 || b->wrong || b->got == BP_TOTAL)
		ev_break(loop, EVBREAK_ALL);
}

static void bp_on_cli(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	ev_io_stop(loop, w); /* the endpoint says nothing */
}

static void test_backpressure(struct ev_loop *loop)
{
	struct bp b = {0};
	int small = 4096, mss = 536;

	/* Small buffers all the way, whatever lo's MTU and the tcp_rmem and
	 * tcp_wmem limits: the endpoint's window (and, through the MSS it
	 * announces, the balancer's send buffer towards it) and the client's
	 * send buffer. */
	rig_open(loop, &b.rig, "default/sink", 12, 80, bp_on_peer, bp_on_cli);
	CHECK(setsockopt(b.rig.srv_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
	CHECK(setsockopt(b.rig.srv_fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) == 0);
	CHECK(setsockopt(b.rig.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);
	ev_timer_init(&b.tick, bp_on_tick, 0.001, 0.001);
	b.tick.data = &b;
	ev_timer_start(loop, &b.tick);
	rig_run(loop, &b.rig);
	ev_timer_stop(loop, &b.tick);
	CHECK(b.blocked);
	CHECK(!b.wrong);
	CHECK(b.got == BP_TOTAL);
	rig_close(&b.rig);
}

/* Run the loop without waiting until fd is readable, 2 s at most. */
static bool spin_until_readable(struct ev_loop *loop, int fd)
{
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 0) == 1)
			return true;
		ev_run(loop, EVRUN_NOWAIT);
		poll(NULL, 0, 1);
	}
	return false;
}

/* A send queued in a batch whose connection then closes in the same batch
 * is not made: the socket number and the buffer go to the next connection
 * of that batch, whose endpoint must get its own bytes only.  c1's
 * endpoint socket takes the lowest free number (the test frees it just
 * before), so c2's endpoint socket, opened in the batch where c1 closes,
 * takes it again. */
static void test_closed_in_batch(struct ev_loop *loop)
{
	struct rig r;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct linger rst = {.l_onoff = 1, .l_linger = 0};
	socklen_t alen = sizeof(a);
	int low = dup(0), peer1, client2, peer2;
	char got[64] = {0};
	size_t ngot = 0;
	ssize_t n;

	CHECK(low >= 0);
	rig_open(loop, &r, "default/cancel", 13, 80, NULL, NULL);
	CHECK(getpeername(r.client, (struct sockaddr *)&a, &alen) == 0);
	for (int i = 0; i < 3; i++)
		ev_run(loop, EVRUN_NOWAIT); /* c1 accepted, waiting for its bytes */
	close(low);
	CHECK(write(r.client, "a", 1) == 1);
	CHECK(spin_until_readable(loop, r.srv_fd));
	peer1 = accept(r.srv_fd, NULL, NULL);
	CHECK(peer1 >= 0 && read(peer1, got, sizeof(got)) == 1);

	client2 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(client2, (struct sockaddr *)&a, sizeof(a)) == 0);
	for (int i = 0; i < 3; i++)
		ev_run(loop, EVRUN_NOWAIT); /* c2 accepted, waiting for its bytes */
	/* One batch: c1 queues "ping", c1's endpoint resets, c2 connects. */
	CHECK(write(r.client, "ping", 4) == 4);
	setsockopt(peer1, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	close(peer1);
	CHECK(write(client2, "hello", 5) == 5);
	shutdown(client2, SHUT_WR);
	CHECK(spin_until_readable(loop, r.srv_fd));
	peer2 = accept(r.srv_fd, NULL, NULL);
	CHECK(peer2 >= 0);
	while (spin_until_readable(loop, peer2) &&
	       (n = read(peer2, got + ngot, sizeof(got) - 1 - ngot)) > 0)
		ngot += (size_t)n;
	got[ngot] = 0;
	CHECK_STR(got, "hello");
	close(peer2);
	close(client2);
	r.peer = -1;
	rig_close(&r);
}

/* At max_conns connections the balancer accepts no more: a third client
 * waits in the listen backlog, its endpoint never hears of it, until one
 * of the two closes; then it goes through with its bytes. */
static void test_max_conns(struct ev_loop *loop)
{
	struct lb_config two = cfg;
	struct lb *lb = NULL;
	struct lb_stats st;
	struct sockaddr_in a;
	uint16_t ep;
	int srv = listener(&ep), cli[3], peer[3] = {-1, -1, -1};
	struct pollfd p = {.fd = srv, .events = POLLIN};
	char got[8] = {0};

	two.max_conns = 2;
	CHECK(srv >= 0);
	a = svc_open(loop, &two, "default/two", 14, IPPROTO_TCP, 80, &ep, 1, &lb);
	for (int i = 0; i < 3; i++) {
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(connect(cli[i], (struct sockaddr *)&a, sizeof(a)) == 0);
		CHECK(write(cli[i], "x", 1) == 1);
	}
	for (int i = 0; i < 2; i++) {
		CHECK(spin_until_readable(loop, srv));
		peer[i] = accept(srv, NULL, NULL);
		CHECK(peer[i] >= 0);
	}
	for (int i = 0; i < 100; i++) { /* 100 ms: the third would be through by now */
		ev_run(loop, EVRUN_NOWAIT);
		poll(NULL, 0, 1);
	}
	CHECK(poll(&p, 1, 0) == 0);
	lb_stats(lb, &st);
	CHECK(st.accept_paused == 1);
	CHECK(st.active == 2);

	close(cli[0]); /* one ends: the third client is accepted */
	close(peer[0]);
	CHECK(spin_until_readable(loop, srv));
	peer[2] = accept(srv, NULL, NULL);
	CHECK(peer[2] >= 0);
	CHECK(spin_until_readable(loop, peer[2]) && read(peer[2], got, sizeof(got)) == 1);
	CHECK_STR(got, "x");
	for (int i = 1; i < 3; i++) {
		close(cli[i]);
		close(peer[i]);
	}
	close(srv);
	lb_free(lb);
}

static void udp_echo(struct ev_loop *loop, ev_io *w, int revents)
{
	char buf[64];
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	ssize_t n = recvfrom(w->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);

	(void)loop;
	(void)revents;
	if (n > 0)
		sendto(w->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
}

/* A UDP service over an endpoint that refuses (a closed port) and one that
 * echoes: the session on the refusing one ends at its ICMP refusal, so a
 * client that sends again is answered by the other.  Two clients, so that
 * round-robin gives the refusing endpoint one of them. */
static void test_udp_failover(struct ev_loop *loop)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int echo = socket(AF_INET, SOCK_DGRAM, 0), gone = socket(AF_INET, SOCK_DGRAM, 0);
	uint16_t eps[2]; /* the refusing one first */
	struct lb *lb = NULL;
	struct lb_counters tot;
	ev_io echo_io;

	CHECK(bind(echo, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(echo, (struct sockaddr *)&a, &alen) == 0);
	eps[1] = ntohs(a.sin_port);
	a.sin_port = 0;
	CHECK(bind(gone, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(gone, (struct sockaddr *)&a, &alen) == 0);
	eps[0] = ntohs(a.sin_port);
	close(gone); /* nothing listens there now: ICMP port unreachable */
	ev_io_init(&echo_io, udp_echo, echo, EV_READ);
	ev_io_start(loop, &echo_io);
	a = svc_open(loop, &cfg, "default/dns", 15, IPPROTO_UDP, 53, eps, 2, &lb);

	for (int c = 0; c < 2; c++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		char got[8] = {0};
		bool answered = false;
		CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
		for (int try = 0; try < 3 && !answered; try++) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			CHECK(send(fd, "q", 1, 0) == 1);
			for (int i = 0; i < 200 && !answered; i++) { /* 200 ms */
				ev_run(loop, EVRUN_NOWAIT);
				answered = poll(&p, 1, 1) == 1;
			}
		}
		CHECK(answered && recv(fd, got, sizeof(got), 0) == 1);
		CHECK_STR(got, "q");
		close(fd);
	}
	CHECK(lb_service_walk(lb, "default/dns", NULL, NULL, &tot, NULL) == 0);
	CHECK(tot.connect_failures == 1); /* the refusing endpoint, then passed over */
	ev_io_stop(loop, &echo_io);
	close(echo);
	lb_free(lb);
}

int main(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sendq *q = NULL;

	uring_here = sendq_open(4, &q) == 0;
	sendq_close(q);

	test_all_or_nothing(loop);
	for (int one_by_one = 0; one_by_one < 2; one_by_one++) {
		cfg.send_one_by_one = one_by_one;
		test_relay(loop);
		test_endpoint_closes_first(loop);
		test_server_speaks_first(loop);
		test_backpressure(loop);
	}
	cfg.send_one_by_one = false;
	test_closed_in_batch(loop);
	test_max_conns(loop);
	test_udp_failover(loop);
	ev_loop_destroy(loop);
	return UNIT_DONE("lb");
}
