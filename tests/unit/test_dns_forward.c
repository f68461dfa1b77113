// SPDX-License-Identifier: MIT
/* The forwarder against fake upstreams on 127.0.0.1, driven by the same
 * libev loop: answers, the cache and its TTL ageing (on a test clock),
 * negative caching, TC -> TCP, garbage ignored, fail-over, timeouts,
 * cancellation and re-entrant callbacks, and resolv.conf parsing. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "msg.h"
#include "unit.h"
#include "util.h"

enum fake_mode { FAKE_ANSWER, FAKE_NXDOMAIN, FAKE_TC, FAKE_GARBAGE, FAKE_SERVFAIL };

/* A fake upstream: UDP and TCP on one loopback port. */
struct fake {
	enum fake_mode mode;
	int udp, lst, conn;
	ev_io uio, lio, cio;
	struct sockaddr_storage addr;
	int udp_queries, tcp_queries;
	uint8_t tbuf[1024];
	size_t tgot;
};

static double test_clock;

static double clock_now(void)
{
	return test_clock;
}

/* A socket bound to 127.0.0.1:port (0: the kernel's pick), or -1. */
static int bound_socket(int type, uint16_t port, struct sockaddr_storage *addr)
{
	struct sockaddr_in *in = (void *)addr;
	socklen_t len = sizeof(*in);
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	memset(addr, 0, sizeof(*addr));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in->sin_port = htons(port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)in, sizeof(*in)) ||
	    getsockname(fd, (struct sockaddr *)in, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* UDP and TCP on one port number, as a resolver listens: the kernel picks
 * the UDP port, and the same TCP port may be taken by another program's
 * connection, so a few picks are tried. */
static void bound_pair(int *udp, int *tcp, struct sockaddr_storage *addr)
{
	struct sockaddr_storage taddr;

	for (int i = 0; i < 50; i++) {
		*udp = bound_socket(SOCK_DGRAM, 0, addr);
		*tcp = *udp < 0
			   ? -1
			   : bound_socket(SOCK_STREAM,
					  ntohs(((struct sockaddr_in *)addr)->sin_port), &taddr);
		if (*tcp >= 0)
			return;
		if (*udp >= 0)
			close(*udp);
	}
	CHECK(!"no port free for both UDP and TCP in 50 tries");
}

/* The answer to query q for the fake's mode; returns its length. */
static size_t fake_build(struct fake *fk, const uint8_t *qb, size_t qn, bool tcp, uint8_t *out,
			 size_t cap, uint16_t id_delta)
{
	struct dns_query q;
	struct dns_resp r;
	struct svc_err e = {0};
	size_t len = 0;
	struct dns_soa soa = {.serial = 1, .minimum = 10};
	uint8_t a[4] = {192, 0, 2, 1};

	if (dns_query_parse(qb, qn, &q, &e))
		return 0;
	q.id = (uint16_t)(q.id + id_delta);
	CHECK(dns_resp_init(&r, out, tcp ? cap : 512, &q, 1232, &e) == 0);
	if (id_delta)
		a[3] = 66; /* the spoofed address, never to be seen */
	if (fk->mode == FAKE_NXDOMAIN || fk->mode == FAKE_SERVFAIL) {
		dns_resp_set_rcode(&r, fk->mode == FAKE_NXDOMAIN ? DNS_RCODE_NXDOMAIN
								 : DNS_RCODE_SERVFAIL);
		dns_name_from_str(&soa.mname, "ns.example", &e);
		dns_name_from_str(&soa.rname, "host.example", &e);
		if (fk->mode == FAKE_NXDOMAIN)
			dns_resp_add_soa(&r, DNS_SEC_AUTHORITY, &soa.mname, 3600, &soa);
	} else {
		/* 100 records do not fit in 512 bytes: TC over UDP. */
		for (int i = 0; i < (fk->mode == FAKE_TC ? 100 : 1); i++, a[3]++)
			dns_resp_add_a(&r, DNS_SEC_ANSWER, &q.qname, 60 + (uint32_t)i, a);
	}
	CHECK(dns_resp_finish(&r, &len, &e) == 0);
	return len;
}

/* Spoofed and broken replies first: a wrong ID, junk, a mutated copy of
 * the answer under a wrong ID (each parsed in full before being dropped),
 * the right ID for another name; then the real answer. */
static void fake_garbage(struct fake *fk, const uint8_t *b, size_t n, struct sockaddr *to,
			 socklen_t tolen)
{
	static const uint8_t junk[] = {0xff, 0xff, 0x81, 0x80, 0x00, 0x01, 0xc0, 0x0c};
	uint8_t out[1500], mut[1500];
	size_t len = fake_build(fk, b, n, false, out, sizeof(out), 1);

	sendto(fk->udp, out, len, 0, to, tolen);
	sendto(fk->udp, junk, sizeof(junk), 0, to, tolen);
	srand(7);
	for (int i = 0; i < 40; i++) {
		size_t cut = len - (size_t)(rand() % 8);

		memcpy(mut, out, len);
		mut[DNS_HDR_SIZE + (size_t)rand() % (len - DNS_HDR_SIZE)] = (uint8_t)rand();
		sendto(fk->udp, mut, cut, 0, to, tolen);
	}
	memcpy(out + DNS_HDR_ID, b + DNS_HDR_ID, 2); /* the right ID again ... */
	out[DNS_HDR_SIZE + 1] ^= 0x01;		     /* ... for another name */
	sendto(fk->udp, out, len, 0, to, tolen);
}

static void fake_udp_reply(struct fake *fk, const uint8_t *b, size_t n, struct sockaddr *to,
			   socklen_t tolen)
{
	uint8_t out[1500];
	size_t len;

	if (fk->mode == FAKE_GARBAGE)
		fake_garbage(fk, b, n, to, tolen);
	len = fake_build(fk, b, n, false, out, sizeof(out), 0);
	sendto(fk->udp, out, len, 0, to, tolen);
}

static void on_fake_udp(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake *fk = w->data;
	uint8_t b[1500];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(fk->udp, b, sizeof(b), 0, (struct sockaddr *)&from, &flen);

	if (n <= 0)
		return;
	fk->udp_queries++;
	fake_udp_reply(fk, b, (size_t)n, (struct sockaddr *)&from, flen);
}

/* Reads the framed query in pieces, answers in two writes. */
static void on_fake_conn(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake *fk = w->data;
	uint8_t out[4096];
	ssize_t n = read(fk->conn, fk->tbuf + fk->tgot, sizeof(fk->tbuf) - fk->tgot);
	size_t len;

	if (n > 0)
		fk->tgot += (size_t)n;
	if (fk->tgot < 2 || fk->tgot < 2u + dns_get16(fk->tbuf))
		return;
	fk->tcp_queries++;
	len = fake_build(fk, fk->tbuf + 2, fk->tgot - 2, true, out + 2, sizeof(out) - 2, 0);
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	CHECK(write(fk->conn, out, 1) == 1); /* a split length prefix */
	CHECK(write(fk->conn, out + 1, len + 1) == (ssize_t)len + 1);
	ev_io_stop(loop, w);
	close(fk->conn);
	fk->conn = -1;
}

static void on_fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake *fk = w->data;
	int fd = accept4(fk->lst, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0 || fk->conn >= 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	fk->conn = fd;
	fk->tgot = 0;
	ev_io_init(&fk->cio, on_fake_conn, fd, EV_READ);
	fk->cio.data = fk;
	ev_io_start(loop, &fk->cio);
}

/* live: answer; otherwise a bound port that never reads (no ICMP either). */
static void fake_start(struct ev_loop *loop, struct fake *fk, enum fake_mode mode, bool live)
{
	memset(fk, 0, sizeof(*fk));
	fk->mode = mode;
	fk->conn = -1;
	bound_pair(&fk->udp, &fk->lst, &fk->addr);
	CHECK(listen(fk->lst, 4) == 0);
	if (!live)
		return;
	ev_io_init(&fk->uio, on_fake_udp, fk->udp, EV_READ);
	ev_io_init(&fk->lio, on_fake_accept, fk->lst, EV_READ);
	fk->uio.data = fk->lio.data = fk;
	ev_io_start(loop, &fk->uio);
	ev_io_start(loop, &fk->lio);
}

static void fake_stop(struct ev_loop *loop, struct fake *fk)
{
	ev_io_stop(loop, &fk->uio);
	ev_io_stop(loop, &fk->lio);
	ev_io_stop(loop, &fk->cio);
	close(fk->udp);
	close(fk->lst);
	if (fk->conn >= 0)
		close(fk->conn);
}

/* What a callback saw. */
struct res {
	int calls, err;
	uint8_t msg[65536];
	size_t len;
	double at;
	struct ev_loop *loop;
};

static void on_res(void *ctx, int err, const uint8_t *resp, size_t len)
{
	struct res *r = ctx;

	r->calls++;
	r->err = err;
	r->len = resp ? len : 0;
	if (resp)
		memcpy(r->msg, resp, len);
	r->at = now_mono();
}

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Runs the loop until *calls reaches want or max seconds pass. */
static void run_until(struct ev_loop *loop, const int *calls, int want, double max)
{
	double end = now_mono() + max;
	ev_timer wake;

	ev_timer_init(&wake, on_wake, 0.01, 0.01);
	ev_timer_start(loop, &wake);
	while (*calls < want && now_mono() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &wake);
}

/* Lets the loop run for a while (for things that must not happen). */
static void run_for(struct ev_loop *loop, double secs)
{
	int never = 0;

	run_until(loop, &never, 1, secs);
}

/* The message's rcode, answer count, first answer's TTL and address. */
struct seen {
	uint16_t flags, ancount;
	uint32_t ttl;
	uint8_t a[4];
	char qname[DNS_NAME_MAX];
	uint8_t qlen;
};

static struct seen look(const struct res *r)
{
	struct seen s = {0};
	struct dns_rd rd;
	struct dns_rr rr;
	struct dns_name qn;

	dns_rd_init(&rd, r->msg, r->len);
	dns_rd_skip(&rd, 2);
	s.flags = dns_rd_u16(&rd);
	dns_rd_skip(&rd, 2);
	s.ancount = dns_rd_u16(&rd);
	dns_rd_skip(&rd, 4);
	dns_rd_name(&rd, &qn);
	dns_rd_skip(&rd, 4);
	memcpy(s.qname, qn.wire, qn.len);
	s.qlen = qn.len;
	if (s.ancount && !dns_rr_read(&rd, &rr) && rr.rdlen == 4) {
		s.ttl = rr.ttl;
		memcpy(s.a, r->msg + rr.rdata, 4);
	}
	CHECK(rd.err == 0);
	return s;
}

static struct dns_fwd *fwd_make(struct ev_loop *loop, struct sockaddr_storage *ups, size_t n,
				double timeout)
{
	struct dns_fwd_config cfg = {.upstreams = ups,
				     .n = n,
				     .timeout = timeout,
				     .cache_max = 100,
				     .neg_ttl_max = 30,
				     .ttl_max = 300,
				     .now = clock_now};
	struct svc_err e = {0};
	struct dns_fwd *f = NULL;

	CHECK(dns_fwd_new(loop, &cfg, &f, &e) == 0);
	return f;
}

static struct res r1, r2, r3;

static void reset(void)
{
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));
}

