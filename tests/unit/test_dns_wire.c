// SPDX-License-Identifier: MIT
/* The DNS wire layer: hand-built and captured query packets, malformed ones
 * rejected at the right offset, and responses built, compressed, truncated
 * and parsed back field by field. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "msg.h"
#include "unit.h"

/* A packet under construction, for the hand-built cases. */
struct pk {
	uint8_t b[1024];
	size_t n;
};

static void put(struct pk *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void put16(struct pk *p, uint16_t v)
{
	put(p, (uint8_t[]){(uint8_t)(v >> 8), (uint8_t)v}, 2);
}

static void put32(struct pk *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p, (uint16_t)v);
}

static void hdr(struct pk *p, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ar)
{
	p->n = 0;
	put16(p, id);
	put16(p, flags);
	put16(p, qd);
	put16(p, an);
	put16(p, 0);
	put16(p, ar);
}

/* Wire form of a name given in presentation form. */
static void putname(struct pk *p, const char *s)
{
	struct dns_name n;
	struct svc_err e = {0};

	CHECK(dns_name_from_str(&n, s, &e) == 0);
	put(p, n.wire, n.len);
}

static void opt(struct pk *p, uint16_t udp, uint8_t version, bool dnssec)
{
	put(p, "", 1); /* the root owner */
	put16(p, DNS_TYPE_OPT);
	put16(p, udp);
	put32(p, (uint32_t)version << 16 | (dnssec ? DNS_EDNS_DO : 0));
	put16(p, 0);
}

static struct dns_name name(const char *s)
{
	struct dns_name n = {0};
	struct svc_err e = {0};

	CHECK(dns_name_from_str(&n, s, &e) == 0);
	return n;
}

/* Parse and expect failure whose message contains want. */
static void reject(const struct pk *p, const char *want)
{
	struct dns_query q;
	struct svc_err e = {0};

	CHECK(dns_query_parse(p->b, p->n, &q, &e) == -EBADMSG);
	CHECK(e.code == EBADMSG);
	CHECK_HAS(e.msg, want);
}

static void test_parse_a(void)
{
	struct dns_query q;
	struct svc_err e = {0};
	struct pk p;

	hdr(&p, 0x1234, DNS_FLAG_RD, 1, 0, 0);
	put(&p, "\3Www\7Example\3COM", 17);
	put16(&p, DNS_TYPE_A);
	put16(&p, DNS_CLASS_IN);
	CHECK(dns_query_parse(p.b, p.n, &q, &e) == 0);
	CHECK(q.id == 0x1234 && q.flags == DNS_FLAG_RD);
	CHECK(q.has_header && q.has_question && !q.edns);
	CHECK(q.qtype == DNS_TYPE_A && q.qclass == DNS_CLASS_IN);
	CHECK_STR(q.qname_str, "www.example.com");
	CHECK(q.qname.len == 17 && q.qname.labels == 3);
	CHECK(!memcmp(q.qname.wire, "\3Www\7Example\3COM", 17)); /* case kept */
}

/* What `dig +edns My-Svc.Default.svc.Cluster.Local A` sent (BIND 9.18):
 * RD and AD set, OPT with 1232 bytes and a client cookie. */
static const uint8_t dig_edns[] = {
    0x2a, 0x5c, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x06, 0x4d, 0x79,
    0x2d, 0x53, 0x76, 0x63, 0x07, 0x44, 0x65, 0x66, 0x61, 0x75, 0x6c, 0x74, 0x03, 0x73, 0x76,
    0x63, 0x07, 0x43, 0x6c, 0x75, 0x73, 0x74, 0x65, 0x72, 0x05, 0x4c, 0x6f, 0x63, 0x61, 0x6c,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0c, 0x00, 0x0a, 0x00, 0x08, 0x95, 0x12, 0x9f, 0xd6, 0x5c, 0x9d, 0x45, 0xba};

