// SPDX-License-Identifier: MIT
/* The cluster DNS server: sockets, the reply rules, forwarding and
 * search-path completion around the zone (zone.h) and the forwarder
 * (forward.h).
 *
 * One query at a time is parsed from a shared receive buffer and answered
 * into a shared send buffer; only a query waiting for the forwarder owns
 * memory (struct pending), which holds a reference on its TCP connection
 * so that a connection closed meanwhile is freed only after the answer
 * arrives and is dropped. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "localaddr.h"
#include "msg.h"
#include "util.h"
#include "zone.h"

#define TCP_MAX_CONNS	 256
#define TCP_IDLE	 10.0	    /* seconds without a query before we close */
#define TCP_MAX_BACKLOG	 (1u << 20) /* unsent bytes before a slow reader is dropped */
#define ACCEPT_PAUSE	 0.1	    /* seconds, after running out of descriptors */
#define UDP_DRAIN	 4	    /* batches per readiness event, at most */
#define UDP_BATCH	 64	    /* datagrams per readiness event, then yield */
#define MAX_PENDING	 4096	    /* forwarded queries in flight; more get SERVFAIL */
#define TCP_MAX_PENDING	 64	    /* of those, per TCP connection */
#define FWD_TIMEOUT	 2.0
#define FWD_CACHE	 10000
#define CNAME_TARGET_MAX 256

struct dns_listener {
	struct dns_server *s;
	int fd;
	bool tcp;
	ev_io io;
	ev_timer pause; /* accept paused: out of descriptors */
};

struct tconn {
	struct dns_server *s;
	struct tconn *prev, *next;
	int fd, refs;
	bool closing;
	ev_io rio, wio;
	ev_timer idle;
	struct sbuf in, out;
	unsigned pending; /* queries waiting for the forwarder */
	struct sockaddr_storage peer;
};

/* Where a query came from and its answer goes. */
struct client {
	struct dns_listener *l;
	struct tconn *c; /* TCP; NULL for UDP */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	union {
		struct in_pktinfo v4;
		struct in6_pktinfo v6;
	} pi;
	int pi_family; /* 0: no destination address seen */
};

enum pending_kind {
	P_FORWARD,  /* outside the zone: relay the upstream's answer */
	P_CNAME,    /* an ExternalName: our CNAME, then the target's records */
	P_AUTOPATH, /* a search-path name: CNAME to the stripped name + its answer */
};

struct pending {
	struct pending *prev, *next;
	struct dns_server *s;
	struct dns_fwd_req *req;
	struct client cl;
	enum pending_kind kind;
	uint8_t keep_labels; /* P_AUTOPATH: labels of the stripped name */
	char target[CNAME_TARGET_MAX];
	struct dns_query q;
};

/* UDP in batches: one recvmmsg takes up to UDP_BATCH queries, their
 * answers queue here and leave in one sendmmsg: two system calls per batch
 * instead of two per query, which is most of what a query costs. */
#define UDP_SLOT 4096 /* bytes per datagram: queries and our answers (<= 1232) */

union udp_ctl {
	char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
	struct cmsghdr align;
};

struct udp_batch {
	struct mmsghdr msg[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage peer[UDP_BATCH];
	union udp_ctl ctl[UDP_BATCH];
	uint8_t data[UDP_BATCH][UDP_SLOT];
};

struct dns_server {
	struct ev_loop *loop;
	struct dns_zone *zone;
	struct dns_fwd *fwd; /* NULL without upstreams */
	struct dns_listener *ls;
	size_t nls;
	struct tconn *conns;
	unsigned nconns;
	struct pending *pend;
	unsigned npend;
	char *domain;
	struct dns_server_stats stats;
	uint8_t rbuf[DNS_TCP_MAX];
	uint8_t wbuf[DNS_TCP_MAX + 2]; /* room for the TCP length prefix */
	struct udp_batch in, out;
	struct dns_listener *batching; /* answers to this listener queue in out */
	unsigned nout;
	bool in_ready;	  /* in's headers are built */
	unsigned in_used; /* of which the last recvmmsg filled these */
};

/* --- statistics ------------------------------------------------------------ */

static const uint16_t stat_types[DNS_STAT_TYPES - 1] = {DNS_TYPE_A,   DNS_TYPE_AAAA,  DNS_TYPE_SRV,
							DNS_TYPE_PTR, DNS_TYPE_CNAME, DNS_TYPE_TXT,
							DNS_TYPE_SOA, DNS_TYPE_NS,    DNS_TYPE_ANY};
static const char *const type_names[DNS_STAT_TYPES] = {"A",   "AAAA", "SRV", "PTR", "CNAME",
						       "TXT", "SOA",  "NS",  "ANY", "other"};
static const char *const rcode_names[DNS_STAT_RCODES] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other"};

const char *dns_stat_type_name(size_t i)
{
	return i < DNS_STAT_TYPES ? type_names[i] : NULL;
}

const char *dns_stat_rcode_name(size_t i)
{
	return i < DNS_STAT_RCODES ? rcode_names[i] : NULL;
}

static void count_type(struct dns_server *s, uint16_t type)
{
	size_t i = 0;

	while (i < DNS_STAT_TYPES - 1 && stat_types[i] != type)
		i++;
	s->stats.by_type[i]++;
}

static void count_rcode(struct dns_server *s, uint16_t rcode)
{
	size_t i = rcode <= DNS_RCODE_REFUSED	? rcode
		   : rcode == DNS_RCODE_BADVERS ? 6
						: DNS_STAT_RCODES - 1;
	s->stats.by_rcode[i]++;
}

void dns_server_stats(const struct dns_server *s, struct dns_server_stats *out)
{
	*out = s->stats;
	if (s->fwd)
		dns_fwd_stats(s->fwd, &out->fwd);
	out->serial = dns_zone_serial(s->zone);
}

/* --- addresses ------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || !v || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int dns_parse_hostport(const char *s, uint16_t def_port, struct sockaddr_storage *out,
		       struct svc_err *e)
{
	char host[64];
	const char *port = NULL, *colon = strrchr(s, ':');
	uint16_t p = def_port;
	size_t n;

	if (s[0] == '[') { /* [v6]:port */
		const char *close = strchr(s, ']');
		if (!close || (close[1] && close[1] != ':'))
			goto bad;
		n = (size_t)(close - s - 1);
		memcpy(host, s + 1, n < sizeof(host) ? n : 0);
		port = close[1] ? close + 2 : NULL;
	} else if (colon && strchr(s, ':') == colon) { /* v4:port */
		n = (size_t)(colon - s);
		memcpy(host, s, n < sizeof(host) ? n : 0);
		port = colon + 1;
	} else { /* a bare address */
		n = strlen(s);
		memcpy(host, s, n < sizeof(host) ? n : 0);
	}
	if (n >= sizeof(host) || (port && parse_port(port, &p)) || !p)
		goto bad;
	host[n] = 0;
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(p);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(p);
		return 0;
	}