static void test_answer_and_cache(struct ev_loop *loop)
{
	struct fake fk;
	struct dns_fwd *f;
	struct dns_fwd_stats st;
	struct seen s;

	reset();
	fake_start(loop, &fk, FAKE_ANSWER, true);
	f = fwd_make(loop, &fk.addr, 1, 1.0);
	CHECK(dns_fwd_query(f, "Example.COM", DNS_TYPE_A, false, on_res, &r1) != NULL);
	/* The same question in flight: joins, no second packet. */
	CHECK(dns_fwd_query(f, "example.com", DNS_TYPE_A, false, on_res, &r2) != NULL);
	run_until(loop, &r2.calls, 1, 1.0);
	CHECK(r1.calls == 1 && r1.err == 0 && r2.calls == 1 && r2.err == 0);
	s = look(&r1);
	CHECK((s.flags & DNS_FLAG_RCODE_MASK) == 0 && s.ancount == 1 && s.ttl == 60);
	CHECK(!memcmp(s.a, "\xc0\x00\x02\x01", 4));
	CHECK(s.qlen == 13 && !memcmp(s.qname, "\7Example\3COM", 13)); /* each its own case */
	s = look(&r2);
	CHECK(s.qlen == 13 && !memcmp(s.qname, "\7example\3com", 13));
	CHECK(fk.udp_queries == 1);

	test_clock += 3.4;
	CHECK(dns_fwd_query(f, "EXAMPLE.com", DNS_TYPE_A, false, on_res, &r3) != NULL);
	CHECK(r3.calls == 0); /* never from within dns_fwd_query */
	run_until(loop, &r3.calls, 1, 1.0);
	s = look(&r3);
	CHECK(r3.calls == 1 && r3.err == 0 && s.ttl == 57 && s.ancount == 1);
	CHECK(!memcmp(s.qname, "\7EXAMPLE\3com", 13));
	CHECK(fk.udp_queries == 1);
	dns_fwd_stats(f, &st);
	CHECK(st.forwarded == 1 && st.cache_hits == 1 && st.cache_misses == 2 && st.coalesced == 1);

	/* Past the TTL the entry is gone: upstream again. */
	test_clock += 61;
	r3.calls = 0;
	dns_fwd_query(f, "example.com", DNS_TYPE_A, false, on_res, &r3);
	run_until(loop, &r3.calls, 1, 1.0);
	CHECK(r3.err == 0 && fk.udp_queries == 2 && look(&r3).ttl == 60);
	dns_fwd_free(f);
	fake_stop(loop, &fk);
}