/* `dig +edns=1 +dnssec +nocookie _http._tcp.web.ns.svc.cluster.local SRV`. */
static const uint8_t dig_srv_v1[] = {
    0xe4, 0x61, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x05, 0x5f, 0x68, 0x74,
    0x74, 0x70, 0x04, 0x5f, 0x74, 0x63, 0x70, 0x03, 0x77, 0x65, 0x62, 0x02, 0x6e, 0x73, 0x03, 0x73,
    0x76, 0x63, 0x07, 0x63, 0x6c, 0x75, 0x73, 0x74, 0x65, 0x72, 0x05, 0x6c, 0x6f, 0x63, 0x61, 0x6c,
    0x00, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00};

static void test_parse_captured(void)
{
	struct dns_query q;
	struct svc_err e = {0};

	CHECK(dns_query_parse(dig_edns, sizeof(dig_edns), &q, &e) == 0);
	CHECK(q.id == 0x2a5c && q.flags == (DNS_FLAG_RD | DNS_FLAG_AD));
	CHECK_STR(q.qname_str, "my-svc.default.svc.cluster.local");
	CHECK(!memcmp(q.qname.wire, "\6My-Svc\7Default", 15));
	CHECK(q.edns && q.udp_size == 1232 && q.edns_version == 0 && !q.do_bit);
	CHECK(dns_resp_limit(&q, false, 4096) == 1232);
	CHECK(dns_resp_limit(&q, true, 4096) == DNS_TCP_MAX);

	CHECK(dns_query_parse(dig_srv_v1, sizeof(dig_srv_v1), &q, &e) == 0);
	CHECK(q.qtype == DNS_TYPE_SRV);
	CHECK_STR(q.qname_str, "_http._tcp.web.ns.svc.cluster.local");
	CHECK(q.edns && q.edns_version == 1 && q.do_bit && q.ext_rcode == 0);
}

static void test_parse_ptr(void)
{
	struct dns_query q;
	struct svc_err e = {0};
	struct pk p;

	hdr(&p, 7, 0, 1, 0, 1);
	putname(&p, "10.0.96.10.IN-ADDR.ARPA");
	put16(&p, DNS_TYPE_PTR);
	put16(&p, DNS_CLASS_IN);
	opt(&p, 100, 0, false); /* below 512: treated as 512 */
	CHECK(dns_query_parse(p.b, p.n, &q, &e) == 0);
	CHECK_STR(q.qname_str, "10.0.96.10.in-addr.arpa");
	CHECK(q.qtype == DNS_TYPE_PTR && q.udp_size == 100);
	CHECK(dns_resp_limit(&q, false, 1232) == 512);
}

/* A question whose name is raw, for the malformed-name cases. */
static void rawq(struct pk *p, const void *qname, size_t n)
{
	hdr(p, 1, 0, 1, 0, 0);
	put(p, qname, n);
	put16(p, DNS_TYPE_A);
	put16(p, DNS_CLASS_IN);
}

static void test_malformed_names(void)
{
	uint8_t long_label[72] = {70};
	uint8_t long_name[4 * 64 + 1] = {0};
	struct pk p;

	rawq(&p, long_label, sizeof(long_label));
	reject(&p, "offset 12: label of 70 bytes");
	for (int i = 0; i < 4; i++)
		long_name[i * 64] = 63;
	rawq(&p, long_name, sizeof(long_name));
	reject(&p, "offset 204: name longer than 255 bytes");
	rawq(&p, "\xc0\x0c", 2);
	reject(&p, "offset 12: compression pointer to itself");
	rawq(&p, "\1a\xc0\x0c", 4);
	reject(&p, "offset 14: compression loop");
	rawq(&p, "\1a\xc0\x14", 4);
	reject(&p, "offset 14: forward compression pointer to 20");
	rawq(&p, "\xc0\x02", 2);
	reject(&p, "offset 12: compression pointer to 2, inside the header");
	rawq(&p, "\1a\x80", 3);
	reject(&p, "offset 14: label of 128 bytes");
	rawq(&p, "\3ab", 3); /* runs into the type field, then off the end */
	p.n = 15;
	reject(&p, "offset 12: label of 3 bytes runs past the end");
}