bad:
	return svc_errf(e, EINVAL, "\"%s\" is not ADDRESS%s", s, def_port ? "[:PORT]" : ":PORT");
}

static socklen_t sa_len(const struct sockaddr_storage *sa)
{
	return sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* The client's address as the zone keys pods (search-path completion). */
static bool client_addr(const struct client *cl, struct svc_addr *a)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&cl->peer;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&cl->peer;

	memset(a, 0, sizeof(*a));
	if (cl->peer.ss_family == AF_INET) {
		a->family = AF_INET;
		memcpy(a->a, &a4->sin_addr, 4);
	} else if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
		a->family = AF_INET;
		memcpy(a->a, a6->sin6_addr.s6_addr + 12, 4);
	} else if (cl->peer.ss_family == AF_INET6) {
		a->family = AF_INET6;
		memcpy(a->a, &a6->sin6_addr, 16);
	} else {
		return false;
	}
	return true;
}

/* --- sending ----------------------------------------------------------------- */

static void tconn_close(struct tconn *c);
static void tconn_flush(struct tconn *c);

/* The message header of a reply to cl: to its address, from the address
 * the query went to (even on a wildcard socket). */
static void udp_fill(struct msghdr *mh, struct iovec *iov, union udp_ctl *ctl,
		     const struct client *cl, const uint8_t *msg, size_t len)
{
	iov->iov_base = (void *)msg;
	iov->iov_len = len;
	memset(mh, 0, sizeof(*mh));
	mh->msg_name = (void *)&cl->peer;
	mh->msg_namelen = cl->peerlen;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	if (cl->pi_family) {
		bool v4 = cl->pi_family == AF_INET;
		struct cmsghdr *cm;
		memset(ctl, 0, sizeof(*ctl));
		mh->msg_control = ctl->buf;
		mh->msg_controllen = CMSG_SPACE(v4 ? sizeof(cl->pi.v4) : sizeof(cl->pi.v6));
		cm = CMSG_FIRSTHDR(mh);
		cm->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
		cm->cmsg_type = v4 ? IP_PKTINFO : IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(v4 ? sizeof(cl->pi.v4) : sizeof(cl->pi.v6));
		memcpy(CMSG_DATA(cm), &cl->pi, v4 ? sizeof(cl->pi.v4) : sizeof(cl->pi.v6));
	}
}