static void test_nxdomain(struct ev_loop *loop)
{
	struct fake fk;
	struct dns_fwd *f;
	struct dns_fwd_stats st;

	reset();
	fake_start(loop, &fk, FAKE_NXDOMAIN, true);
	f = fwd_make(loop, &fk.addr, 1, 1.0);
	dns_fwd_query(f, "nope.example", DNS_TYPE_A, false, on_res, &r1);
	run_until(loop, &r1.calls, 1, 1.0);
	CHECK(r1.err == 0 && (look(&r1).flags & DNS_FLAG_RCODE_MASK) == DNS_RCODE_NXDOMAIN);
	test_clock += 9; /* the SOA minimum, 10, bounds it (its TTL is 3600) */
	dns_fwd_query(f, "nope.example", DNS_TYPE_A, false, on_res, &r2);
	run_until(loop, &r2.calls, 1, 1.0);
	CHECK(r2.err == 0 && (look(&r2).flags & DNS_FLAG_RCODE_MASK) == DNS_RCODE_NXDOMAIN);
	CHECK(fk.udp_queries == 1);
	test_clock += 2;
	dns_fwd_query(f, "nope.example", DNS_TYPE_A, false, on_res, &r3);
	run_until(loop, &r3.calls, 1, 1.0);
	CHECK(r3.calls == 1 && fk.udp_queries == 2);
	dns_fwd_stats(f, &st);
	CHECK(st.cache_hits == 1 && st.forwarded == 2);
	dns_fwd_free(f);
	fake_stop(loop, &fk);
}