static void test_malformed_message(void)
{
	struct pk p;

	hdr(&p, 1, 0, 1, 0, 0);
	p.n = 5;
	reject(&p, "offset 4: truncated: need 2 bytes, 1 left");
	rawq(&p, "\1a", 3);
	p.b[DNS_HDR_QDCOUNT + 1] = 2;
	reject(&p, "offset 4: QDCOUNT 2, expected 1");
	rawq(&p, "\1a", 3);
	put(&p, "x", 1);
	reject(&p, "offset 19: 1 trailing bytes");

	/* A pointer loop in the answer: owner "b" then a pointer back to it. */
	rawq(&p, "\1a", 3);
	p.b[DNS_HDR_ANCOUNT + 1] = 1;
	put(&p, "\1b\xc0\x13", 4);
	reject(&p, "offset 21: compression loop: pointer to 19");

	rawq(&p, "\1a", 3);
	p.b[DNS_HDR_ARCOUNT + 1] = 2;
	opt(&p, 1232, 0, false);
	opt(&p, 1232, 0, false);
	reject(&p, "offset 30: second OPT record");

	rawq(&p, "\1a", 3);
	p.b[DNS_HDR_ARCOUNT + 1] = 1;
	opt(&p, 1232, 0, false);
	p.b[p.n - 1] = 5; /* RDLENGTH 5, nothing follows */
	reject(&p, "offset 28: RDLENGTH 5 overruns the message");

	rawq(&p, "\1a", 3);
	p.b[DNS_HDR_ARCOUNT + 1] = 1;
	opt(&p, 1232, 0, false);
	p.b[p.n - 1] = 5;
	put(&p, "\0\x0a\0\x09x", 5); /* a cookie option claiming 9 bytes */
	reject(&p, "offset 34: EDNS option: truncated");
}

static void test_names(void)
{
	struct dns_name n, m;
	struct svc_err e = {0};
	char s[DNS_NAME_STR_MAX];
	char big[400];

	CHECK(dns_name_from_str(&n, "a\\.b.C\\065.", &e) == 0);
	CHECK(n.labels == 2 && n.len == 8 && !memcmp(n.wire, "\3a.b\2CA", 8));
	CHECK(dns_name_str(&n, s, sizeof(s)) == 7);
	CHECK_STR(s, "a\\.b.ca");
	CHECK(dns_name_from_str(&m, "A\\.B.ca", &e) == 0);
	CHECK(dns_name_eq(&n, &m));
	CHECK(dns_name_from_str(&n, ".", &e) == 0 && n.len == 1);
	CHECK(dns_name_str(&n, s, sizeof(s)) == 1);
	CHECK_STR(s, ".");
	CHECK(dns_name_from_str(&n, "a..b", &e) == -EINVAL);
	CHECK_HAS(e.msg, "empty label");
	memset(big, 'x', 64);
	big[64] = 0;
	CHECK(dns_name_from_str(&n, big, &e) == -EINVAL);
	CHECK_HAS(e.msg, "label longer than 63");
	/* 127 labels "x" take 255 bytes of wire form: the most allowed. */
	memset(big, 0, sizeof(big));
	for (int i = 0; i < 127; i++)
		memcpy(big + 2 * i, "x.", 2);
	CHECK(dns_name_from_str(&n, big, &e) == 0 && n.len == 255 && n.labels == 127);
	memcpy(big + 254, "x", 1);
	CHECK(dns_name_from_str(&n, big, &e) == -EINVAL);
	CHECK_HAS(e.msg, "name longer than 255");
	CHECK(dns_name_from_str(&n, "\\300", &e) == -EINVAL);
	CHECK(dns_name_from_str(&n, "a\x01.b", &e) == 0);
	CHECK(dns_name_str(&n, s, sizeof(s)) == 7 && !strcmp(s, "a\\001.b"));
}

static void test_sticky(void)
{
	uint8_t buf[4] = {0, 1, 2, 3};
	struct dns_wr w;
	struct dns_rd r;

	dns_wr_init(&w, buf, sizeof(buf));
	dns_wr_u16(&w, 0xabcd);
	dns_wr_u32(&w, 1);
	CHECK(w.err == -EMSGSIZE && w.truncated && w.pos == 2);
	dns_wr_u8(&w, 9); /* would fit, but the error sticks */
	CHECK(w.pos == 2 && buf[2] == 2);

	dns_rd_init(&r, buf, 3);
	CHECK(dns_rd_u16(&r) == 0xabcd);
	CHECK(dns_rd_u32(&r) == 0 && r.err == -EBADMSG && r.err_pos == 2);
	CHECK(dns_rd_u8(&r) == 0 && r.err_pos == 2 && dns_rd_left(&r) == 0);
}