static void udp_send(struct dns_server *s, const struct client *cl, const uint8_t *msg, size_t len)
{
	struct udp_batch *b = &s->out;
	union udp_ctl ctl;
	struct iovec iov;
	struct msghdr mh;

	if (s->batching == cl->l && s->nout < UDP_BATCH && len <= UDP_SLOT) {
		unsigned i = s->nout++;
		if (msg != b->data[i]) /* resp_start builds most answers in place */
			memcpy(b->data[i], msg, len);
		memcpy(&b->peer[i], &cl->peer, cl->peerlen);
		udp_fill(&b->msg[i].msg_hdr, &b->iov[i], &b->ctl[i], cl, b->data[i], len);
		b->msg[i].msg_hdr.msg_name = &b->peer[i]; /* cl lives on the stack */
		return;
	}
	udp_fill(&mh, &iov, &ctl, cl, msg, len);
	if (sendmsg(cl->l->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		s->stats.dropped++; /* the client retries; nothing to keep */
}

/* Send the queued answers; what the socket will not take is dropped (the
 * clients retry). */
static void udp_flush(struct dns_server *s, struct dns_listener *l)
{
	unsigned sent = 0;

	while (sent < s->nout) {
		int n =
		    sendmmsg(l->fd, s->out.msg + sent, s->nout - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && errno != EAGAIN && errno != ENOBUFS && errno != ENOMEM) {
			s->stats.dropped++; /* this one peer (EINVAL, EPERM...): go on */
			sent++;
			continue;
		}
		if (n <= 0) {
			s->stats.dropped += s->nout - sent;
			break;
		}
		sent += (unsigned)n;
	}
	s->nout = 0;
}

static void tcp_send(struct tconn *c, const uint8_t *msg, size_t len)
{
	uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};

	if (c->closing)
		return;
	if (c->out.len + len > TCP_MAX_BACKLOG || sbuf_add(&c->out, hdr, 2) ||
	    sbuf_add(&c->out, msg, len)) {
		tconn_close(c);
		return;
	}
	tconn_flush(c);
}

/* Finish r and send it to cl. */
static void respond(struct dns_server *s, const struct client *cl, struct dns_resp *r)
{
	struct svc_err e = {0};
	size_t len;

	r->flags |= DNS_FLAG_RA; /* we recurse through the forwarder */
	if (dns_resp_finish(r, &len, &e)) {
		s->stats.dropped++;
		return;
	}
	count_rcode(s, r->rcode);
	if (cl->c)
		tcp_send(cl->c, r->w.wire, len);
	else
		udp_send(s, cl, r->w.wire, len);
}

static int resp_start(struct dns_server *s, const struct client *cl, const struct dns_query *q,
		      struct dns_resp *r)
{
	struct svc_err e = {0};
	size_t limit = dns_resp_limit(q, cl->c != NULL, DNS_EDNS_UDP_DEF);
	uint8_t *buf = s->wbuf;

	/* A UDP answer in a batch is built in its slot: no copy to queue it. */
	if (!cl->c && s->batching == cl->l && s->nout < UDP_BATCH && limit <= UDP_SLOT)
		buf = s->out.data[s->nout];
	return dns_resp_init(r, buf, limit, q, DNS_EDNS_UDP_DEF, &e);
}

/* An answer that is only a header, the question and an rcode. */
static void respond_rcode(struct dns_server *s, const struct client *cl, const struct dns_query *q,
			  uint16_t rcode)
{
	struct dns_resp r;

	if (resp_start(s, cl, q, &r) || dns_resp_set_rcode(&r, rcode)) {
		s->stats.dropped++;
		return;
	}
	respond(s, cl, &r);
}

/* --- relaying the upstream's records ------------------------------------------ */

/* Add one upstream RR to r.  Names inside rdata may be compressed against
 * the upstream's message, so the types that carry them are rebuilt; other
 * types may not compress (RFC 3597) and are copied.  The question's name
 * takes the client's case. */
static int relay_rr(struct dns_resp *r, enum dns_section sec, const struct dns_rr *rr,
		    const uint8_t *m, size_t len, const struct dns_query *q)
{
	const struct dns_name *owner = dns_name_eq(&rr->owner, &q->qname) ? &q->qname : &rr->owner;
	struct dns_rd rd;
	struct dns_name t;
	uint8_t buf[2 + DNS_NAME_MAX];
	struct dns_soa soa;
	uint16_t a, b, c;

	dns_rd_init(&rd, m, len);
	dns_rd_seek(&rd, rr->rdata);
	switch (rr->type) {
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		return dns_rd_name(&rd, &t)
			   ? 0
			   : dns_resp_add_name(r, sec, owner, rr->type, rr->ttl, &t);
	case DNS_TYPE_MX:
		a = dns_rd_u16(&rd);
		if (dns_rd_name(&rd, &t))
			return 0;
		buf[0] = (uint8_t)(a >> 8);
		buf[1] = (uint8_t)a;
		memcpy(buf + 2, t.wire, t.len);
		return dns_resp_add(r, sec, owner, rr->type, rr->ttl, buf, (uint16_t)(2 + t.len));
	case DNS_TYPE_SRV:
		a = dns_rd_u16(&rd);
		b = dns_rd_u16(&rd);
		c = dns_rd_u16(&rd);
		return dns_rd_name(&rd, &t) ? 0
					    : dns_resp_add_srv(r, sec, owner, rr->ttl, a, b, c, &t);
	case DNS_TYPE_SOA:
		dns_rd_name(&rd, &soa.mname);
		dns_rd_name(&rd, &soa.rname);
		soa.serial = dns_rd_u32(&rd);
		soa.refresh = dns_rd_u32(&rd);
		soa.retry = dns_rd_u32(&rd);
		soa.expire = dns_rd_u32(&rd);
		soa.minimum = dns_rd_u32(&rd);
		return rd.err ? 0 : dns_resp_add_soa(r, sec, owner, rr->ttl, &soa);
	default:
		return dns_resp_add(r, sec, owner, rr->type, rr->ttl, m + rr->rdata, rr->rdlen);
	}
}

/* Copy the answer (and with authority, the authority) section of the
 * upstream message m into r; *rcode gets the upstream's.  Returns 0, or
 * -EBADMSG for a message we cannot read. */
static int relay(struct dns_resp *r, const struct dns_query *q, const uint8_t *m, size_t len,
		 bool authority, uint16_t *rcode)
{
	struct dns_rd rd;
	struct dns_rr rr;
	unsigned an, ns;

	if (len < DNS_HDR_SIZE)
		return -EBADMSG;
	*rcode = dns_hdr_flags(m) & DNS_FLAG_RCODE_MASK;
	an = dns_hdr_ancount(m);
	ns = authority ? dns_hdr_nscount(m) : 0;
	dns_rd_init(&rd, m, len);
	dns_rd_skip(&rd, DNS_HDR_SIZE);
	for (unsigned i = 0; i < dns_hdr_qdcount(m) && !rd.err; i++) {
		dns_rd_name(&rd, NULL);
		dns_rd_skip(&rd, 4);
	}
	for (unsigned i = 0; i < an + ns && !rd.err; i++) {
		if (dns_rr_read(&rd, &rr))
			break;
		if (rr.rclass != DNS_CLASS_IN || rr.type == DNS_TYPE_OPT)
			continue;
		if (relay_rr(r, i < an ? DNS_SEC_ANSWER : DNS_SEC_AUTHORITY, &rr, m, len, q) ==
		    -EMSGSIZE)
			break; /* TC is set: the client retries over TCP */
	}
	return rd.err;
}

/* --- answering --------------------------------------------------------------------- */

static void pending_free(struct pending *p);
static void on_forwarded(void *ctx, int err, const uint8_t *resp, size_t len);

/* Ask the forwarder for name on behalf of q; the answer comes to
 * on_forwarded.  Without upstreams, or out of memory: SERVFAIL now. */
static void forward(struct dns_server *s, const struct client *cl, const struct dns_query *q,
		    enum pending_kind kind, const char *name, uint16_t type, uint8_t keep)
{
	bool room = s->npend < MAX_PENDING && (!cl->c || cl->c->pending < TCP_MAX_PENDING);
	struct pending *p = s->fwd && room ? calloc(1, sizeof(*p)) : NULL;

	if (!p) {
		respond_rcode(s, cl, q, DNS_RCODE_SERVFAIL);
		return;
	}
	p->s = s;
	p->cl = *cl;
	p->q = *q;
	p->kind = kind;
	p->keep_labels = keep;
	snprintf(p->target, sizeof(p->target), "%s", name);
	if (!(p->req = dns_fwd_query(s->fwd, name, type, q->do_bit, on_forwarded, p))) {
		free(p);
		respond_rcode(s, cl, q, DNS_RCODE_SERVFAIL);
		return;
	}
	if (cl->c) {
		cl->c->refs++;
		cl->c->pending++;
	}
	p->next = s->pend;
	if (s->pend)
		s->pend->prev = p;
	s->pend = p;
	s->npend++;
	s->stats.forwarded++;
}

/* The first `keep` labels of n, as a name of their own. */
static void name_head(const struct dns_name *n, unsigned keep, struct dns_name *out)
{
	size_t pos = 0;

	for (unsigned i = 0; i < keep && n->wire[pos]; i++)
		pos += 1u + n->wire[pos];
	memcpy(out->wire, n->wire, pos);
	out->wire[pos] = 0;
	out->len = (uint8_t)(pos + 1);
	out->labels = (uint8_t)keep;
}

static bool ends_with_label(const char *s, size_t len, const char *label)
{
	size_t n = strlen(label);

	return len > n && s[len - n - 1] == '.' && !strcmp(s + len - n, label);
}

/* Search-path completion: q, from a pod in namespace ns, names
 * "<x>.<suffix>" for a suffix of the pod's search path, and x (with a dot,
 * outside the zone) is what the pod really wants.  Returns x's label count
 * and x in out, or 0. */
static unsigned autopath_strip(const struct dns_server *s, const char *ns,
			       const struct dns_query *q, char *out, size_t n)
{
	char suffixes[3][DNS_NAME_STR_MAX];
	const char *name = q->qname_str;
	size_t len = strlen(name);

	snprintf(suffixes[0], sizeof(suffixes[0]), ".%s.svc.%s", ns, s->domain);
	snprintf(suffixes[1], sizeof(suffixes[1]), ".svc.%s", s->domain);
	snprintf(suffixes[2], sizeof(suffixes[2]), ".%s", s->domain);
	for (int i = 0; i < 3; i++) {
		size_t sl = strlen(suffixes[i]), xl = len - sl;
		unsigned labels = q->qname.labels;
		if (len <= sl || strcmp(name + xl, suffixes[i]) || xl >= n)
			continue;
		memcpy(out, name, xl);
		out[xl] = 0;
		/* Labels on the wire: a dot inside a label is escaped ("\.") in
		 * name, and must not count (name_head keeps this many). */
		for (size_t j = 0; j < sl; j++)
			labels -= labels && suffixes[i][j] == '.';
		/* One label is a service or a namespace, and "<x>.svc" or
		 * "<x>.pod" a cluster name given short: not names outside. */
		if (labels < 2 || ends_with_label(out, xl, "svc") ||
		    ends_with_label(out, xl, "pod"))
			return 0;
		size_t dl = strlen(s->domain), ol = xl;
		if ((ol == dl || (ol > dl && out[ol - dl - 1] == '.')) &&
		    !strcmp(out + ol - dl, s->domain))
			return 0;
		return labels;
	}
	return 0;
}

/* A name of ours does not exist: from a pod, maybe it is a search-path
 * expansion of a name outside.  Returns true when a lookup was started. */
static bool try_autopath(struct dns_server *s, const struct client *cl, const struct dns_query *q)
{
	char stripped[DNS_NAME_STR_MAX];
	struct svc_addr a;
	const char *ns;
	unsigned keep;

	if (!s->fwd || !client_addr(cl, &a) || !(ns = dns_zone_pod_ns(s->zone, &a)))
		return false;
	if (!(keep = autopath_strip(s, ns, q, stripped, sizeof(stripped))))
		return false;
	forward(s, cl, q, P_AUTOPATH, stripped, q->qtype, (uint8_t)keep);
	return true;
}

/* Answer a well-formed IN query. */
static void answer(struct dns_server *s, const struct client *cl, const struct dns_query *q)
{
	char target[CNAME_TARGET_MAX];
	struct dns_resp r;

	if (resp_start(s, cl, q, &r)) {
		s->stats.dropped++;
		return;
	}
	switch (dns_zone_answer(s->zone, q, &r, target, sizeof(target))) {
	case DNS_Z_ANSWERED:
		if (r.rcode == DNS_RCODE_NXDOMAIN && try_autopath(s, cl, q))
			return;
		respond(s, cl, &r);
		return;
	case DNS_Z_CNAME_EXTERNAL:
		if (!s->fwd) {
			respond(s, cl, &r); /* the CNAME alone: the client may resolve it */
			return;
		}
		forward(s, cl, q, P_CNAME, target, q->qtype, 0);
		return;
	case DNS_Z_NOT_OURS:
		forward(s, cl, q, P_FORWARD, q->qname_str, q->qtype, 0);
		return;
	}
}

/* The reply rules of one message from a client. */
static void handle_query(struct dns_server *s, const struct client *cl, const uint8_t *pkt,
			 size_t len)
{
	struct svc_err e = {0};
	struct dns_query q;
	int r = dns_query_parse(pkt, len, &q, &e);

	s->stats.queries++;
	if (!q.has_header || (q.flags & DNS_FLAG_QR)) {
		s->stats.dropped++; /* garbage, or a response: never answer those */
		return;
	}
	if (q.has_question)
		count_type(s, q.qtype);
	if (r || dns_flags_opcode(q.flags) != DNS_OPCODE_QUERY) {
		if (r) /* whatever EDNS we read may be wrong: answer plainly */
			q.edns = false;
		respond_rcode(s, cl, &q,
			      dns_flags_opcode(q.flags) != DNS_OPCODE_QUERY ? DNS_RCODE_NOTIMP
									    : DNS_RCODE_FORMERR);
		return;
	}
	if (q.edns && q.edns_version)
		respond_rcode(s, cl, &q, DNS_RCODE_BADVERS);
	else if (q.qclass != DNS_CLASS_IN || q.qtype == DNS_TYPE_AXFR || q.qtype == DNS_TYPE_IXFR)
		respond_rcode(s, cl, &q, DNS_RCODE_REFUSED);
	else
		answer(s, cl, &q);
}

/* The upstream's answer for p: build the client's response. */
static void finish_pending(struct dns_server *s, struct pending *p, int err, const uint8_t *m,
			   size_t len)
{
	char target[CNAME_TARGET_MAX];
	uint16_t rcode = DNS_RCODE_SERVFAIL;
	struct dns_name stripped;
	struct dns_resp r;

	if (resp_start(s, &p->cl, &p->q, &r)) {
		s->stats.dropped++;
		return;
	}
	switch (p->kind) {
	case P_FORWARD:
		if (err || relay(&r, &p->q, m, len, true, &rcode))
			rcode = DNS_RCODE_SERVFAIL;
		dns_resp_set_rcode(&r, rcode);
		break;
	case P_CNAME:
		/* The zone may have changed meanwhile: answer afresh, add the
		 * target's records only if it still names the same target. */
		if (dns_zone_answer(s->zone, &p->q, &r, target, sizeof(target)) ==
			DNS_Z_CNAME_EXTERNAL &&
		    !err && !strcmp(target, p->target))
			relay(&r, &p->q, m, len, false, &rcode);
		break;
	case P_AUTOPATH:
		if (!err && len >= DNS_HDR_SIZE &&
		    (dns_hdr_flags(m) & DNS_FLAG_RCODE_MASK) == DNS_RCODE_NOERROR) {
			name_head(&p->q.qname, p->keep_labels, &stripped);
			dns_resp_add_name(&r, DNS_SEC_ANSWER, &p->q.qname, DNS_TYPE_CNAME, 0,
					  &stripped);
			relay(&r, &p->q, m, len, false, &rcode);
			s->stats.autopath++;
		} else { /* nothing outside either: our own NXDOMAIN */
			dns_zone_answer(s->zone, &p->q, &r, target, sizeof(target));
		}
		break;
	}
	respond(s, &p->cl, &r);
}

static void on_forwarded(void *ctx, int err, const uint8_t *resp, size_t len)
{
	struct pending *p = ctx;

	p->req = NULL;
	if (!p->cl.c || !p->cl.c->closing)
		finish_pending(p->s, p, err, resp, len);
	pending_free(p);
}

static void tconn_unref(struct tconn *c);

static void pending_free(struct pending *p)
{
	struct dns_server *s = p->s;

	if (p->req)
		dns_fwd_cancel(s->fwd, p->req);
	if (p->prev)
		p->prev->next = p->next;
	else
		s->pend = p->next;
	if (p->next)
		p->next->prev = p->prev;
	s->npend--;
	if (p->cl.c) {
		p->cl.c->pending--;
		tconn_unref(p->cl.c);
	}
	free(p);
}

/* --- UDP ------------------------------------------------------------------------ */

static void udp_pktinfo(struct client *cl, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			memcpy(&cl->pi.v4, CMSG_DATA(cm), sizeof(cl->pi.v4));
			cl->pi.v4.ipi_spec_dst = cl->pi.v4.ipi_addr;
			cl->pi.v4.ipi_ifindex = 0;
			cl->pi_family = AF_INET;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			memcpy(&cl->pi.v6, CMSG_DATA(cm), sizeof(cl->pi.v6));
			cl->pi.v6.ipi6_ifindex = 0;
			cl->pi_family = AF_INET6;
		}
	}
}

