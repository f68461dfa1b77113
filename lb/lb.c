// SPDX-License-Identifier: MIT
/* The userspace balancer.
 *
 * Listeners are libev watchers.  Relayed connections and UDP sessions live
 * in an epoll set of their own, edge-triggered, which libev watches as one
 * fd: each socket is registered once for input and output, and readiness is
 * remembered per socket (rd, wr) until a read or write says it is spent, so
 * a connection costs no epoll_ctl after its two ADDs.
 *
 * A TCP connection: accept, read what the client already sent, pick an
 * endpoint (affinity, else round-robin over those not failed lately),
 * connect without blocking and send those bytes as soon as the socket
 * takes them; a refusal or a timeout moves on to the next endpoint before
 * a byte was sent, so retrying is always safe.  Once connected, each
 * direction moves bytes through a 16 KB buffer; a direction whose reads
 * fill the buffer turns to splice() through a pipe from a pool.  A
 * direction reads only when what it read before is written
 * (backpressure), forwards EOF as shutdown(SHUT_WR) once its bytes are out
 * (half-close): with its last bytes when they came with the EOF, else 2 ms
 * later (see shut_later), and a reset or write error on one side resets
 * the other (RST for RST).
 *
 * While an epoll batch is handled, an open connection's buffered sends
 * wait on lb->sq and go out together at its end (flush_sends, one
 * io_uring call): each endpoint or client they wake gets its bytes before
 * any takes the CPU.  Without io_uring each send goes at once.
 *
 * Objects that events point at are freed a second after they are closed
 * (lb->dead), so a handler may close any connection.  Deadlines use
 * CLOCK_MONOTONIC (now_mono), not libev's wall-clock ev_now. */
#include "lb.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "localaddr.h"
#include "sendq.h"
#include "smap.h"
#include "util.h"

#define LB_BUF		16384	    /* bytes a buffered direction moves per read */
#define LB_PIPE_SIZE	(256 << 10) /* a spliced direction's pipe */
#define LB_PIPES_KEPT	64	    /* idle pipes kept for the next spliced direction */
#define LB_BUFS_KEPT	256	    /* idle buffers kept */
#define LB_EVENTS	256	    /* epoll events per wait */
#define LB_SENDQ	512	    /* sends batched at most */
#define LB_ACCEPT_BATCH 64	    /* accepts per listener per wake-up */
#define LB_UDP_BATCH	64	    /* datagrams per socket per wake-up */
#define LB_UDP_MAX	65536	    /* the largest datagram */
#define LB_FAIL_HOLD	5.0	    /* seconds a failed endpoint is passed over */
#define LB_ACCEPT_RETRY 0.1	    /* seconds accepts pause when out of fds */
#define LB_BACKLOG	4096
#define LB_AFF_SWEEP	60.0 /* seconds between sweeps of expired affinities */
#define LB_WHERE_MAX	64
/* Descriptors left to the rest of svcd (its control socket, DNS, pods):
 * relayed connections stop being accepted before they would take these. */
#define LB_FD_RESERVE 32

enum obj_kind { K_CONN = 1, K_UDP };
enum conn_state { C_CONNECTING, C_OPEN, C_DEAD, C_FIRST };
enum side { CLI = 0, SRV = 1 };

struct lb_ep {
	int refs;
	struct lb *lb;
	struct lb_target t;
	struct sockaddr_storage sa;
	socklen_t salen;
	char name[LB_WHERE_MAX]; /* "10.244.0.10:8080" */
	struct lb_counters c;
	bool removed;	       /* no longer an endpoint of its port: drain */
	ev_tstamp fail_until;  /* passed over until then, after a failure */
	ev_timer drain;	       /* closes what is left, drain_grace after removal */
	struct lb_conn *conns; /* connections to it (connecting or open) */
	unsigned nsessions;    /* UDP sessions to it */
};

/* One service port: what its listeners share with their connections. */
struct lb_port {
	int refs;
	struct lb *lb;
	uint8_t proto;
	uint16_t port, node_port;
	struct lb_ep **eps;
	uint32_t neps, rr;
	bool affinity;
	uint32_t affinity_timeout;
	struct smap aff; /* client address -> struct lb_aff */
	struct lb_counters c;
};

struct lb_aff {
	struct lb_ep *ep; /* a reference */
	ev_tstamp last;
	char key[SVC_ADDR_STRLEN];
};

struct lb_listener {
	struct lb_listener *next;	   /* the service's listeners */
	struct lb_listener *lprev, *lnext; /* every TCP listener, for pausing */
	struct lb *lb;
	struct lb_port *port;	   /* a reference */
	struct lb_port *next_port; /* while a plan holds it: the port it will serve */
	int fd;
	ev_io io;
	uint8_t proto;
	bool wildcard;		  /* UDP on 0.0.0.0: replies name their source */
	char ident[LB_WHERE_MAX]; /* what the spec asks: "10.96.0.5:80/TCP" */
	char where[LB_WHERE_MAX]; /* where it listens (loopback: the port given) */
	struct smap sessions;	  /* UDP: client "addr:port" -> struct lb_udp */
};

struct lb_svc {
	char *key;
	struct svc_addr *addrs; /* addresses it holds on lo */
	uint32_t naddrs;
	struct lb_port **ports;
	uint32_t nports;
	struct lb_listener *ls;
};

struct lb_half {
	int fd;
	bool rd, wr; /* ready as far as we know: set by events, cleared by EAGAIN */
	bool hup;    /* the peer's FIN (or an error) was seen: read to the end */
	bool fin;    /* the peer's FIN alone (no error): a short read is its last */
	bool eof;    /* read returned 0 */
	bool shut;   /* our FIN is sent, or due (shut_due) */
	bool shut_due;
};

/* One direction's bytes in flight. */
struct lb_flow {
	uint8_t *buf;
	uint32_t off, len; /* pending: buf[off, len) */
	int pipe[2];	   /* spliced: pipe[0] holds inpipe bytes */
	size_t inpipe;
	bool want_splice; /* a read filled the buffer: splice from now on */
	bool queued;	  /* buf[off, len) is send sq_i of lb->sq's batch */
	int sq_i;
};

/* Connections waiting for a deadline, in a queue where every wait is the
 * same length, so it stays in due order and one timer serves it:
 * Q_CONNECT, the connect timeout; Q_WAIT, LB_WAIT (see there). */
enum { Q_CONNECT, Q_WAIT, Q_N };

/* Two waits, both LB_WAIT long, share queue Q_WAIT:
 * - A FIN to pass on (shut_later): a client that closes once it has its
 *   answer (an HTTP client after "Connection: close") closes first
 *   meanwhile, so both sockets simply close and the TIME_WAIT stays with
 *   the client, as with a direct connection, instead of landing on the
 *   node by the thousand.  A client that waits for the FIN gets it that
 *   much later.
 * - A new client's first bytes (C_FIRST, see conn_start): the endpoint
 *   connection opens with them in hand.  A client that speaks first
 *   usually has within microseconds; a server-first protocol's greeting
 *   comes that much later. */
#define LB_WAIT 0.002

struct lb_conn;

struct lb_qlink {
	struct lb_conn *prev, *next;
	ev_tstamp due;
};

struct lb_queue {
	struct lb_conn *head, *tail;
	ev_timer timer;
};

struct lb_conn {
	uint8_t kind; /* K_CONN; first, as in struct lb_udp */
	uint8_t state;
	uint8_t gen;	/* the endpoint socket's generation, in epoll's data */
	uint32_t tries; /* endpoints tried: a port may have more than 255 */
	struct lb *lb;
	struct lb_conn *prev, *next;   /* every connection */
	struct lb_conn *eprev, *enext; /* the endpoint's */
	struct lb_qlink q[Q_N];	       /* on lb->q[Q_CONNECT], lb->q[Q_WAIT] */
	struct lb_conn *dead_next;
	ev_tstamp dead_at;
	struct lb_port *port; /* a reference */
	struct lb_ep *ep;     /* a reference while attached */
	struct lb_half cli, srv;
	struct lb_flow up, down; /* client to endpoint, endpoint to client */
	struct svc_addr client;
	bool counted; /* in ep->c.active */
};

struct lb_udp {
	uint8_t kind; /* K_UDP */
	bool dead;
	struct lb *lb;
	struct lb_listener *l;
	struct lb_ep *ep; /* a reference */
	int fd;		  /* connected to the endpoint */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct in_pktinfo pi; /* the address the client wrote to (wildcard) */
	ev_tstamp last, dead_at;
	struct lb_udp *dead_next;
	char key[LB_WHERE_MAX];
};

struct lb_vip {
	int refs;
	bool owned; /* svcd put it on lo (it was not there before) */
	char key[SVC_ADDR_STRLEN];
};