/* Query for qname/qtype, optionally with EDNS. */
static void query(struct dns_query *q, const char *qname, uint16_t qtype, int udp, uint8_t ver)
{
	struct svc_err e = {0};
	struct pk p;

	hdr(&p, 0xbeef, DNS_FLAG_RD | DNS_FLAG_CD, 1, 0, udp ? 1 : 0);
	putname(&p, qname);
	put16(&p, qtype);
	put16(&p, DNS_CLASS_IN);
	if (udp)
		opt(&p, (uint16_t)udp, ver, true);
	CHECK(dns_query_parse(p.b, p.n, q, &e) == 0);
}

static const uint8_t ip_a[4] = {10, 1, 2, 3}, ip_b[4] = {10, 1, 2, 4};
static const uint8_t ip6[16] = {0xfd, 0, [15] = 1};

static void build_all(struct dns_resp *r, const struct dns_query *q)
{
	struct dns_name w0 = name("web-0.my-svc.ns.svc.cluster.local");
	struct dns_name w1 = name("web-1.my-svc.ns.svc.cluster.local");
	struct dns_name zone = name("cluster.local"), ns = name("ns.dns.cluster.local");
	struct dns_soa soa = {name("ns.dns.cluster.local"),
			      name("hostmaster.cluster.local"),
			      2026,
			      7200,
			      1800,
			      86400,
			      5};
	const char *txt[] = {"1.1.0", "x"};

	CHECK(dns_resp_add_srv(r, DNS_SEC_ANSWER, &q->qname, 5, 0, 50, 80, &w0) == 0);
	CHECK(dns_resp_add_srv(r, DNS_SEC_ANSWER, &q->qname, 5, 0, 50, 80, &w1) == 0);
	CHECK(dns_resp_add_name(r, DNS_SEC_ANSWER, &w0, DNS_TYPE_CNAME, 6, &q->qname) == 0);
	CHECK(dns_resp_add_name(r, DNS_SEC_ANSWER, &zone, DNS_TYPE_PTR, 7, &w1) == 0);
	CHECK(dns_resp_add_txt(r, DNS_SEC_ANSWER, &zone, 8, txt, 2) == 0);
	CHECK(dns_resp_add_soa(r, DNS_SEC_AUTHORITY, &zone, 9, &soa) == 0);
	CHECK(dns_resp_add_name(r, DNS_SEC_AUTHORITY, &zone, DNS_TYPE_NS, 10, &ns) == 0);
	CHECK(dns_resp_add_a(r, DNS_SEC_ADDITIONAL, &w0, 11, ip_a) == 0);
	CHECK(dns_resp_add_a(r, DNS_SEC_ADDITIONAL, &w1, 12, ip_b) == 0);
	CHECK(dns_resp_add_aaaa(r, DNS_SEC_ADDITIONAL, &w0, 13, ip6) == 0);
	/* Sections only go forward. */
	CHECK(dns_resp_add_a(r, DNS_SEC_ANSWER, &w0, 1, ip_a) == -EINVAL);
}

/* Read the name at offset at of the message and return its text. */
static const char *name_at(const uint8_t *m, size_t len, size_t at, char *s)
{
	struct dns_rd r;
	struct dns_name n;

	dns_rd_init(&r, m, len);
	dns_rd_seek(&r, at);
	if (dns_rd_name(&r, &n))
		return "(bad name)";
	dns_name_str(&n, s, DNS_NAME_STR_MAX);
	return s;
}

static void read_rr(struct dns_rd *r, struct dns_rr *rr, const char *owner, uint16_t type,
		    uint32_t ttl)
{
	char s[DNS_NAME_STR_MAX];

	CHECK(dns_rr_read(r, rr) == 0);
	dns_name_str(&rr->owner, s, sizeof(s));
	CHECK_STR(s, owner);
	CHECK(rr->type == type && rr->rclass == DNS_CLASS_IN && rr->ttl == ttl);
}