static void test_tc_to_tcp(struct ev_loop *loop)
{
	struct fake fk;
	struct dns_fwd *f;
	struct dns_fwd_stats st;
	struct seen s;

	reset();
	fake_start(loop, &fk, FAKE_TC, true);
	f = fwd_make(loop, &fk.addr, 1, 1.0);
	dns_fwd_query(f, "big.example", DNS_TYPE_A, true, on_res, &r1);
	run_until(loop, &r1.calls, 1, 1.0);
	s = look(&r1);
	CHECK(r1.err == 0 && s.ancount == 100 && !(s.flags & DNS_FLAG_TC));
	CHECK(fk.udp_queries == 1 && fk.tcp_queries == 1);
	dns_fwd_stats(f, &st);
	CHECK(st.tcp_retries == 1);
	dns_fwd_free(f);
	fake_stop(loop, &fk);
}

static void test_garbage_ignored(struct ev_loop *loop)
{
	struct fake fk;
	struct dns_fwd *f;

	reset();
	fake_start(loop, &fk, FAKE_GARBAGE, true);
	f = fwd_make(loop, &fk.addr, 1, 1.0);
	dns_fwd_query(f, "www.example", DNS_TYPE_A, false, on_res, &r1);
	run_until(loop, &r1.calls, 1, 1.0);
	run_for(loop, 0.02);
	CHECK(r1.calls == 1 && r1.err == 0);
	CHECK(!memcmp(look(&r1).a, "\xc0\x00\x02\x01", 4));
	dns_fwd_free(f);
	fake_stop(loop, &fk);
}

static void test_failover(struct ev_loop *loop)
{
	struct fake dead, good;
	struct sockaddr_storage ups[2];
	struct dns_fwd *f;
	double t0;

	reset();
	fake_start(loop, &dead, FAKE_ANSWER, false);
	fake_start(loop, &good, FAKE_ANSWER, true);
	ups[0] = dead.addr;
	ups[1] = good.addr;
	f = fwd_make(loop, ups, 2, 0.3);
	t0 = now_mono();
	dns_fwd_query(f, "www.example", DNS_TYPE_A, false, on_res, &r1);
	run_until(loop, &r1.calls, 1, 1.0);
	CHECK(r1.calls == 1 && r1.err == 0 && good.udp_queries == 1);
	CHECK(r1.at - t0 >= 0.14 && r1.at - t0 < 0.3); /* after one try of 0.15 s */
	dns_fwd_free(f);
	fake_stop(loop, &dead);
	fake_stop(loop, &good);
}