/* Send i of lb->sq's batch: whose. */
struct lb_sent {
	struct lb_conn *c;
	bool up;
};

struct lb {
	struct ev_loop *loop;
	struct lb_config cfg;
	int epfd;
	ev_io epio;
	ev_timer resume_timer, sweep_timer;
	struct smap svcs; /* key -> struct lb_svc */
	struct smap vips; /* address -> struct lb_vip */
	struct lb_listener *tcp_ls;
	struct lb_conn *conns;
	struct lb_queue q[Q_N];
	struct lb_conn *dead, *dead_tail; /* closed, freed LB_QUARANTINE later */
	struct lb_udp *dead_udp, *dead_udp_tail;
	size_t nconns, nlisteners;
	size_t nfirst; /* connections in C_FIRST */
	size_t fds;    /* descriptors of connections, sessions and pipes */
	size_t nofile; /* RLIMIT_NOFILE as last read, at nofile_at */
	ev_tstamp nofile_at;
	bool paused, paused_fds;
	uint64_t accept_paused;
	ev_tstamp aff_swept;
	uint8_t **bufs; /* idle buffers */
	size_t nbufs;
	int (*pipes)[2]; /* idle pipes */
	size_t npipes;
	uint8_t *udpbuf;
	struct sendq *sq;	       /* NULL: no io_uring, each send on its own */
	bool batching;		       /* handling an epoll batch: sends wait on sq */
	struct lb_sent sent[LB_SENDQ]; /* the batch's sends, in order */
	int sent_res[LB_SENDQ];	       /* their results, once flushed */
	size_t nsent;
	uint64_t sends_batched;
};

/* --- small helpers ------------------------------------------------------------- */

static const char *proto_str(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "UDP" : "TCP";
}

/* "10.0.0.1:80", "[fd00::1]:80".  By hand, not snprintf: a UDP session's
 * key is formatted for every datagram. */
static void fmt_hostport(char *out, size_t n, const struct svc_addr *a, uint16_t port)
{
	char ip[SVC_ADDR_STRLEN], digits[5], *p = out;
	bool v6 = a->family == AF_INET6;
	size_t len, k = 0;

	addr_fmt(a, ip);
	len = strlen(ip);
	do
		digits[k++] = (char)('0' + port % 10);
	while ((port /= 10));
	if (len + k + 4 > n) { /* cannot happen with LB_WHERE_MAX */
		out[0] = 0;
		return;
	}
	if (v6)
		*p++ = '[';
	memcpy(p, ip, len);
	p += len;
	if (v6)
		*p++ = ']';
	*p++ = ':';
	while (k)
		*p++ = digits[--k];
	*p = 0;
}

static socklen_t to_sockaddr(const struct svc_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a->a, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	memcpy(&s4->sin_addr, a->a, 4);
	return sizeof(*s4);
}

static void from_sockaddr(const struct sockaddr_storage *ss, struct svc_addr *a, uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			a->family = AF_INET;
			memcpy(a->a, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->a, &s6->sin6_addr, 16);
		}
		*port = ntohs(s6->sin6_port);
		return;
	}
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	a->family = AF_INET;
	memcpy(a->a, &s4->sin_addr, 4);
	*port = ntohs(s4->sin_port);
}

static void count_add(struct lb_counters *a, const struct lb_counters *b)
{
	a->active += b->active;
	a->total += b->total;
	a->bytes_in += b->bytes_in;
	a->bytes_out += b->bytes_out;
	a->connect_failures += b->connect_failures;
}

/* epoll's data: the object, with the side and the endpoint socket's
 * generation in the low bits (objects are 16-byte aligned by malloc). */
_Static_assert(_Alignof(max_align_t) >= 16, "ev_tag keeps 4 bits in malloc'd pointers");

static uint64_t ev_tag(void *obj, int side, uint8_t gen)
{
	return (uint64_t)(uintptr_t)obj | (uint64_t)side | (uint64_t)(gen & 7) << 1;
}

static int ep_add(struct lb *lb, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u64 = tag};

	return epoll_ctl(lb->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Close so that the peer gets a RST, not a FIN. */
static void close_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* --- pools --------------------------------------------------------------------- */

static uint8_t *buf_get(struct lb *lb)
{
	return lb->nbufs ? lb->bufs[--lb->nbufs] : malloc(LB_BUF);
}

static void buf_put(struct lb *lb, uint8_t *b)
{
	if (b && lb->nbufs < LB_BUFS_KEPT)
		lb->bufs[lb->nbufs++] = b;
	else
		free(b);
}

static int pipe_get(struct lb *lb, int p[2])
{
	if (lb->npipes) {
		memcpy(p, lb->pipes[--lb->npipes], sizeof(int[2]));
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	lb->fds += 2;
	fcntl(p[0], F_SETPIPE_SZ, LB_PIPE_SIZE); /* a smaller pipe still works */
	return 0;
}

/* An empty pipe goes back to the pool; one with bytes in it is closed. */
static void pipe_put(struct lb *lb, int p[2], bool empty)
{
	if (p[0] < 0)
		return;
	if (empty && lb->npipes < LB_PIPES_KEPT) {
		memcpy(lb->pipes[lb->npipes++], p, sizeof(int[2]));
	} else {
		close(p[0]);
		close(p[1]);
		lb->fds -= 2;
	}
	p[0] = p[1] = -1;
}

/* --- endpoints and ports ---------------------------------------------------------- */

static void ep_unref(struct lb_ep *ep)
{
	if (!ep || --ep->refs > 0)
		return;
	ev_timer_stop(ep->lb->loop, &ep->drain);
	free(ep);
}

static void conn_close(struct lb_conn *c, bool reset);

static void on_drain(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lb_ep *ep = w->data;

	(void)loop;
	(void)revents;
	ep->refs++; /* the last connection's close may drop the last reference */
	while (ep->conns)
		conn_close(ep->conns, true);
	ep_unref(ep);
}

static struct lb_ep *ep_new(struct lb *lb, const struct lb_target *t)
{
	struct lb_ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	ep->refs = 1;
	ep->lb = lb;
	ep->t = *t;
	ep->salen = to_sockaddr(&t->addr, t->port, &ep->sa);
	fmt_hostport(ep->name, sizeof(ep->name), &t->addr, t->port);
	ev_timer_init(&ep->drain, on_drain, lb->cfg.drain_grace, 0);
	ep->drain.data = ep;
	return ep;
}

/* ep is no longer listed: its connections have drain_grace to finish. */
static void ep_retire(struct lb_ep *ep)
{
	ep->removed = true;
	if (ep->conns && !ev_is_active(&ep->drain))
		ev_timer_start(ep->lb->loop, &ep->drain);
}

static void aff_free(struct lb_port *p)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(&p->aff, &cur))) {
		struct lb_aff *a = ent->val;
		ep_unref(a->ep);
		free(a);
	}
	smap_free(&p->aff);
}

static void port_unref(struct lb_port *p)
{
	if (!p || --p->refs > 0)
		return;
	for (uint32_t i = 0; i < p->neps; i++)
		ep_unref(p->eps[i]);
	free(p->eps);
	aff_free(p);
	free(p);
}

/* The endpoint for a new connection or session from client.  Affinity
 * first (unless this is a retry), else the next in turn that has not failed
 * lately; when all have, the next in turn anyway until each was tried. */
/* The next endpoint in turn.  p->rr stays below neps (it restarts when
 * the endpoints shrink), so the turn never skews when a counter wraps. */
static struct lb_ep *rr_next(struct lb_port *p)
{
	if (p->rr >= p->neps)
		p->rr = 0;
	return p->eps[p->rr++];
}

static struct lb_ep *pick(struct lb_port *p, const struct svc_addr *client, unsigned tries,
			  ev_tstamp now)
{
	struct lb_aff *a = NULL;
	char key[SVC_ADDR_STRLEN];
	struct lb_ep *ep = NULL;

	if (!p->neps || tries >= p->neps)
		return NULL;
	if (p->affinity) {
		a = smap_get(&p->aff, addr_fmt(client, key));
		if (a && !tries && a->ep && !a->ep->removed && a->ep->fail_until <= now &&
		    now - a->last <= p->affinity_timeout) {
			a->last = now;
			return a->ep;
		}
	}
	for (uint32_t i = 0; i < p->neps && !ep; i++) {
		struct lb_ep *x = rr_next(p);
		if (x->fail_until <= now)
			ep = x;
	}
	if (!ep)
		ep = rr_next(p);
	if (!p->affinity)
		return ep;
	if (!a && (a = calloc(1, sizeof(*a)))) {
		memcpy(a->key, key, sizeof(a->key));
		if (smap_put(&p->aff, a->key, a)) {
			free(a);
			a = NULL;
		}
	}
	if (a) {
		ep_unref(a->ep);
		a->ep = ep;
		ep->refs++;
		a->last = now;
	}
	return ep;
}