/* One recvmmsg's worth of queries, answered with one sendmmsg; returns how
 * many datagrams came in. */
static int udp_batch(struct dns_server *s, struct dns_listener *l)
{
	struct udp_batch *in = &s->in;
	int n;

	/* recvmmsg changes only the lengths and flags: the headers are built
	 * once and those reset after each use. */
	for (int i = s->in_ready ? UDP_BATCH : 0; i < UDP_BATCH; i++) {
		in->iov[i].iov_base = in->data[i];
		in->iov[i].iov_len = UDP_SLOT;
		in->msg[i].msg_hdr = (struct msghdr){.msg_name = &in->peer[i],
						     .msg_iov = &in->iov[i],
						     .msg_iovlen = 1,
						     .msg_control = in->ctl[i].buf};
	}
	for (unsigned i = 0; i < (s->in_ready ? s->in_used : UDP_BATCH); i++) {
		in->msg[i].msg_hdr.msg_namelen = sizeof(in->peer[i]);
		in->msg[i].msg_hdr.msg_controllen = sizeof(in->ctl[i].buf);
		in->msg[i].msg_hdr.msg_flags = 0;
	}
	s->in_ready = true;
	n = recvmmsg(l->fd, in->msg, UDP_BATCH, MSG_DONTWAIT, NULL);
	s->in_used = n > 0 ? (unsigned)n : UDP_BATCH; /* a failure may touch any */
	if (n <= 0)
		return 0; /* EAGAIN, or an ICMP error from an earlier reply */
	s->batching = l;
	for (int i = 0; i < n; i++) {
		struct client cl = {.l = l};
		struct msghdr *mh = &in->msg[i].msg_hdr;

		if (mh->msg_flags & MSG_TRUNC) { /* no query is that big */
			s->stats.dropped++;
			continue;
		}
		memcpy(&cl.peer, &in->peer[i], sizeof(cl.peer));
		cl.peerlen = mh->msg_namelen;
		udp_pktinfo(&cl, mh);
		handle_query(s, &cl, in->data[i], in->msg[i].msg_len);
	}
	s->batching = NULL;
	udp_flush(s, l);
	return n;
}