static void check_answer(const uint8_t *m, size_t len, struct dns_rd *r)
{
	struct dns_rr rr;
	char s[DNS_NAME_STR_MAX];
	const char *qn = "my-svc.ns.svc.cluster.local";

	CHECK(m[r->pos] == 0xc0 && m[r->pos + 1] == DNS_HDR_SIZE); /* owner = the question */
	read_rr(r, &rr, qn, DNS_TYPE_SRV, 5);
	CHECK(rr.rdlen == 6 + 35); /* the target is not compressed */
	CHECK(dns_get16(m + rr.rdata) == 0 && dns_get16(m + rr.rdata + 2) == 50);
	CHECK(dns_get16(m + rr.rdata + 4) == 80);
	CHECK_STR(name_at(m, len, rr.rdata + 6, s), "web-0.my-svc.ns.svc.cluster.local");
	read_rr(r, &rr, qn, DNS_TYPE_SRV, 5);
	CHECK_STR(name_at(m, len, rr.rdata + 6, s), "web-1.my-svc.ns.svc.cluster.local");
	read_rr(r, &rr, "web-0.my-svc.ns.svc.cluster.local", DNS_TYPE_CNAME, 6);
	CHECK(rr.rdlen == 2); /* the whole target is a pointer */
	CHECK_STR(name_at(m, len, rr.rdata, s), qn);
	read_rr(r, &rr, "cluster.local", DNS_TYPE_PTR, 7);
	CHECK_STR(name_at(m, len, rr.rdata, s), "web-1.my-svc.ns.svc.cluster.local");
	read_rr(r, &rr, "cluster.local", DNS_TYPE_TXT, 8);
	CHECK(rr.rdlen == 8 && !memcmp(m + rr.rdata, "\0051.1.0\1x", 8));
}

static void check_rest(const uint8_t *m, size_t len, struct dns_rd *r)
{
	struct dns_rr rr;
	struct dns_rd d;
	char s[DNS_NAME_STR_MAX];

	read_rr(r, &rr, "cluster.local", DNS_TYPE_SOA, 9);
	dns_rd_init(&d, m, len);
	dns_rd_seek(&d, rr.rdata);
	dns_rd_name(&d, NULL);
	CHECK_STR(name_at(m, len, rr.rdata, s), "ns.dns.cluster.local");
	CHECK_STR(name_at(m, len, d.pos, s), "hostmaster.cluster.local");
	dns_rd_name(&d, NULL);
	CHECK(dns_rd_u32(&d) == 2026 && dns_rd_u32(&d) == 7200 && dns_rd_u32(&d) == 1800);
	CHECK(dns_rd_u32(&d) == 86400 && dns_rd_u32(&d) == 5 && !d.err);
	CHECK(d.pos == rr.rdata + rr.rdlen);
	read_rr(r, &rr, "cluster.local", DNS_TYPE_NS, 10);
	CHECK_STR(name_at(m, len, rr.rdata, s), "ns.dns.cluster.local");
	CHECK((m[r->pos] & 0xc0) == 0xc0); /* owner points into the SRV target */
	read_rr(r, &rr, "web-0.my-svc.ns.svc.cluster.local", DNS_TYPE_A, 11);
	CHECK(rr.rdlen == 4 && !memcmp(m + rr.rdata, ip_a, 4));
	read_rr(r, &rr, "web-1.my-svc.ns.svc.cluster.local", DNS_TYPE_A, 12);
	CHECK(rr.rdlen == 4 && !memcmp(m + rr.rdata, ip_b, 4));
	read_rr(r, &rr, "web-0.my-svc.ns.svc.cluster.local", DNS_TYPE_AAAA, 13);
	CHECK(rr.rdlen == 16 && !memcmp(m + rr.rdata, ip6, 16));
	CHECK(dns_rr_read(r, &rr) == 0 && rr.type == DNS_TYPE_OPT && rr.rclass == 1232);
	CHECK(rr.ttl == DNS_EDNS_DO && rr.rdlen == 0 && dns_rd_left(r) == 0);
}