static void aff_sweep(struct lb_port *p, ev_tstamp now)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(&p->aff, &cur))) {
		struct lb_aff *a = ent->val;
		if (now - a->last > p->affinity_timeout || a->ep->removed) {
			smap_del(&p->aff, a->key);
			ep_unref(a->ep);
			free(a);
		}
	}
}

static void ep_failed(struct lb_ep *ep, struct lb_port *p, ev_tstamp now)
{
	ep->c.connect_failures++;
	p->c.connect_failures++;
	ep->fail_until = now + LB_FAIL_HOLD;
}

/* --- TCP: accepting ------------------------------------------------------------------ */

/* Stop accepting: at the connection limit until a connection closes, out
 * of fds (retry_later) until the resume timer, as a close frees one fd
 * where a connection needs two or three. */
static size_t read_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX / 2;
	return (size_t)rl.rlim_cur;
}

/* Room for one more connection (client, endpoint socket, a pipe) with
 * LB_FD_RESERVE descriptors left over?  The limit is read again when it
 * looks short, as it may be raised (or lowered, then EMFILE says so) while
 * svcd runs. */
static bool fds_left(struct lb *lb)
{
	/* A connection awaiting its client's first bytes opens its endpoint
	 * socket later: count it now. */
	size_t need = lb->fds + lb->nfirst + lb->nlisteners + 6 + LB_FD_RESERVE;
	ev_tstamp now = now_mono();

	if (need <= lb->nofile && now - lb->nofile_at < 1.0)
		return true;
	lb->nofile = read_nofile();
	lb->nofile_at = now;
	return need <= lb->nofile;
}

static void listeners_pause(struct lb *lb, bool retry_later)
{
	lb->paused_fds |= retry_later;
	if (!lb->paused) {
		for (struct lb_listener *l = lb->tcp_ls; l; l = l->lnext)
			ev_io_stop(lb->loop, &l->io);
		lb->paused = true;
		lb->accept_paused++;
	}
	if (retry_later && !ev_is_active(&lb->resume_timer)) {
		ev_timer_set(&lb->resume_timer, LB_ACCEPT_RETRY, 0);
		ev_timer_start(lb->loop, &lb->resume_timer);
	}
}

static void listeners_resume(struct lb *lb, bool timer)
{
	if (timer) {
		lb->paused_fds = false;
		if (!fds_left(lb)) { /* still short: wait for closes, or the next look */
			lb->paused_fds = true;
			ev_timer_set(&lb->resume_timer, LB_ACCEPT_RETRY, 0);
			ev_timer_start(lb->loop, &lb->resume_timer);
			return;
		}
	}
	if (!lb->paused || lb->paused_fds || lb->nconns >= lb->cfg.max_conns)
		return;
	for (struct lb_listener *l = lb->tcp_ls; l; l = l->lnext)
		ev_io_start(lb->loop, &l->io);
	lb->paused = false;
	ev_timer_stop(lb->loop, &lb->resume_timer);
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	listeners_resume(w->data, true);
}

static void q_remove(struct lb *lb, int qi, struct lb_conn *c)
{
	struct lb_queue *q = &lb->q[qi];
	struct lb_qlink *l = &c->q[qi];

	if (!l->prev && q->head != c)
		return; /* not queued */
	if (l->prev)
		l->prev->q[qi].next = l->next;
	else
		q->head = l->next;
	if (l->next)
		l->next->q[qi].prev = l->prev;
	else
		q->tail = l->prev;
	l->prev = l->next = NULL;
}

static void q_arm(struct lb *lb, int qi)
{
	struct lb_queue *q = &lb->q[qi];
	ev_tstamp left;

	if (!q->head) {
		ev_timer_stop(lb->loop, &q->timer);
		return;
	}
	if (ev_is_active(&q->timer))
		return; /* it fires for the head, which is due first */
	left = q->head->q[qi].due - now_mono();
	ev_timer_set(&q->timer, left > 0 ? left : 0, 0);
	ev_timer_start(lb->loop, &q->timer);
}

/* Queue c on queue qi, due delay from now (the same delay for every entry
 * of a queue); already queued, it keeps its place. */
static void q_push(struct lb *lb, int qi, struct lb_conn *c, ev_tstamp delay)
{
	struct lb_queue *q = &lb->q[qi];
	struct lb_qlink *l = &c->q[qi];

	if (l->prev || q->head == c)
		return;
	l->due = now_mono() + delay;
	l->prev = q->tail;
	l->next = NULL;
	if (q->tail)
		q->tail->q[qi].next = c;
	else
		q->head = c;
	q->tail = c;
	q_arm(lb, qi);
}

static void ep_attach(struct lb_conn *c, struct lb_ep *ep)
{
	c->ep = ep;
	ep->refs++;
	c->eprev = NULL;
	c->enext = ep->conns;
	if (ep->conns)
		ep->conns->eprev = c;
	ep->conns = c;
}

static void ep_detach(struct lb_conn *c)
{
	struct lb_ep *ep = c->ep;

	if (!ep)
		return;
	if (c->eprev)
		c->eprev->enext = c->enext;
	else
		ep->conns = c->enext;
	if (c->enext)
		c->enext->eprev = c->eprev;
	if (c->counted) {
		ep->c.active--;
		c->port->c.active--;
		c->counted = false;
	}
	if (!ep->conns)
		ev_timer_stop(ep->lb->loop, &ep->drain);
	c->ep = NULL;
	ep_unref(ep);
}

static void flow_release(struct lb *lb, struct lb_flow *f)
{
	buf_put(lb, f->buf);
	f->buf = NULL;
	pipe_put(lb, f->pipe, f->inpipe == 0);
}

/* Close both sockets (the client's with a RST when reset) and queue c to be
 * freed once the current batch of events is handled. */
static void conn_close(struct lb_conn *c, bool reset)
{
	struct lb *lb = c->lb;

	if (c->state == C_DEAD)
		return;
	if (c->state == C_FIRST)
		lb->nfirst--;
	c->state = C_DEAD;
	q_remove(lb, Q_CONNECT, c);
	q_remove(lb, Q_WAIT, c);
	ep_detach(c);
	if (c->cli.fd >= 0)
		reset ? close_reset(c->cli.fd) : (void)close(c->cli.fd);
	if (c->srv.fd >= 0)
		reset ? close_reset(c->srv.fd) : (void)close(c->srv.fd);
	lb->fds -= (size_t)(c->cli.fd >= 0) + (size_t)(c->srv.fd >= 0);
	c->cli.fd = c->srv.fd = -1;
	for (int i = 0; i < 2; i++) {
		struct lb_flow *f = i ? &c->down : &c->up;
		if (f->queued)
			sendq_cancel(lb->sq, f->sq_i);
		f->queued = false;
	}
	flow_release(lb, &c->up);
	flow_release(lb, &c->down);
	if (c->prev)
		c->prev->next = c->next;
	else
		lb->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	lb->nconns--;
	c->dead_next = NULL; /* oldest first */
	c->dead_at = now_mono();
	if (lb->dead_tail)
		lb->dead_tail->dead_next = c;
	else
		lb->dead = c;
	lb->dead_tail = c;
	listeners_resume(lb, false);
}

static void conn_connected(struct lb_conn *c);
static void conn_pump(struct lb_conn *c);
static bool pending(const struct lb_flow *f);
static int flow_in(struct lb_conn *c, struct lb_flow *f, struct lb_half *src);
static int flow_out(struct lb_conn *c, struct lb_flow *f, struct lb_half *dst, bool up, int more);

/* The client's first bytes, read before connecting, go out at once: a
 * local endpoint has usually answered the SYN before connect() returns,
 * and a send to a socket still connecting just says EAGAIN.  Returns -1
 * when the endpoint refused them (the attempt failed, nothing was sent),
 * 1 when the connection is open, 0 to wait for it. */
static int send_early(struct lb_conn *c)
{
	size_t before = c->up.len - c->up.off;

	c->srv.wr = true;
	if (flow_out(c, &c->up, &c->srv, true, 0))
		return -1;
	return !pending(&c->up) || c->up.len - c->up.off < before;
}