/* A few batches per wake-up while the socket stays full: fewer trips
 * through epoll under load, and still a turn for the other sockets. */
static void on_udp(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_listener *l = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < UDP_DRAIN && udp_batch(l->s, l) == UDP_BATCH; i++)
		;
}

/* --- TCP ------------------------------------------------------------------------ */

static void tconn_unref(struct tconn *c)
{
	if (--c->refs > 0)
		return;
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	free(c);
}

static void tconn_close(struct tconn *c)
{
	struct dns_server *s = c->s;

	if (c->closing)
		return;
	c->closing = true;
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	ev_timer_stop(s->loop, &c->idle);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	tconn_unref(c);
}

static void tconn_flush(struct tconn *c)
{
	while (c->out.len && !c->closing) {
		ssize_t n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			tconn_close(c);
			return;
		}
		sbuf_consume(&c->out, (size_t)n);
		ev_timer_again(c->s->loop, &c->idle); /* progress: not idle */
	}
	if (c->closing)
		return;
	if (c->out.len)
		ev_io_start(c->s->loop, &c->wio);
	else
		ev_io_stop(c->s->loop, &c->wio);
}

/* Answer every complete frame in c->in. */
static void tconn_frames(struct tconn *c)
{
	while (!c->closing && c->in.len >= 2) {
		size_t n = dns_get16((const uint8_t *)c->in.p);
		if (c->in.len < 2 + n)
			return;
		struct client cl = {.c = c, .peer = c->peer, .peerlen = sizeof(c->peer)};
		/* Answering writes only c->out; c->in stays as it is, and a close
		 * in the handler frees nothing while on_tcp_read holds c. */
		handle_query(c->s, &cl, (const uint8_t *)c->in.p + 2, n);
		if (!c->closing)
			sbuf_consume(&c->in, 2 + n);
	}
}