static void test_servfail_next(struct ev_loop *loop)
{
	struct fake bad, good;
	struct sockaddr_storage ups[2];
	struct dns_fwd *f;

	reset();
	fake_start(loop, &bad, FAKE_SERVFAIL, true);
	fake_start(loop, &good, FAKE_ANSWER, true);
	ups[0] = bad.addr;
	ups[1] = good.addr;
	f = fwd_make(loop, ups, 2, 1.0);
	dns_fwd_query(f, "www.example", DNS_TYPE_A, false, on_res, &r1);
	run_until(loop, &r1.calls, 1, 1.0);
	CHECK(r1.err == 0 && (look(&r1).flags & DNS_FLAG_RCODE_MASK) == 0);
	CHECK(bad.udp_queries == 1 && good.udp_queries == 1);
	dns_fwd_free(f);
	fake_stop(loop, &bad);
	fake_stop(loop, &good);
}

static void test_all_dead(struct ev_loop *loop)
{
	struct fake d1, d2;
	struct sockaddr_storage ups[2];
	struct dns_fwd *f;
	struct dns_fwd_stats st;
	double t0;

	reset();
	fake_start(loop, &d1, FAKE_ANSWER, false);
	fake_start(loop, &d2, FAKE_ANSWER, false);
	ups[0] = d1.addr;
	ups[1] = d2.addr;
	f = fwd_make(loop, ups, 2, 0.3);
	t0 = now_mono();
	dns_fwd_query(f, "www.example", DNS_TYPE_A, false, on_res, &r1);
	run_until(loop, &r1.calls, 1, 2.0);
	CHECK(r1.calls == 1 && r1.err == -ETIMEDOUT && r1.len == 0);
	CHECK(r1.at - t0 >= 0.29 && r1.at - t0 < 0.6);
	dns_fwd_stats(f, &st);
	CHECK(st.timeouts == 1);
	dns_fwd_free(f);
	fake_stop(loop, &d1);
	fake_stop(loop, &d2);
}

/* Re-entrancy: r1's callback cancels r2 (same lookup) and asks again. */
static struct dns_fwd *re_f;
static struct dns_fwd_req *re_victim;

static void on_reenter(void *ctx, int err, const uint8_t *resp, size_t len)
{
	on_res(ctx, err, resp, len);
	dns_fwd_cancel(re_f, re_victim);
	dns_fwd_query(re_f, "www.example", DNS_TYPE_A, false, on_res, &r3);
}

static void on_free_all(void *ctx, int err, const uint8_t *resp, size_t len)
{
	on_res(ctx, err, resp, len);
	dns_fwd_free(re_f);
}

static void test_cancel(struct ev_loop *loop)
{
	struct fake fk;
	struct dns_fwd_req *q;

	reset();
	fake_start(loop, &fk, FAKE_ANSWER, true);
	re_f = fwd_make(loop, &fk.addr, 1, 1.0);
	q = dns_fwd_query(re_f, "gone.example", DNS_TYPE_A, false, on_res, &r1);
	dns_fwd_cancel(re_f, q);
	run_until(loop, &fk.udp_queries, 1, 1.0);
	run_for(loop, 0.02);
	CHECK(r1.calls == 0 && fk.udp_queries == 1);

	/* A cancelled cache hit. */
	q = dns_fwd_query(re_f, "gone.example", DNS_TYPE_A, false, on_res, &r1);
	dns_fwd_cancel(re_f, q);
	run_for(loop, 0.02);
	CHECK(r1.calls == 0 && fk.udp_queries == 1);

	dns_fwd_query(re_f, "www.example", DNS_TYPE_A, false, on_reenter, &r1);
	re_victim = dns_fwd_query(re_f, "www.example", DNS_TYPE_A, false, on_res, &r2);
	run_until(loop, &r3.calls, 1, 1.0);
	CHECK(r1.calls == 1 && r2.calls == 0 && r3.calls == 1 && r3.err == 0);

	/* Freeing from a callback: the others are never called. */
	reset();
	dns_fwd_query(re_f, "x.example", DNS_TYPE_A, false, on_free_all, &r1);
	dns_fwd_query(re_f, "x.example", DNS_TYPE_A, false, on_res, &r2);
	run_until(loop, &r1.calls, 1, 1.0);
	run_for(loop, 0.02);
	CHECK(r1.calls == 1 && r2.calls == 0);
	fake_stop(loop, &fk);

	/* Freed with lookups pending. */
	fake_start(loop, &fk, FAKE_ANSWER, false);
	re_f = fwd_make(loop, &fk.addr, 1, 1.0);
	dns_fwd_query(re_f, "y.example", DNS_TYPE_A, false, on_res, &r2);
	dns_fwd_query(re_f, "bad..name", DNS_TYPE_A, false, on_res, &r2);
	dns_fwd_free(re_f);
	run_for(loop, 0.02);
	CHECK(r2.calls == 0);
	fake_stop(loop, &fk);
}