/* Start a connection to the next endpoint; on none left, reset the client. */
static void conn_connect(struct lb_conn *c)
{
	struct lb *lb = c->lb;
	ev_tstamp now = now_mono();
	struct lb_ep *ep;
	int fd, one = 1;

	while ((ep = pick(c->port, &c->client, c->tries, now))) {
		c->tries++;
		fd = socket(ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			listeners_pause(lb, true); /* out of fds: the client gets a reset */
			break;
		}
		lb->fds++;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* With the client's bytes in hand, the handshake's last ACK waits
		 * to ride with them (one packet less, and the endpoint accepts and
		 * reads in one wake-up), as HAProxy does.  Not without: a
		 * server-first protocol would wait for the delayed ACK. */
		if (pending(&c->up))
			setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &(int){0}, sizeof(int));
		c->gen++;
		if ((connect(fd, (struct sockaddr *)&ep->sa, ep->salen) && errno != EINPROGRESS) ||
		    ep_add(lb, fd, ev_tag(c, SRV, c->gen))) {
			close(fd);
			lb->fds--;
			ep_failed(ep, c->port, now);
			continue;
		}
		c->srv = (struct lb_half){.fd = fd};
		ep_attach(c, ep);
		q_push(lb, Q_CONNECT, c, lb->cfg.connect_timeout);
		if (!pending(&c->up))
			return;
		switch (send_early(c)) {
		case 1:
			conn_connected(c);
			conn_pump(c);
			return;
		case 0:
			c->srv.wr = false;
			return;
		default: /* refused: the next endpoint, the bytes still unsent */
			q_remove(lb, Q_CONNECT, c);
			ep_detach(c);
			close(fd);
			lb->fds--;
			c->srv.fd = -1;
			ep_failed(ep, c->port, now);
			continue;
		}
	}
	conn_close(c, true);
}

/* The attempt in progress failed: the next endpoint. */
static void conn_retry(struct lb_conn *c)
{
	struct lb *lb = c->lb;

	ep_failed(c->ep, c->port, now_mono());
	q_remove(lb, Q_CONNECT, c);
	ep_detach(c);
	close(c->srv.fd);
	lb->fds--;
	c->srv.fd = -1;
	conn_connect(c);
}

static void on_connect_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lb *lb = w->data;
	ev_tstamp now = now_mono();

	(void)revents;
	while (lb->q[Q_CONNECT].head && lb->q[Q_CONNECT].head->q[Q_CONNECT].due <= now + 0.001)
		conn_retry(lb->q[Q_CONNECT].head);
	q_arm(lb, Q_CONNECT);
}

static void conn_start(struct lb *lb, struct lb_listener *l, int fd,
		       const struct sockaddr_storage *peer)
{
	struct lb_conn *c = calloc(1, sizeof(*c));
	uint16_t port;

	if (!c || ep_add(lb, fd, ev_tag(c, CLI, 0))) {
		free(c);
		close_reset(fd);
		return;
	}
	lb->fds++;
	c->kind = K_CONN;
	c->lb = lb;
	c->cli.fd = fd;
	c->srv.fd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	from_sockaddr(peer, &c->client, &port);
	c->port = l->port;
	l->port->refs++;
	/* The client's events only set its flags until the endpoint answers. */
	c->next = lb->conns;
	if (lb->conns)
		lb->conns->prev = c;
	lb->conns = c;
	lb->nconns++;
	/* The client's first bytes are awaited (LB_WAIT at most): the endpoint
	 * then gets them with the handshake's last ACK and reads them as it
	 * accepts.  No read here: they seldom follow the handshake's ACK that
	 * fast, and bytes already in are reported by the epoll_ctl above. */
	c->state = C_FIRST;
	lb->nfirst++;
	q_push(lb, Q_WAIT, c, LB_WAIT);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lb_listener *l = w->data;
	struct lb *lb = l->lb;

	(void)loop;
	(void)revents;
	for (int i = 0; i < LB_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd;

		if (lb->nconns >= lb->cfg.max_conns) {
			listeners_pause(lb, false); /* a close resumes */
			return;
		}
		if (!fds_left(lb)) {
			listeners_pause(lb, true);
			return;
		}
		fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				lb->nofile = 0; /* the limit may have been lowered: read it again */
				listeners_pause(lb, true);
			}
			return;
		}
		conn_start(lb, l, fd, &peer);
	}
}

/* --- TCP: relaying ----------------------------------------------------------------------- */

static bool pending(const struct lb_flow *f)
{
	return f->inpipe || (f->buf && f->off < f->len);
}

static void account(struct lb_conn *c, bool up, size_t n)
{
	if (up) {
		c->ep->c.bytes_in += n;
		c->port->c.bytes_in += n;
	} else {
		c->ep->c.bytes_out += n;
		c->port->c.bytes_out += n;
	}
}

/* Take the result of a send of f's buffer to dst: bytes, or -errno.
 * Returns 0 or -errno (dst failed). */
static int flow_sent(struct lb_conn *c, struct lb_flow *f, struct lb_half *dst, bool up, ssize_t n)
{
	if (n < 0) {
		if (n == -EAGAIN)
			dst->wr = false;
		return n == -EAGAIN || n == -EINTR || n == -ECANCELED ? 0 : (int)n;
	}
	account(c, up, (size_t)n);
	f->off += (uint32_t)n;
	if (f->off < f->len) {
		dst->wr = false; /* a short write: the socket is full */
	} else {
		buf_put(c->lb, f->buf); /* idle connections hold no buffer */
		f->buf = NULL;
		f->off = f->len = 0;
	}
	return 0;
}

/* Write what f holds to dst; more is MSG_MORE when our FIN follows at
 * once (it then rides on the last bytes' packet).  In an epoll batch, an
 * open connection's buffer waits on lb->sq instead, for flush_sends.
 * Returns 0 (all out or queued, or dst is full) or -errno (dst failed). */
static int flow_out(struct lb_conn *c, struct lb_flow *f, struct lb_half *dst, bool up, int more)
{
	struct lb *lb = c->lb;

	if (f->queued)
		return 0;
	while (pending(f) && dst->wr) {
		ssize_t n;
		if (f->inpipe) {
			n = splice(f->pipe[0], NULL, dst->fd, NULL, f->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					return -errno;
				dst->wr = false;
				return 0;
			}
			account(c, up, (size_t)n);
			f->inpipe -= (size_t)n;
			if (f->inpipe)
				dst->wr = false; /* a short write: the socket is full */
			continue;
		}
		if (lb->batching && !more && c->state == C_OPEN &&
		    (f->sq_i = sendq_add(lb->sq, dst->fd, f->buf + f->off, f->len - f->off,
					 MSG_NOSIGNAL)) >= 0) {
			lb->sent[lb->nsent++] = (struct lb_sent){.c = c, .up = up};
			f->queued = true;
			return 0;
		}
		n = send(dst->fd, f->buf + f->off, f->len - f->off,
			 MSG_NOSIGNAL | MSG_DONTWAIT | more);
		int err = flow_sent(c, f, dst, up, n < 0 ? -errno : n);
		if (err)
			return err;
	}
	return 0;
}

/* Read once from src into the empty f.  Returns 0 (read, EOF or nothing
 * there) or -errno (src failed). */