static void on_tcp_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tconn *c = w->data;
	char buf[16384];
	ssize_t n;

	(void)revents;
	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	c->refs++;
	if (n <= 0 || sbuf_add(&c->in, buf, (size_t)n)) {
		tconn_close(c); /* EOF: answers still pending are dropped, as the client left */
	} else {
		ev_timer_again(loop, &c->idle);
		tconn_frames(c);
	}
	tconn_unref(c);
}

static void on_tcp_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tconn *c = w->data;

	(void)loop;
	(void)revents;
	c->refs++;
	tconn_flush(c);
	tconn_unref(c);
}

static void on_tcp_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tconn *c = w->data;

	(void)revents;
	if (c->pending) /* still working for the client; a reader taking nothing for
			 * TCP_IDLE seconds is closed, or it would hold a slot forever */
		ev_timer_again(loop, w);
	else
		tconn_close(c);
}

static void tconn_new(struct dns_server *s, int fd, const struct sockaddr_storage *peer)
{
	struct tconn *c = calloc(1, sizeof(*c));

	if (!c || s->nconns >= TCP_MAX_CONNS) {
		free(c);
		close(fd); /* the client falls back to another server or retries */
		s->stats.dropped++;
		return;
	}
	c->s = s;
	c->fd = fd;
	c->refs = 1;
	c->peer = *peer;
	ev_io_init(&c->rio, on_tcp_read, fd, EV_READ);
	ev_io_init(&c->wio, on_tcp_write, fd, EV_WRITE);
	ev_init(&c->idle, on_tcp_idle);
	c->idle.repeat = TCP_IDLE;
	c->rio.data = c->wio.data = c->idle.data = c;
	ev_io_start(s->loop, &c->rio);
	ev_timer_again(s->loop, &c->idle);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->stats.tcp_connections++;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_listener *l = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd =
		    accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* The connection stays queued and the socket readable:
			 * wait instead of spinning until a descriptor is free. */
			ev_io_stop(l->s->loop, &l->io);
			ev_timer_set(&l->pause, ACCEPT_PAUSE, 0);
			ev_timer_start(l->s->loop, &l->pause);
			return;
		}
		if (fd < 0)
			return; /* EAGAIN */
		tconn_new(l->s, fd, &peer);
	}
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns_listener *l = w->data;

	(void)revents;
	ev_io_start(loop, &l->io);
}