static void test_round_trip(void)
{
	struct dns_query q, a;
	struct dns_resp r;
	struct svc_err e = {0};
	uint8_t buf[1232];
	size_t len = 0;
	struct dns_rd rd;

	query(&q, "My-Svc.NS.svc.Cluster.Local", DNS_TYPE_SRV, 4096, 0);
	CHECK(dns_resp_limit(&q, false, sizeof(buf)) == sizeof(buf));
	CHECK(dns_resp_init(&r, buf, sizeof(buf), &q, 1232, &e) == 0);
	dns_resp_set_aa(&r, true);
	build_all(&r, &q);
	CHECK(dns_resp_finish(&r, &len, &e) == 0);
	CHECK(len < 400); /* about 700 without compression */

	CHECK(dns_query_parse(buf, len, &a, &e) == 0);
	CHECK(a.id == 0xbeef && a.qtype == DNS_TYPE_SRV && !dns_resp_tc(&r));
	CHECK(a.flags == (DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_CD));
	CHECK(a.ancount == 5 && a.nscount == 2 && a.arcount == 4);
	CHECK(a.qname.len == q.qname.len && !memcmp(a.qname.wire, "\6My-Svc\2NS", 10));
	CHECK(a.edns && a.udp_size == 1232 && a.do_bit && a.edns_version == 0);

	dns_rd_init(&rd, buf, len);
	dns_rd_seek(&rd, DNS_HDR_SIZE + q.qname.len + 4);
	check_answer(buf, len, &rd);
	check_rest(buf, len, &rd);
}

/* Build with n A records for qname (one RRset), return the parsed result. */
static size_t many_a(struct dns_query *q, uint8_t *buf, size_t limit, int n, struct dns_query *a)
{
	struct dns_resp r;
	struct svc_err e = {0};
	size_t len = 0;
	int dropped = 0;

	CHECK(dns_resp_init(&r, buf, limit, q, 1232, &e) == 0);
	for (int i = 0; i < n; i++)
		dropped += dns_resp_add_a(&r, DNS_SEC_ANSWER, &q->qname, 5, ip_a) == -EMSGSIZE;
	CHECK(dropped > 0 && dns_resp_tc(&r));
	CHECK(dns_resp_finish(&r, &len, &e) == 0);
	CHECK(len <= limit);
	CHECK(dns_query_parse(buf, len, a, &e) == 0);
	CHECK(a->flags & DNS_FLAG_TC);
	CHECK(a->ancount == 0); /* the RRset went whole */
	return len;
}

static void test_truncation(void)
{
	struct dns_query q, a;
	struct dns_resp r;
	struct svc_err e = {0};
	uint8_t buf[DNS_EDNS_UDP_DEF];
	struct dns_name t = name("web.ns.svc.cluster.local");
	size_t len = 0;
	int n = 0;

	query(&q, "Big.Headless.NS.svc.cluster.local", DNS_TYPE_A, 0, 0);
	CHECK(dns_resp_limit(&q, false, 4096) == 512);
	many_a(&q, buf, 512, 100, &a);
	CHECK(!a.edns);

	query(&q, "Big.Headless.NS.svc.cluster.local", DNS_TYPE_A, 4096, 0);
	CHECK(dns_resp_limit(&q, false, DNS_EDNS_UDP_DEF) == DNS_EDNS_UDP_DEF);
	many_a(&q, buf, DNS_EDNS_UDP_DEF, 100, &a);
	CHECK(a.edns && a.arcount == 1); /* OPT kept in a truncated answer */

	/* Separate RRsets: the ones that fit stay, then TC. */
	query(&q, "x.cluster.local", DNS_TYPE_ANY, 0, 0);
	CHECK(dns_resp_init(&r, buf, 512, &q, 0, &e) == 0);
	CHECK(dns_resp_add_name(&r, DNS_SEC_ANSWER, &q.qname, DNS_TYPE_CNAME, 5, &t) == 0);
	while (dns_resp_add(&r, DNS_SEC_ANSWER, &q.qname, (uint16_t)(1000 + n), 5, buf, 40) == 0)
		n++;
	CHECK(n > 5 && dns_resp_tc(&r));
	CHECK(dns_resp_add_a(&r, DNS_SEC_ADDITIONAL, &t, 5, ip_a) == -EMSGSIZE);
	CHECK(dns_resp_finish(&r, &len, &e) == 0 && len <= 512);
	CHECK(dns_query_parse(buf, len, &a, &e) == 0);
	CHECK(a.ancount == n + 1 && (a.flags & DNS_FLAG_TC));
}