static int flow_in(struct lb_conn *c, struct lb_flow *f, struct lb_half *src)
{
	ssize_t n;

	if (f->want_splice && f->pipe[0] < 0 && pipe_get(c->lb, f->pipe))
		f->want_splice = false; /* no pipe (out of fds): stay buffered */
	if (f->pipe[0] >= 0) {
		n = splice(src->fd, NULL, f->pipe[1], NULL, LB_PIPE_SIZE,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->inpipe = (size_t)n;
	} else {
		if (!f->buf && !(f->buf = buf_get(c->lb)))
			return -ENOMEM;
		n = recv(src->fd, f->buf, LB_BUF, MSG_DONTWAIT);
		if (n > 0) {
			f->off = 0;
			f->len = (uint32_t)n;
			if (n == LB_BUF)
				f->want_splice = true;
			else if (src->fin)
				src->eof = true; /* emptied after the FIN: a read would say 0 */
			else if (!src->hup)
				src->rd = false; /* a short read emptied the socket */
		}
	}
	if (n <= 0 && f->buf && !f->len) { /* nothing read: hold no buffer */
		buf_put(c->lb, f->buf);
		f->buf = NULL;
	}
	if (n == 0) {
		src->eof = true;
	} else if (n < 0) {
		if (errno == EAGAIN)
			src->rd = false;
		else if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* c stops waiting for its client's first bytes and connects, with them
 * when they came. */
static void first_connect(struct lb_conn *c)
{
	q_remove(c->lb, Q_WAIT, c);
	c->lb->nfirst--;
	c->state = C_CONNECTING;
	conn_connect(c);
}

static void shut_later(struct lb_conn *c, struct lb_half *h)
{
	h->shut_due = true;
	q_push(c->lb, Q_WAIT, c, LB_WAIT);
}

static void on_wait_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lb *lb = w->data;
	ev_tstamp now = now_mono();

	(void)loop;
	(void)revents;
	while (lb->q[Q_WAIT].head && lb->q[Q_WAIT].head->q[Q_WAIT].due <= now + 0.0005) {
		struct lb_conn *c = lb->q[Q_WAIT].head;
		q_remove(lb, Q_WAIT, c);
		if (c->state == C_FIRST) { /* the client is silent: connect without its bytes */
			first_connect(c);
			continue;
		}
		for (int i = 0; i < 2; i++) {
			struct lb_half *h = i ? &c->srv : &c->cli;
			if (h->shut_due && !h->eof)
				shutdown(h->fd, SHUT_WR);
			h->shut_due = false;
		}
	}
	q_arm(lb, Q_WAIT);
}

/* Move what can move from src to dst.  Returns 0, or -1 when src failed
 * (reset), -2 when dst did. */
static int flow_run(struct lb_conn *c, struct lb_flow *f, struct lb_half *src, struct lb_half *dst,
		    bool up)
{
	for (;;) {
		/* The source's last bytes with its EOF: our FIN goes with them. */
		bool last = src->eof && !dst->shut && !dst->eof && f->buf && pending(f);

		if (flow_out(c, f, dst, up, last ? MSG_MORE : 0))
			return -2;
		if (pending(f))
			return 0; /* backpressure: read no more until dst takes this */
		if (src->eof) {
			/* Half-close: with the last bytes when they came with the EOF (one
			 * packet), else a moment later (see shut_later).  A peer that closed
			 * its own side gets our FIN from close() once the other direction is
			 * done. */
			if (last)
				shutdown(dst->fd, SHUT_WR);
			else if (!dst->shut && !dst->eof)
				shut_later(c, dst);
			dst->shut = true;
			return 0;
		}
		if (!src->rd)
			return 0;
		if (flow_in(c, f, src))
			return -1;
		if (!pending(f) && !src->eof)
			return 0;
	}
}

static void conn_pump(struct lb_conn *c)
{
	if (flow_run(c, &c->up, &c->cli, &c->srv, true) ||
	    flow_run(c, &c->down, &c->srv, &c->cli, false)) {
		conn_close(c, true); /* a reset (or a write error) on one side resets both */
		return;
	}
	if (c->cli.eof && c->srv.eof && c->cli.shut && c->srv.shut)
		conn_close(c, false);
}

static void conn_connected(struct lb_conn *c)
{
	q_remove(c->lb, Q_CONNECT, c);
	q_arm(c->lb, Q_CONNECT);
	c->state = C_OPEN;
	c->counted = true;
	c->ep->c.active++;
	c->ep->c.total++;
	c->port->c.active++;
	c->port->c.total++;
}

static void conn_event(struct lb_conn *c, int side, uint8_t gen, uint32_t events)
{
	struct lb_half *h = side == SRV ? &c->srv : &c->cli;
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == C_DEAD || (side == SRV && gen != (c->gen & 7)))
		return; /* a socket closed earlier in this batch */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		h->rd = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		h->hup = true;
	if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == EPOLLRDHUP)
		h->fin = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		h->wr = true;
	if (c->state == C_OPEN && (events & EPOLLERR) &&
	    !getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) && err) {
		/* A reset, maybe on a side we no longer read (it sent its FIN
		 * earlier): reset the other side too. */
		conn_close(c, true);
		return;
	}
	if (c->state == C_FIRST) { /* only the client's socket is open */
		if (flow_in(c, &c->up, &c->cli))
			conn_close(c, true);
		else if (pending(&c->up) || c->cli.eof)
			first_connect(c);
		return;
	}
	if (c->state == C_CONNECTING) {
		if (side != SRV)
			return; /* the client's bytes wait in its socket */
		if (events & (EPOLLERR | EPOLLHUP)) {
			getsockopt(c->srv.fd, SOL_SOCKET, SO_ERROR, &err, &len);
			conn_retry(c);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		conn_connected(c);
	}
	conn_pump(c);
}

/* --- UDP ----------------------------------------------------------------------------------- */

static void udp_close(struct lb_udp *u)
{
	struct lb *lb = u->lb;

	if (u->dead)
		return;
	u->dead = true;
	smap_del(&u->l->sessions, u->key);
	close(u->fd);
	lb->fds--;
	u->fd = -1;
	u->ep->c.active--;
	u->l->port->c.active--;
	u->ep->nsessions--;
	ep_unref(u->ep);
	u->ep = NULL;
	u->dead_next = NULL;
	u->dead_at = now_mono();
	if (lb->dead_udp_tail)
		lb->dead_udp_tail->dead_next = u;
	else
		lb->dead_udp = u;
	lb->dead_udp_tail = u;
}