/* --- sockets --------------------------------------------------------------------- */

static bool sa_wildcard(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static int listener_add(struct dns_server *s, const struct sockaddr_storage *sa, bool tcp,
			struct svc_err *e)
{
	int fd, one = 1, v6 = sa->ss_family == AF_INET6;
	struct dns_listener *l;
	char ip[INET6_ADDRSTRLEN];

	fd = socket(sa->ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return svc_errf(e, errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* On a wildcard socket, answer from the address asked (a bound one
	 * does that already, and skips a control message per datagram). */
	/* Answers never exceed 1232 bytes (DNS flag day 2020): send them with DF
	 * set, as that day recommends; the kernel then also skips computing an
	 * IP ID per datagram. */
	if (!tcp && !v6) {
		int pmtu = IP_PMTUDISC_DO;
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
	}
	if (!tcp && sa_wildcard(sa))
		setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_RECVPKTINFO : IP_PKTINFO,
			   &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sa_len(sa)) || (tcp && listen(fd, 128))) {
		int err = errno;
		const void *a = v6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
				   : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
		close(fd);
		inet_ntop(sa->ss_family, a, ip, sizeof(ip));
		return svc_errf(e, err, "%s %s port %u: %s", tcp ? "TCP" : "UDP", ip,
				ntohs(v6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
					 : ((const struct sockaddr_in *)sa)->sin_port),
				strerror(err));
	}
	l = &s->ls[s->nls++];
	l->s = s;
	l->fd = fd;
	l->tcp = tcp;
	ev_io_init(&l->io, tcp ? on_accept : on_udp, fd, EV_READ);
	ev_init(&l->pause, on_accept_resume);
	l->io.data = l->pause.data = l;
	ev_io_start(s->loop, &l->io);
	return 0;
}

/* UDP and TCP on sa. */
static int serve_on(struct dns_server *s, const struct sockaddr_storage *sa, struct svc_err *e)
{
	int r = listener_add(s, sa, false, e);

	return r ? r : listener_add(s, sa, true, e);
}

/* The DNS service IP: made local on lo, then served on port 53.  A node
 * where that fails (no CAP_NET_ADMIN, port 53 taken) still runs, with a
 * warning: --dns-listen addresses may be all it needs. */
static void serve_service_ip(struct dns_server *s, const char *ip)
{
	struct sockaddr_storage sa;
	struct svc_err e = {0};
	size_t before = s->nls;

	if (dns_parse_hostport(ip, 53, &sa, &e) || localaddr_add(ip, &e) || serve_on(s, &sa, &e)) {
		while (s->nls > before) { /* UDP without TCP is not a DNS server */
			struct dns_listener *l = &s->ls[--s->nls];
			ev_io_stop(s->loop, &l->io);
			close(l->fd);
		}
		svc_log(SVC_LOG_WARN, "dns: not serving the DNS service IP %s: %s", ip, e.msg);
	}
}

/* --- the zone, fed by the model -------------------------------------------------- */

static void on_state_event(void *ctx, enum svc_event ev, const struct svc_obj *obj)
{
	struct dns_server *s = ctx;

	if (dns_zone_update(s->zone, ev, obj))
		svc_log(SVC_LOG_WARN,
			"dns: out of memory: names of %s/%s unavailable until it changes", obj->ns,
			obj->name);
}

static int zone_fill(struct dns_server *s, struct svc_state *st, struct svc_err *e)
{
	static const enum svc_kind kinds[] = {KIND_SERVICE, KIND_POD};
	struct svc_obj *o;

	for (size_t k = 0; k < 2; k++) {
		size_t cur = 0;
		while ((o = model_iter(st->model, kinds[k], &cur)))
			if (dns_zone_update(s->zone, EV_ADDED, o))
				return svc_errf(e, ENOMEM, "dns: building the zone: out of memory");
	}
	state_listen(st, on_state_event, s);
	return 0;
}

/* --- open and close -------------------------------------------------------------- */

static int fwd_open(struct dns_server *s, const struct dns_server_config *cfg, struct svc_err *e)
{
	struct dns_fwd_config fc = {.upstreams = cfg->upstreams,
				    .n = cfg->nupstreams,
				    .timeout = FWD_TIMEOUT,
				    .cache_max = FWD_CACHE,
				    .neg_ttl_max = 30,
				    .ttl_max = 300};

	if (!cfg->nupstreams) {
		svc_log(SVC_LOG_WARN, "dns: no upstream resolvers: names outside %s get SERVFAIL",
			cfg->domain);
		return 0;
	}
	return dns_fwd_new(s->loop, &fc, &s->fwd, e);
}

static int listen_all(struct dns_server *s, const struct dns_server_config *cfg, struct svc_err *e)
{
	struct sockaddr_storage sa;
	int r;

	if (cfg->service_ip)
		serve_service_ip(s, cfg->service_ip);
	for (size_t i = 0; i < cfg->nlisten; i++)
		if ((r = dns_parse_hostport(cfg->listen[i], 0, &sa, e)) ||
		    (r = serve_on(s, &sa, e)))
			return svc_err_ctx(e, "--dns-listen %s", cfg->listen[i]);
	return 0;
}

int dns_server_open(struct ev_loop *loop, struct svc_state *st, const struct dns_server_config *cfg,
		    struct dns_server **out, struct svc_err *e)
{
	struct dns_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s || !(s->ls = calloc(2 * (cfg->nlisten + 1), sizeof(*s->ls))) ||
	    !(s->domain = strdup(cfg->domain))) {
		dns_server_close(s);
		return svc_errf(e, ENOMEM, "dns: out of memory");
	}
	s->loop = loop;
	for (char *p = s->domain; *p; p++) /* the zone compares lower case */
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if ((r = dns_zone_new(cfg->domain, cfg->ttl, &s->zone, e)) || (r = fwd_open(s, cfg, e)) ||
	    (r = listen_all(s, cfg, e)) || (r = zone_fill(s, st, e))) {
		dns_server_close(s);
		return r;
	}
	svc_log(SVC_LOG_INFO, "dns: serving %s on %zu sockets, %zu upstream resolvers", s->domain,
		s->nls, cfg->nupstreams);
	*out = s;
	return 0;
}

void dns_server_close(struct dns_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nls; i++) {
		ev_io_stop(s->loop, &s->ls[i].io);
		ev_timer_stop(s->loop, &s->ls[i].pause);
		close(s->ls[i].fd);
	}
	/* Pending queries first: they hold their connections. */
	while (s->pend)
		pending_free(s->pend);
	while (s->conns)
		tconn_close(s->conns);
	dns_fwd_free(s->fwd);
	dns_zone_free(s->zone);
	free(s->ls);
	free(s->domain);
	free(s);
}