static void test_bad_name(struct ev_loop *loop)
{
	struct fake fk;
	struct dns_fwd *f;

	reset();
	fake_start(loop, &fk, FAKE_ANSWER, true);
	f = fwd_make(loop, &fk.addr, 1, 1.0);
	CHECK(dns_fwd_query(f, "bad..name", DNS_TYPE_A, false, on_res, &r1) != NULL);
	CHECK(r1.calls == 0);
	run_until(loop, &r1.calls, 1, 1.0);
	CHECK(r1.calls == 1 && r1.err == -EINVAL && fk.udp_queries == 0);
	dns_fwd_free(f);
	fake_stop(loop, &fk);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void test_resolv_conf(void)
{
	char path[] = "/tmp/test_dns_forward.XXXXXX";
	struct sockaddr_storage *ns = NULL;
	struct svc_err e = {0};
	size_t n = 0;
	char buf[INET6_ADDRSTRLEN];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	write_file(path, "# generated\n"
			 "search default.svc.cluster.local svc.cluster.local\n"
			 "; nameserver 9.9.9.9\n"
			 "nameserver not-an-address\n"
			 "nameserver 10.0.0.1 # the first\n"
			 "  nameserver\t2001:db8::53\n"
			 "options ndots:5\n"
			 "nameserver 10.0.0.3\n"
			 "nameserver 10.0.0.4\n");
	CHECK(dns_fwd_resolv_conf(path, &ns, &n, &e) == 0);
	CHECK(n == 3);
	if (n == 3) {
		struct sockaddr_in *a = (void *)&ns[0], *c = (void *)&ns[2];
		struct sockaddr_in6 *b = (void *)&ns[1];

		CHECK(a->sin_family == AF_INET && ntohs(a->sin_port) == 53);
		CHECK_STR(inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf)), "10.0.0.1");
		CHECK(b->sin6_family == AF_INET6 && ntohs(b->sin6_port) == 53);
		CHECK_STR(inet_ntop(AF_INET6, &b->sin6_addr, buf, sizeof(buf)), "2001:db8::53");
		CHECK_STR(inet_ntop(AF_INET, &c->sin_addr, buf, sizeof(buf)), "10.0.0.3");
	}
	free(ns);

	write_file(path, "search example\n#nameserver 1.1.1.1\n");
	CHECK(dns_fwd_resolv_conf(path, &ns, &n, &e) == -ENOENT);
	CHECK_HAS(e.msg, "names no nameserver");
	unlink(path);
	CHECK(dns_fwd_resolv_conf(path, &ns, &n, &e) == -ENOENT);
	CHECK_HAS(e.msg, path);
}

static void test_config_errors(struct ev_loop *loop)
{
	struct dns_fwd_config cfg = {0};
	struct sockaddr_storage bad = {.ss_family = AF_UNIX};
	struct svc_err e = {0};
	struct dns_fwd *f = NULL;

	CHECK(dns_fwd_new(loop, &cfg, &f, &e) == -EINVAL && !f);
	cfg.upstreams = &bad;
	cfg.n = 1;
	CHECK(dns_fwd_new(loop, &cfg, &f, &e) == -EAFNOSUPPORT && !f);
}

int main(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

	test_clock = 1000;
	test_resolv_conf();
	test_config_errors(loop);
	test_answer_and_cache(loop);
	test_nxdomain(loop);
	test_tc_to_tcp(loop);
	test_garbage_ignored(loop);
	test_failover(loop);
	test_servfail_next(loop);
	test_all_dead(loop);
	test_cancel(loop);
	test_bad_name(loop);
	ev_loop_destroy(loop);
	return UNIT_DONE("test_dns_forward");
}