static struct lb_udp *udp_session(struct lb_listener *l, const struct sockaddr_storage *peer,
				  socklen_t peerlen, const char *key)
{
	struct lb *lb = l->lb;
	ev_tstamp now = now_mono();
	struct svc_addr client;
	struct lb_udp *u;
	struct lb_ep *ep;
	uint16_t port;
	unsigned tries = 0;

	from_sockaddr(peer, &client, &port);
	while ((ep = pick(l->port, &client, tries++, now))) {
		int fd;

		if (!fds_left(lb))
			return NULL; /* dropped: the reserve is for the rest of svcd */
		fd = socket(ep->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return NULL;
		if (connect(fd, (struct sockaddr *)&ep->sa, ep->salen)) {
			close(fd);
			ep_failed(ep, l->port, now);
			continue;
		}
		if (!(u = calloc(1, sizeof(*u)))) {
			close(fd);
			return NULL;
		}
		u->kind = K_UDP;
		u->lb = lb;
		u->l = l;
		u->fd = fd;
		memcpy(&u->peer, peer, peerlen);
		u->peerlen = peerlen;
		snprintf(u->key, sizeof(u->key), "%s", key);
		if (smap_put(&l->sessions, u->key, u) || ep_add(lb, fd, ev_tag(u, 0, 0))) {
			smap_del(&l->sessions, u->key);
			close(fd);
			free(u);
			return NULL;
		}
		u->ep = ep;
		lb->fds++;
		ep->refs++;
		ep->nsessions++;
		ep->c.active++;
		ep->c.total++;
		l->port->c.active++;
		l->port->c.total++;
		return u;
	}
	return NULL;
}

static void udp_key(const struct sockaddr_storage *peer, char *key, size_t n)
{
	struct svc_addr a;
	uint16_t port;

	from_sockaddr(peer, &a, &port);
	fmt_hostport(key, n, &a, port);
}

/* Datagrams from clients: each to its session's endpoint. */
static void on_udp_listener(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lb_listener *l = w->data;
	struct lb *lb = l->lb;

	(void)loop;
	(void)revents;
	for (int i = 0; i < LB_UDP_BATCH; i++) {
		union {
			char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} ctl;
		struct sockaddr_storage peer;
		struct iovec iov = {.iov_base = lb->udpbuf, .iov_len = LB_UDP_MAX};
		struct msghdr mh = {.msg_name = &peer,
				    .msg_namelen = sizeof(peer),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		char key[LB_WHERE_MAX];
		struct lb_udp *u;
		ssize_t n = recvmsg(l->fd, &mh, MSG_DONTWAIT);

		if (n < 0)
			return; /* EAGAIN, or an ICMP error about an earlier reply */
		udp_key(&peer, key, sizeof(key));
		for (int attempt = 0; attempt < 2; attempt++) {
			if (!(u = smap_get(&l->sessions, key)) &&
			    !(u = udp_session(l, &peer, mh.msg_namelen, key)))
				break; /* no endpoint: dropped, as a datagram may be */
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
				if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
					memcpy(&u->pi, CMSG_DATA(cm), sizeof(u->pi));
			u->last = now_mono();
			if (send(u->fd, lb->udpbuf, (size_t)n, MSG_DONTWAIT) >= 0) {
				u->ep->c.bytes_in += (uint64_t)n;
				l->port->c.bytes_in += (uint64_t)n;
				break;
			}
			if (errno != ECONNREFUSED)
				break;
			/* An earlier datagram was refused: that endpoint is gone. */
			ep_failed(u->ep, l->port, now_mono());
			udp_close(u);
		}
	}
}

/* Datagrams from an endpoint: back to the client, from the address it used. */
static void udp_event(struct lb_udp *u)
{
	struct lb *lb = u->lb;

	/* Edge-triggered: read to EAGAIN, or the rest would wait for the next
	 * datagram. */
	while (!u->dead) {
		ssize_t n = recv(u->fd, lb->udpbuf, LB_UDP_MAX, MSG_DONTWAIT);
		union {
			char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = lb->udpbuf};
		struct msghdr mh = {.msg_name = &u->peer,
				    .msg_namelen = u->peerlen,
				    .msg_iov = &iov,
				    .msg_iovlen = 1};

		if (n < 0) {
			if (errno == ECONNREFUSED) {
				ep_failed(u->ep, u->l->port, now_mono());
				udp_close(u); /* the next datagram picks another endpoint */
			}
			if (errno == EAGAIN || errno == ECONNREFUSED)
				return;
			continue; /* an ICMP error (unreachable...): datagrams may follow */
		}
		iov.iov_len = (size_t)n;
		if (u->l->wildcard && u->pi.ipi_addr.s_addr) {
			struct cmsghdr *cm;
			struct in_pktinfo pi = {.ipi_spec_dst = u->pi.ipi_addr};
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		}
		u->last = now_mono();
		if (sendmsg(u->l->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
			u->ep->c.bytes_out += (uint64_t)n;
			u->l->port->c.bytes_out += (uint64_t)n;
		}
	}
}

static void udp_close_all(struct lb_listener *l)
{
	struct smap_ent *ent;
	size_t cur = 0;

	while ((ent = smap_next(&l->sessions, &cur)))
		udp_close(ent->val);
	smap_free(&l->sessions);
}

/* --- the event set --------------------------------------------------------------------------- */

/* Closed objects are freed a second after their close (all, with force):
 * a socket stays in the epoll set while another process holds it (the
 * child of a fork, until it closes what it inherited), and an event of
 * that window must find a dead object, not freed memory. */
#define LB_QUARANTINE 1.0

static void free_dead_force(struct lb *lb, bool force)
{
	ev_tstamp now = now_mono();

	while (lb->dead && (force || now - lb->dead->dead_at >= LB_QUARANTINE)) {
		struct lb_conn *c = lb->dead;
		if (!(lb->dead = c->dead_next))
			lb->dead_tail = NULL;
		port_unref(c->port);
		free(c);
	}
	while (lb->dead_udp && (force || now - lb->dead_udp->dead_at >= LB_QUARANTINE)) {
		struct lb_udp *u = lb->dead_udp;
		if (!(lb->dead_udp = u->dead_next))
			lb->dead_udp_tail = NULL;
		free(u);
	}
}

static void free_dead(struct lb *lb)
{
	free_dead_force(lb, false);
}

/* Make the sends an epoll batch queued, then go on with each connection
 * as flow_out would have (a full socket, a reset, the FIN after the last
 * bytes, the next read).  Every result is taken before any connection
 * moves on, so none is queued meanwhile.  Should the ring fail, the sends
 * it did not make are made one by one from then on. */
static void flush_sends(struct lb *lb)
{
	if (!lb->nsent)
		return;
	lb->batching = false;
	if (sendq_flush(lb->sq, lb->sent_res)) {
		sendq_close(lb->sq);
		lb->sq = NULL;
	}
	for (size_t i = 0; i < lb->nsent; i++) {
		struct lb_sent *s = &lb->sent[i];
		struct lb_flow *f = s->up ? &s->c->up : &s->c->down;
		int *res = &lb->sent_res[i];
		if (s->c->state == C_DEAD) { /* closed in the batch: cancelled */
			s->c = NULL;
			continue;
		}
		f->queued = false;
		lb->sends_batched += *res != -ECANCELED;
		*res = flow_sent(s->c, f, s->up ? &s->c->srv : &s->c->cli, s->up, *res);
	}
	for (size_t i = 0; i < lb->nsent; i++) {
		struct lb_sent *s = &lb->sent[i];
		if (!s->c || s->c->state == C_DEAD) /* closed by its other direction's result */
			continue;
		if (lb->sent_res[i])
			conn_close(s->c, true); /* a reset (or a write error) resets both */
		else
			conn_pump(s->c);
	}
	lb->nsent = 0;
	lb->batching = lb->sq != NULL;
}

static void on_events(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lb *lb = w->data;
	struct epoll_event evs[LB_EVENTS];
	int n;

	(void)loop;
	(void)revents;
	lb->batching = lb->sq != NULL;
	for (int round = 0; round < 4; round++) {
		n = epoll_wait(lb->epfd, evs, LB_EVENTS, 0);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			void *obj = (void *)(uintptr_t)(tag & ~(uint64_t)15);
			if (*(uint8_t *)obj == K_UDP) {
				if (!((struct lb_udp *)obj)->dead)
					udp_event(obj);
				continue;
			}
			conn_event(obj, (int)(tag & 1), (uint8_t)(tag >> 1 & 7), evs[i].events);
		}
		flush_sends(lb);
		free_dead(lb);
		if (n < LB_EVENTS)
			break;
	}
	lb->batching = false;
}

/* Sessions idle past udp_timeout, or whose endpoint was removed, end;
 * affinities past their timeout are forgotten now and then. */
static void sweep_svc(struct lb *lb, struct lb_svc *s, ev_tstamp now, bool aff)
{
	struct smap_ent *ent;

	for (struct lb_listener *l = s->ls; l; l = l->next) {
		size_t cur = 0;
		while ((ent = smap_next(&l->sessions, &cur))) {
			struct lb_udp *u = ent->val;
			if (now - u->last > lb->cfg.udp_timeout || u->ep->removed)
				udp_close(u);
		}
	}
	for (uint32_t i = 0; aff && i < s->nports; i++)
		aff_sweep(s->ports[i], now);
}

static void sweep(struct lb *lb)
{
	ev_tstamp now = now_mono();
	bool aff = now - lb->aff_swept >= LB_AFF_SWEEP;
	struct smap_ent *se;
	size_t sc = 0;

	while ((se = smap_next(&lb->svcs, &sc)))
		sweep_svc(lb, se->val, now, aff);
	if (aff)
		lb->aff_swept = now;
	free_dead(lb);
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	sweep(w->data);
}

/* --- listeners ----------------------------------------------------------------------------- */

static void listener_close(struct lb_listener *l)
{
	struct lb *lb = l->lb;

	ev_io_stop(lb->loop, &l->io);
	if (l->proto == IPPROTO_TCP) {
		if (l->lprev)
			l->lprev->lnext = l->lnext;
		else if (lb->tcp_ls == l)
			lb->tcp_ls = l->lnext;
		if (l->lnext)
			l->lnext->lprev = l->lprev;
	} else {
		udp_close_all(l);
	}
	if (l->fd >= 0)
		close(l->fd);
	lb->nlisteners--;
	port_unref(l->port);
	free(l);
}

/* A listener for ident on addr:port (port 0: the kernel's pick). */
static int listener_open(struct lb *lb, struct lb_port *p, const struct svc_addr *addr,
			 uint16_t port, const char *ident, struct lb_listener **out,
			 struct svc_err *e)
{
	struct lb_listener *l = calloc(1, sizeof(*l));
	struct sockaddr_storage ss;
	socklen_t len = to_sockaddr(addr, port, &ss);
	bool udp = p->proto == IPPROTO_UDP;
	int one = 1;

	if (!l)
		return svc_errf(e, ENOMEM, "out of memory");
	l->lb = lb;
	l->proto = p->proto;
	snprintf(l->ident, sizeof(l->ident), "%s", ident);
	l->fd = socket(ss.ss_family,
		       (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		free(l);
		return svc_errf(e, errno, "%s: socket: %s", ident, strerror(errno));
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!udp) /* accepted sockets inherit it */
		setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->wildcard = udp && ss.ss_family == AF_INET &&
		      ((struct sockaddr_in *)&ss)->sin_addr.s_addr == INADDR_ANY;
	if (l->wildcard)
		setsockopt(l->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&ss, len) || (!udp && listen(l->fd, LB_BACKLOG))) {
		int err = errno;
		close(l->fd);
		free(l);
		return svc_errf(e, err, "listening on %s: %s", ident, strerror(err));
	}
	len = sizeof(ss);
	getsockname(l->fd, (struct sockaddr *)&ss, &len);
	{
		struct svc_addr a;
		uint16_t bound;
		char hp[LB_WHERE_MAX];
		from_sockaddr(&ss, &a, &bound);
		fmt_hostport(hp, sizeof(hp), &a, bound);
		snprintf(l->where, sizeof(l->where), "%s/%s", hp, proto_str(p->proto));
	}
	ev_io_init(&l->io, udp ? on_udp_listener : on_accept, l->fd, EV_READ);
	l->io.data = l;
	l->port = p;
	p->refs++;
	lb->nlisteners++;
	*out = l;
	return 0;
}

/* Start a listener that was opened: it takes connections from now on. */
static void listener_start(struct lb *lb, struct lb_listener *l)
{
	if (l->proto == IPPROTO_TCP) {
		l->lnext = lb->tcp_ls;
		if (lb->tcp_ls)
			lb->tcp_ls->lprev = l;
		lb->tcp_ls = l;
		if (lb->paused)
			return;
	}
	ev_io_start(lb->loop, &l->io);
}

/* --- services ------------------------------------------------------------------------------ */

static void vip_unref(struct lb *lb, const struct svc_addr *a)
{
	char key[SVC_ADDR_STRLEN];
	struct lb_vip *v = smap_get(&lb->vips, addr_fmt(a, key));
	struct svc_err e = {0};

	if (!v || --v->refs > 0)
		return;
	smap_del(&lb->vips, v->key);
	if (v->owned) /* not an address the node had before: gone already is fine */
		localaddr_del(v->key, &e);
	free(v);
}

static int vip_ref(struct lb *lb, const struct svc_addr *a, struct svc_err *e)
{
	char key[SVC_ADDR_STRLEN];
	struct lb_vip *v = smap_get(&lb->vips, addr_fmt(a, key));
	int r;

	if (v) {
		v->refs++;
		return 0;
	}
	if (!(v = calloc(1, sizeof(*v))))
		return svc_errf(e, ENOMEM, "out of memory");
	memcpy(v->key, key, sizeof(v->key));
	if ((r = localaddr_add_label(v->key, LB_ADDR_LABEL, &v->owned, e))) {
		free(v);
		return r;
	}
	if (smap_put(&lb->vips, v->key, v)) {
		struct svc_err ignored = {0};
		if (v->owned)
			localaddr_del(v->key, &ignored);
		free(v);
		return svc_errf(e, ENOMEM, "out of memory");
	}
	v->refs = 1;
	return 0;
}

static struct lb_port *port_new(struct lb *lb, const struct lb_port_spec *ps)
{
	struct lb_port *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->refs = 1;
	p->lb = lb;
	p->proto = ps->proto;
	p->port = ps->port;
	return p;
}

/* The new endpoint list of p, reusing the endpoints it keeps (their
 * counters and connections go on).  Returns the array or NULL. */
static struct lb_ep **eps_build(struct lb *lb, const struct lb_port *p,
				const struct lb_port_spec *ps)
{
	struct lb_ep **v = calloc(ps->ntargets ? ps->ntargets : 1, sizeof(*v));

	for (uint32_t i = 0; v && i < ps->ntargets; i++) {
		const struct lb_target *t = &ps->targets[i];
		for (uint32_t j = 0; p && j < p->neps && !v[i]; j++)
			if (p->eps[j]->t.port == t->port && addr_eq(&p->eps[j]->t.addr, &t->addr)) {
				v[i] = p->eps[j];
				v[i]->refs++;
			}
		if (!v[i] && !(v[i] = ep_new(lb, t))) {
			while (i--)
				ep_unref(v[i]);
			free(v);
			return NULL;
		}
	}
	return v;
}

/* Put the new list in: endpoints no longer listed drain. */
static void eps_swap(struct lb_port *p, struct lb_ep **v, uint32_t n)
{
	for (uint32_t j = 0; j < p->neps; j++) {
		bool kept = false;
		for (uint32_t i = 0; i < n && !kept; i++)
			kept = v[i] == p->eps[j];
		if (!kept)
			ep_retire(p->eps[j]);
		ep_unref(p->eps[j]);
	}
	free(p->eps);
	p->eps = v;
	p->neps = n;
}

static void svc_free(struct lb *lb, struct lb_svc *s)
{
	while (s->ls) {
		struct lb_listener *l = s->ls;
		s->ls = l->next;
		listener_close(l);
	}
	for (uint32_t i = 0; i < s->naddrs; i++)
		vip_unref(lb, &s->addrs[i]);
	for (uint32_t i = 0; i < s->nports; i++) {
		eps_swap(s->ports[i], NULL, 0); /* their connections drain */
		port_unref(s->ports[i]);
	}
	free(s->addrs);
	free(s->ports);
	free(s->key);
	free(s);
}

static struct lb_listener *take_listener(struct lb_svc *old, const char *ident)
{
	for (struct lb_listener **pp = old ? &old->ls : NULL; pp && *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->ident, ident)) {
			struct lb_listener *l = *pp;
			*pp = l->next;
			l->next = NULL;
			return l;
		}
	return NULL;
}

static struct lb_port *find_port(struct lb_svc *old, const struct lb_port_spec *ps)
{
	for (uint32_t i = 0; old && i < old->nports; i++)
		if (old->ports[i]->proto == ps->proto && old->ports[i]->port == ps->port)
			return old->ports[i];
	return NULL;
}

/* The listeners port p (spec ps) wants: those the old service has move to
 * *kept (to serve p once committed), the others are opened into *fresh. */
static int plan_listeners(struct lb *lb, const struct lb_service_spec *spec,
			  const struct lb_port_spec *ps, struct lb_port *p, struct lb_svc *old,
			  struct lb_listener **kept, struct lb_listener **fresh, struct svc_err *e)
{
	static const struct svc_addr any = {.family = AF_INET},
				     lo = {.family = AF_INET, .a = {127, 0, 0, 1}};
	uint32_t n = lb->cfg.loopback_only ? 1 : spec->naddrs;
	char ident[LB_WHERE_MAX], hp[LB_WHERE_MAX];
	int r;

	for (uint32_t i = 0; i < n + (ps->node_port ? 1 : 0); i++) {
		bool np = i == n;
		const struct svc_addr *a = np			   ? &any
					   : lb->cfg.loopback_only ? &lo
								   : &spec->addrs[i];
		uint16_t port = np ? ps->node_port : lb->cfg.loopback_only ? 0 : ps->port;
		struct lb_listener *l;

		fmt_hostport(hp, sizeof(hp), a, np ? ps->node_port : ps->port);
		snprintf(ident, sizeof(ident), "%s/%s", hp, proto_str(ps->proto));
		if ((l = take_listener(old, ident))) {
			l->next_port = p;
			l->next = *kept;
			*kept = l;
			continue;
		}
		if ((r = listener_open(lb, p, a, port, ident, &l, e)))
			return r;
		l->next = *fresh;
		*fresh = l;
	}
	return 0;
}

/* Drop the references a failed plan holds. */
static void plan_abort(struct lb *lb, struct lb_svc *old, const struct lb_service_spec *spec,
		       struct lb_port **ports, struct lb_ep ***eps, uint32_t naddrs,
		       struct lb_listener *kept, struct lb_listener *fresh)
{
	while (fresh) {
		struct lb_listener *l = fresh;
		fresh = l->next;
		listener_close(l);
	}
	while (kept) { /* back to the old service, unchanged */
		struct lb_listener *l = kept;
		kept = l->next;
		l->next_port = NULL;
		l->next = old->ls;
		old->ls = l;
	}
	for (uint32_t i = 0; ports && i < spec->nports; i++) {
		if (eps && eps[i]) {
			for (uint32_t j = 0; j < spec->ports[i].ntargets; j++)
				ep_unref(eps[i][j]);
			free(eps[i]);
		}
		port_unref(ports[i]);
	}
	for (uint32_t i = 0; i < naddrs; i++)
		vip_unref(lb, &spec->addrs[i]);
	free(ports);
	free(eps);
}

/* Put a successful plan in place of what s had.  Cannot fail. */
static void plan_commit(struct lb *lb, struct lb_svc *s, const struct lb_service_spec *spec,
			struct lb_port **ports, struct lb_ep ***eps, struct svc_addr *addrs,
			uint32_t naddrs, struct lb_listener *kept, struct lb_listener *fresh,
			struct lb_port **keep)
{
	while (s->ls) { /* what the new spec no longer has */
		struct lb_listener *l = s->ls;
		s->ls = l->next;
		listener_close(l);
	}
	for (uint32_t i = 0; i < s->naddrs; i++)
		vip_unref(lb, &s->addrs[i]);
	free(s->addrs);
	s->addrs = addrs;
	s->naddrs = naddrs;
	for (uint32_t i = 0; i < s->nports; i++) {
		bool still = false;
		for (uint32_t j = 0; j < spec->nports && !still; j++)
			still = ports[j] == s->ports[i];
		if (!still)
			eps_swap(s->ports[i], NULL, 0); /* its connections drain */
		port_unref(s->ports[i]);
	}
	free(s->ports);
	s->ports = keep;
	s->nports = 0;
	for (uint32_t i = 0; i < spec->nports; i++) {
		const struct lb_port_spec *ps = &spec->ports[i];
		struct lb_port *p = ports[i];
		if (!p)
			continue;
		eps_swap(p, eps[i], ps->ntargets);
		p->node_port = ps->node_port;
		if (p->affinity && !spec->affinity)
			aff_free(p);
		p->affinity = spec->affinity;
		p->affinity_timeout = spec->affinity_timeout;
		s->ports[s->nports++] = p; /* the plan's reference */
	}
	while (kept) {
		struct lb_listener *l = kept;
		kept = l->next;
		if (l->next_port != l->port) {
			if (l->proto == IPPROTO_UDP) /* they count against the old port */
				udp_close_all(l);
			port_unref(l->port);
			l->port = l->next_port;
			l->port->refs++;
		}
		l->next_port = NULL;
		l->next = s->ls;
		s->ls = l;
	}
	while (fresh) {
		struct lb_listener *l = fresh;
		fresh = l->next;
		l->next = s->ls;
		s->ls = l;
		listener_start(lb, l);
	}
	free(ports);
	free(eps);
}

int lb_service_set(struct lb *lb, const char *key, const struct lb_service_spec *spec,
		   struct svc_err *e)
{
	struct lb_svc *old = smap_get(&lb->svcs, key), *s = old;
	struct lb_listener *fresh = NULL, *kept = NULL;
	uint32_t naddrs = 0, n = spec ? spec->nports : 0;
	struct lb_port **ports = NULL, **keep = NULL;
	struct svc_addr *addrs = NULL;
	struct lb_ep ***eps = NULL;
	int r = 0;

	if (!spec) {
		if (old) {
			smap_del(&lb->svcs, key);
			svc_free(lb, old);
			free_dead(lb);
		}
		return 0;
	}
	ports = calloc(n + 1, sizeof(*ports));
	eps = calloc(n + 1, sizeof(*eps));
	keep = calloc(n + 1, sizeof(*keep));
	addrs = calloc(spec->naddrs + 1, sizeof(*addrs));
	if (!ports || !eps || !keep || !addrs) {
		r = svc_errf(e, ENOMEM, "out of memory");
		goto fail;
	}
	/* Addresses first: the listeners bind to them. */
	for (; !lb->cfg.loopback_only && naddrs < spec->naddrs; naddrs++) {
		if ((r = vip_ref(lb, &spec->addrs[naddrs], e)))
			goto fail;
		addrs[naddrs] = spec->addrs[naddrs];
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct lb_port_spec *ps = &spec->ports[i];
		struct lb_port *p;

		if (ps->proto != IPPROTO_TCP && ps->proto != IPPROTO_UDP)
			continue; /* SCTP: not relayed */
		if ((p = find_port(old, ps)))
			p->refs++;
		else if (!(p = port_new(lb, ps))) {
			r = svc_errf(e, ENOMEM, "out of memory");
			goto fail;
		}
		ports[i] = p;
		if (!(eps[i] = eps_build(lb, p, ps))) {
			r = svc_errf(e, ENOMEM, "out of memory");
			goto fail;
		}
		if ((r = plan_listeners(lb, spec, ps, p, old, &kept, &fresh, e)))
			goto fail;
	}
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))) || !(s->key = strdup(key)) ||
		    smap_put(&lb->svcs, s->key, s)) {
			if (s)
				free(s->key);
			free(s);
			r = svc_errf(e, ENOMEM, "out of memory");
			goto fail;
		}
	}
	plan_commit(lb, s, spec, ports, eps, addrs, naddrs, kept, fresh, keep);
	/* Its UDP sessions to endpoints that went away end now (this service
	 * only: a sync of many services must not sweep them all each time). */
	sweep_svc(lb, s, now_mono(), false);
	free_dead(lb);
	return 0;