static void test_additional_dropped(void)
{
	struct dns_query q, a;
	struct dns_resp r;
	struct svc_err e = {0};
	uint8_t buf[512];
	struct dns_name t = name("web.ns.svc.cluster.local");
	size_t len = 0;

	query(&q, "_http._tcp.web.ns.svc.cluster.local", DNS_TYPE_SRV, 0, 0);
	CHECK(dns_resp_init(&r, buf, sizeof(buf), &q, 0, &e) == 0);
	CHECK(dns_resp_add_srv(&r, DNS_SEC_ANSWER, &q.qname, 5, 0, 100, 80, &t) == 0);
	for (int i = 0; i < 100; i++)
		dns_resp_add_a(&r, DNS_SEC_ADDITIONAL, &t, 5, ip_a);
	/* A different, small RRset still fits after the dropped one. */
	CHECK(dns_resp_add_aaaa(&r, DNS_SEC_ADDITIONAL, &t, 5, ip6) == 0);
	CHECK(!dns_resp_tc(&r)); /* RFC 2181 section 9 */
	CHECK(dns_resp_finish(&r, &len, &e) == 0);
	CHECK(dns_query_parse(buf, len, &a, &e) == 0);
	CHECK(a.ancount == 1 && a.arcount == 1 && !(a.flags & DNS_FLAG_TC));
}

static void test_rcodes(void)
{
	struct dns_query q, a;
	struct dns_resp r;
	struct svc_err e = {0};
	uint8_t buf[512];
	size_t len = 0;
	struct pk p;

	query(&q, "x.cluster.local", DNS_TYPE_A, 1232, 1);
	CHECK(q.edns_version == 1);
	CHECK(dns_resp_init(&r, buf, sizeof(buf), &q, 1232, &e) == 0);
	CHECK(dns_resp_set_rcode(&r, DNS_RCODE_BADVERS) == 0);
	CHECK(dns_resp_finish(&r, &len, &e) == 0);
	CHECK(dns_query_parse(buf, len, &a, &e) == 0);
	CHECK((a.flags & DNS_FLAG_RCODE_MASK) == 0 && a.ext_rcode == 1 && a.edns_version == 0);

	query(&q, "x.cluster.local", DNS_TYPE_A, 0, 0);
	CHECK(dns_resp_init(&r, buf, sizeof(buf), &q, 1232, &e) == 0);
	CHECK(dns_resp_set_rcode(&r, DNS_RCODE_BADVERS) == -EINVAL);
	CHECK(dns_resp_set_rcode(&r, DNS_RCODE_NXDOMAIN) == 0);
	CHECK(dns_resp_finish(&r, &len, &e) == 0);
	CHECK(dns_query_parse(buf, len, &a, &e) == 0);
	CHECK((a.flags & DNS_FLAG_RCODE_MASK) == DNS_RCODE_NXDOMAIN && !a.edns);

	/* FORMERR to a query whose header alone was readable: no question. */
	rawq(&p, "\1a", 3);
	p.b[DNS_HDR_QDCOUNT + 1] = 2;
	CHECK(dns_query_parse(p.b, p.n, &q, &e) == -EBADMSG && q.has_header && !q.has_question);
	CHECK(dns_resp_init(&r, buf, sizeof(buf), &q, 1232, &e) == 0);
	CHECK(dns_resp_set_rcode(&r, DNS_RCODE_FORMERR) == 0);
	CHECK(dns_resp_finish(&r, &len, &e) == 0 && len == DNS_HDR_SIZE);
	CHECK(dns_hdr_id(buf) == 1 && dns_hdr_qdcount(buf) == 0);
	CHECK((dns_hdr_flags(buf) & DNS_FLAG_RCODE_MASK) == DNS_RCODE_FORMERR);
}

int main(void)
{
	test_parse_a();
	test_parse_captured();
	test_parse_ptr();
	test_malformed_names();
	test_malformed_message();
	test_names();
	test_sticky();
	test_round_trip();
	test_truncation();
	test_additional_dropped();
	test_rcodes();
	return UNIT_DONE("test_dns_wire");
}