fail:
	free(keep);
	free(addrs);
	plan_abort(lb, old, spec, ports, eps, naddrs, kept, fresh);
	return svc_err_ctx(e, "userspace balancer: service %s", key);
}

bool lb_has_service(const struct lb *lb, const char *key)
{
	return smap_get(&lb->svcs, key) != NULL;
}

const char *lb_service_next(const struct lb *lb, size_t *cursor)
{
	struct smap_ent *ent = smap_next(&lb->svcs, cursor);

	return ent ? ent->key : NULL;
}

int lb_service_walk(const struct lb *lb, const char *key, lb_listen_fn on_listen,
		    lb_ep_fn on_endpoint, struct lb_counters *total, void *ctx)
{
	const struct lb_svc *s = smap_get(&lb->svcs, key);

	if (!s)
		return -ENOENT;
	memset(total, 0, sizeof(*total));
	for (const struct lb_listener *l = s->ls; l; l = l->next)
		if (on_listen)
			on_listen(ctx, l->where);
	for (uint32_t i = 0; i < s->nports; i++) {
		const struct lb_port *p = s->ports[i];
		count_add(total, &p->c);
		for (uint32_t j = 0; on_endpoint && j < p->neps; j++)
			on_endpoint(ctx, p->eps[j]->name, &p->eps[j]->c);
	}
	return 0;
}

void lb_stats(const struct lb *lb, struct lb_stats *out)
{
	struct smap_ent *ent;
	size_t cur = 0;

	memset(out, 0, sizeof(*out));
	out->services = lb->svcs.n;
	out->listeners = lb->nlisteners;
	out->accept_paused = lb->accept_paused;
	out->loopback_only = lb->cfg.loopback_only;
	out->batched_sends = lb->sq != NULL;
	out->sends_batched = lb->sends_batched;
	while ((ent = smap_next(&lb->svcs, &cur))) {
		const struct lb_svc *s = ent->val;
		for (uint32_t i = 0; i < s->nports; i++) {
			out->active += s->ports[i]->c.active;
			out->total += s->ports[i]->c.total;
		}
	}
}

/* --- life ------------------------------------------------------------------------------------ */

int lb_new(struct ev_loop *loop, const struct lb_config *cfg, struct lb **out, struct svc_err *e)
{
	struct lb *lb = calloc(1, sizeof(*lb));

	if (!lb)
		return svc_errf(e, ENOMEM, "out of memory");
	lb->loop = loop;
	lb->cfg = *cfg;
	if (lb->cfg.connect_timeout <= 0)
		lb->cfg.connect_timeout = 1;
	if (lb->cfg.udp_timeout <= 0)
		lb->cfg.udp_timeout = 30;
	if (!lb->cfg.max_conns)
		lb->cfg.max_conns = 16384;
	lb->epfd = epoll_create1(EPOLL_CLOEXEC);
	lb->bufs = calloc(LB_BUFS_KEPT, sizeof(*lb->bufs));
	lb->pipes = calloc(LB_PIPES_KEPT, sizeof(*lb->pipes));
	lb->udpbuf = malloc(LB_UDP_MAX);
	if (!cfg->send_one_by_one && sendq_open(LB_SENDQ, &lb->sq))
		lb->sq = NULL; /* no io_uring here: each send on its own */
	if (lb->epfd < 0 || !lb->bufs || !lb->pipes || !lb->udpbuf) {
		int err = lb->epfd < 0 ? errno : ENOMEM;
		lb_free(lb);
		return svc_errf(e, err, "userspace balancer: %s", strerror(err));
	}
	ev_io_init(&lb->epio, on_events, lb->epfd, EV_READ);
	lb->epio.data = lb;
	ev_io_start(loop, &lb->epio);
	ev_init(&lb->q[Q_CONNECT].timer, on_connect_timeout);
	ev_init(&lb->q[Q_WAIT].timer, on_wait_timer);
	lb->q[Q_CONNECT].timer.data = lb->q[Q_WAIT].timer.data = lb;
	ev_init(&lb->resume_timer, on_resume);
	lb->resume_timer.data = lb;
	{
		double every = lb->cfg.udp_timeout / 4;
		ev_timer_init(&lb->sweep_timer, on_sweep, every < 0.25 ? 0.25 : every,
			      every < 0.25 ? 0.25 : every);
	}
	lb->sweep_timer.data = lb;
	ev_timer_start(loop, &lb->sweep_timer);
	lb->aff_swept = now_mono();
	/* Addresses an earlier run left (a crash, a kill): the services that
	 * still exist put theirs back at the first sync. */
	if (!lb->cfg.loopback_only)
		localaddr_flush_label(LB_ADDR_LABEL, e);
	svc_err_clear(e);
	*out = lb;
	return 0;
}

void lb_free(struct lb *lb)
{
	struct smap_ent *ent;
	size_t cur = 0;

	if (!lb)
		return;
	while ((ent = smap_next(&lb->svcs, &cur)))
		svc_free(lb, ent->val);
	smap_free(&lb->svcs);
	while (lb->conns)
		conn_close(lb->conns, true);
	free_dead_force(lb, true);
	if (lb->loop) {
		ev_io_stop(lb->loop, &lb->epio);
		ev_timer_stop(lb->loop, &lb->q[Q_CONNECT].timer);
		ev_timer_stop(lb->loop, &lb->q[Q_WAIT].timer);
		ev_timer_stop(lb->loop, &lb->resume_timer);
		ev_timer_stop(lb->loop, &lb->sweep_timer);
	}
	smap_free(&lb->vips);
	for (size_t i = 0; lb->bufs && i < lb->nbufs; i++)
		free(lb->bufs[i]);
	for (size_t i = 0; lb->pipes && i < lb->npipes; i++) {
		close(lb->pipes[i][0]);
		close(lb->pipes[i][1]);
	}
	free(lb->bufs);
	free(lb->pipes);
	free(lb->udpbuf);
	sendq_close(lb->sq);
	if (lb->epfd >= 0)
		close(lb->epfd);
	free(lb);
}
