// SPDX-License-Identifier: MIT
/* The cluster zone fed through the real state path (apply, pods run,
 * endpoints computed, listeners called), asked with real query packets and
 * its answers parsed back record by record. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "state.h"
#include "unit.h"
#include "zone.h"

static char dir[64];
static struct svc_state st;
static struct dns_zone *zone;

/* --- the state ----------------------------------------------------------- */

static void listener(void *ctx, enum svc_event ev, const struct svc_obj *obj)
{
	CHECK(dns_zone_update(ctx, ev, obj) == 0);
}

static void apply(const char *text)
{
	struct state_results res;
	struct svc_warn w = {0};
	struct svc_err e = {0};
	int r = state_apply(&st, "t.yaml", text, strlen(text), &res, &w, &e);

	CHECK(r == 0);
	if (r)
		fprintf(stderr, "apply: %s\n", e.msg);
	state_results_free(&res);
	svc_warn_free(&w);
}

static void delete (enum svc_kind k, const char *ns, const char *name)
{
	struct state_results res;
	struct svc_err e = {0};

	CHECK(state_delete(&st, k, ns, name, &res, &e) == 0);
	state_results_free(&res);
}

/* The pod runtime's part: running with an address, through the state. */
static void run_pod(const char *ns, const char *name, const char *ip)
{
	struct svc_obj *p = model_get(st.model, KIND_POD, ns, name);

	CHECK(p != NULL);
	if (!p)
		return;
	p->u.pod->phase = POD_RUNNING;
	p->u.pod->ready = true;
	addr_parse(ip, &p->u.pod->ip);
	state_pod_status(&st, p);
}

static void pod(const char *ns, const char *name, const char *app, const char *ip)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n"
		 "  labels:\n    app: %s\nspec:\n  containers:\n  - name: c\n    image: x\n"
		 "    ports:\n    - name: web\n      containerPort: 8080\n",
		 name, ns, app);
	apply(text);
	run_pod(ns, name, ip);
}

static const char *cluster_ip(const char *ns, const char *name, char buf[static 46])
{
	struct svc_obj *o = model_get(st.model, KIND_SERVICE, ns, name);
	return o ? addr_fmt(&o->u.svc->cluster_ip, buf) : "(missing)";
}

/* --- asking -------------------------------------------------------------- */

struct reply {
	enum dns_zone_result res;
	struct dns_query a; /* the response's header, parsed */
	uint16_t rcode;
	char text[16384]; /* "an|ns|ar OWNER TYPE RDATA\n" per record */
	char target[DNS_NAME_STR_MAX];
	uint8_t buf[DNS_TCP_MAX];
	size_t len;
};

static void query_packet(uint8_t *buf, size_t *len, const char *name, uint16_t qtype)
{
	struct dns_name n;
	struct dns_wr w;
	struct svc_err e = {0};

	CHECK(dns_name_from_str(&n, name, &e) == 0);
	dns_wr_init(&w, buf, 512);
	dns_wr_u16(&w, 0x4242);
	dns_wr_u16(&w, DNS_FLAG_RD);
	dns_wr_u16(&w, 1);
	dns_wr_u16(&w, 0);
	dns_wr_u32(&w, 0);
	dns_wr_name(&w, &n, false);
	dns_wr_u16(&w, qtype);
	dns_wr_u16(&w, DNS_CLASS_IN);
	CHECK(w.err == 0);
	*len = w.pos;
}

static const char *type_name(uint16_t t)
{
	switch (t) {
	case DNS_TYPE_A:
		return "A";
	case DNS_TYPE_AAAA:
		return "AAAA";
	case DNS_TYPE_CNAME:
		return "CNAME";
	case DNS_TYPE_PTR:
		return "PTR";
	case DNS_TYPE_SRV:
		return "SRV";
	case DNS_TYPE_TXT:
		return "TXT";
	case DNS_TYPE_SOA:
		return "SOA";
	default:
		return "?";
	}
}

/* The rdata of rr as text. */
static void rdata_text(const uint8_t *m, size_t len, const struct dns_rr *rr, char *out, size_t n)
{
	struct dns_rd d;
	struct dns_name a, b;
	char s1[DNS_NAME_STR_MAX], s2[DNS_NAME_STR_MAX];
	uint32_t v[5];

	dns_rd_init(&d, m, len);
	dns_rd_seek(&d, rr->rdata);
	switch (rr->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		inet_ntop(rr->type == DNS_TYPE_A ? AF_INET : AF_INET6, m + rr->rdata, s1,
			  sizeof(s1));
		snprintf(out, n, "%s", s1);
		return;
	case DNS_TYPE_SRV:
		v[0] = dns_rd_u16(&d), v[1] = dns_rd_u16(&d), v[2] = dns_rd_u16(&d);
		dns_rd_name(&d, &a);
		dns_name_str(&a, s1, sizeof(s1));
		snprintf(out, n, "%u %u %u %s", v[0], v[1], v[2], s1);
		return;
	case DNS_TYPE_TXT:
		snprintf(out, n, "\"%.*s\"", m[rr->rdata], m + rr->rdata + 1);
		return;
	case DNS_TYPE_SOA:
		dns_rd_name(&d, &a);
		dns_rd_name(&d, &b);
		for (int i = 0; i < 5; i++)
			v[i] = dns_rd_u32(&d);
		dns_name_str(&a, s1, sizeof(s1));
		dns_name_str(&b, s2, sizeof(s2));
		snprintf(out, n, "%s %s %u %u %u %u %u", s1, s2, v[0], v[1], v[2], v[3], v[4]);
		return;
	default:
		dns_rd_name(&d, &a);
		dns_name_str(&a, s1, sizeof(s1));
		snprintf(out, n, "%s", s1);
	}
	CHECK(d.err == 0);
}

static void read_records(struct reply *rp)
{
	static const char *const sec[] = {"an", "ns", "ar"};
	uint16_t count[3] = {rp->a.ancount, rp->a.nscount, rp->a.arcount};
	struct dns_rd d;
	struct dns_rr rr;
	char owner[DNS_NAME_STR_MAX], rdata[1200];
	size_t used = 0;

	dns_rd_init(&d, rp->buf, rp->len);
	dns_rd_seek(&d, DNS_HDR_SIZE);
	dns_rd_name(&d, NULL);
	dns_rd_skip(&d, 4);
	rp->text[0] = '\0';
	for (int s = 0; s < 3; s++)
		for (uint16_t i = 0; i < count[s]; i++) {
			CHECK(dns_rr_read(&d, &rr) == 0);
			if (d.err || rr.type == DNS_TYPE_OPT)
				continue;
			CHECK(rr.ttl == 5 && rr.rclass == DNS_CLASS_IN);
			dns_name_str(&rr.owner, owner, sizeof(owner));
			rdata_text(rp->buf, rp->len, &rr, rdata, sizeof(rdata));
			used += (size_t)snprintf(rp->text + used, sizeof(rp->text) - used,
						 "%s %s %s %s\n", sec[s], owner, type_name(rr.type),
						 rdata);
			CHECK(used < sizeof(rp->text));
		}
}

/* Ask the zone for name/qtype in a response of at most limit bytes. */
static void ask(struct reply *rp, const char *name, uint16_t qtype, size_t limit)
{
	uint8_t pk[512];
	size_t pklen = 0;
	struct dns_query q;
	struct dns_resp r;
	struct svc_err e = {0};

	query_packet(pk, &pklen, name, qtype);
	CHECK(dns_query_parse(pk, pklen, &q, &e) == 0);
	CHECK(dns_resp_init(&r, rp->buf, limit, &q, 1232, &e) == 0);
	rp->target[0] = '\0';
	rp->res = dns_zone_answer(zone, &q, &r, rp->target, sizeof(rp->target));
	CHECK(dns_resp_finish(&r, &rp->len, &e) == 0);
	CHECK(dns_query_parse(rp->buf, rp->len, &rp->a, &e) == 0);
	rp->rcode = rp->a.flags & DNS_FLAG_RCODE_MASK;
	read_records(rp);
}

static struct reply *R; /* big: one, on the heap */

/* An authoritative answer with rcode and exactly ancount answers. */
static void expect(const char *name, uint16_t qtype, uint16_t rcode, uint16_t ancount)
{
	ask(R, name, qtype, DNS_TCP_MAX);
	CHECK(R->res != DNS_Z_NOT_OURS);
	CHECK(R->a.flags & DNS_FLAG_AA);
	if (R->rcode != rcode || R->a.ancount != ancount)
		fprintf(stderr, "%s %s: rcode %u, %u answers, wanted %u, %u:\n%s", name,
			type_name(qtype), R->rcode, R->a.ancount, rcode, ancount, R->text);
	CHECK(R->rcode == rcode && R->a.ancount == ancount);
}

/* NODATA or NXDOMAIN: no answer, the zone's SOA in authority. */
static void expect_negative(const char *name, uint16_t qtype, uint16_t rcode)
{
	expect(name, qtype, rcode, 0);
	CHECK(R->a.nscount == 1);
	CHECK_HAS(R->text, "ns cluster.local SOA ns.dns.cluster.local hostmaster.cluster.local ");
	CHECK_HAS(R->text, " 7200 1800 86400 5\n");
}

static void expect_not_ours(const char *name, uint16_t qtype)
{
	ask(R, name, qtype, DNS_TCP_MAX);
	CHECK(R->res == DNS_Z_NOT_OURS);
	CHECK(R->a.ancount == 0 && R->a.nscount == 0 && !(R->a.flags & DNS_FLAG_AA));
}

/* --- the cases ------------------------------------------------------------ */

#define WEB                                                                                        \
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n"                 \
	"  - name: http\n    port: 80\n  - name: dns\n    port: 53\n    protocol: UDP\n"

static void test_cluster_ip(void)
{
	char ip[46], line[160], rev[64];
	unsigned a, b, c, d;

	apply(WEB);
	cluster_ip("default", "web", ip);
	snprintf(line, sizeof(line), "an web.default.svc.cluster.local A %s\n", ip);
	expect("web.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, line); /* no endpoints, still there */
	expect_negative("web.default.svc.cluster.local", DNS_TYPE_AAAA, DNS_RCODE_NOERROR);
	expect_negative("web.default.svc.cluster.local", DNS_TYPE_MX, DNS_RCODE_NOERROR);

	expect("_http._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV, DNS_RCODE_NOERROR, 1);
	CHECK_HAS(R->text, "an _http._tcp.web.default.svc.cluster.local SRV 0 100 80 "
			   "web.default.svc.cluster.local\n");
	snprintf(line, sizeof(line), "ar web.default.svc.cluster.local A %s\n", ip);
	CHECK_HAS(R->text, line);
	expect("_dns._udp.web.default.svc.cluster.local", DNS_TYPE_SRV, DNS_RCODE_NOERROR, 1);
	CHECK_HAS(R->text, "SRV 0 100 53 web.default.svc.cluster.local\n");
	expect_negative("_http._udp.web.default.svc.cluster.local", DNS_TYPE_SRV,
			DNS_RCODE_NXDOMAIN);
	expect_negative("_http._tcp.web.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);

	CHECK(sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d) == 4);
	snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa", d, c, b, a);
	expect(rev, DNS_TYPE_PTR, DNS_RCODE_NOERROR, 1);
	CHECK_HAS(R->text, "PTR web.default.svc.cluster.local\n");
}

/* The query's case is echoed; the lookup ignores it. */
static void test_case(void)
{
	struct dns_rd d;
	struct dns_rr rr;

	expect("WeB.DeFault.SVC.Cluster.LOCAL", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	CHECK(!memcmp(R->a.qname.wire, "\3WeB\7DeFault\3SVC", 16));
	dns_rd_init(&d, R->buf, R->len);
	dns_rd_seek(&d, DNS_HDR_SIZE + R->a.qname.len + 4);
	CHECK(dns_rr_read(&d, &rr) == 0 && !memcmp(rr.owner.wire, "\3WeB\7DeFault", 12));
	expect("_HTTP._Tcp.web.default.svc.cluster.local", DNS_TYPE_SRV, DNS_RCODE_NOERROR, 1);
}

#define HEADLESS(name, ns, app)                                                                    \
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: " name "\n  namespace: " ns             \
	"\nspec:\n  clusterIP: None\n  selector:\n    app: " app "\n  ports:\n"                    \
	"  - name: web\n    port: 80\n    targetPort: web\n"

static void test_headless(void)
{
	apply(HEADLESS("hl", "default", "hl") "---\n" HEADLESS("idle", "default", "nothing"));
	expect_negative("hl.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	pod("default", "hl-0", "hl", "10.244.0.5");
	pod("default", "hl-1", "hl", "10.244.0.6");
	pod("default", "hl-2", "hl", "10.244.0.7");
	expect("hl.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 3);
	CHECK_HAS(R->text, "an hl.default.svc.cluster.local A 10.244.0.6\n");
	expect("hl-1.hl.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, "an hl-1.hl.default.svc.cluster.local A 10.244.0.6\n");
	expect("_web._tcp.hl.default.svc.cluster.local", DNS_TYPE_SRV, DNS_RCODE_NOERROR, 3);
	CHECK_HAS(R->text, "SRV 0 33 8080 hl-2.hl.default.svc.cluster.local\n");
	CHECK(R->a.arcount == 3);
	CHECK_HAS(R->text, "ar hl-0.hl.default.svc.cluster.local A 10.244.0.5\n");
	expect("6.0.244.10.in-addr.arpa", DNS_TYPE_PTR, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, "an 6.0.244.10.in-addr.arpa PTR hl-1.hl.default.svc.cluster.local\n");
	expect_negative("6.0.244.10.in-addr.arpa", DNS_TYPE_A, DNS_RCODE_NOERROR);
	/* No ready endpoint: the name does not exist. */
	expect_negative("idle.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("_web._tcp.idle.default.svc.cluster.local", DNS_TYPE_SRV,
			DNS_RCODE_NXDOMAIN);
}

/* Endpoints written by hand: a hostname, an IPv6 address, a not-ready one. */
static void test_manual_endpoints(void)
{
	const char *v6rev =
	    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";

	apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  clusterIP: None\n"
	      "  ports:\n  - name: pg\n    port: 5432\n---\napiVersion: v1\nkind: Endpoints\n"
	      "metadata:\n  name: db\nsubsets:\n- addresses:\n  - ip: 192.0.2.1\n"
	      "    hostname: primary\n  - ip: fd00::5\n  notReadyAddresses:\n  - ip: 192.0.2.9\n"
	      "  ports:\n  - name: pg\n    port: 5433\n");
	expect("db.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, "an db.default.svc.cluster.local A 192.0.2.1\n");
	expect("db.default.svc.cluster.local", DNS_TYPE_AAAA, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, "an db.default.svc.cluster.local AAAA fd00::5\n");
	expect("primary.db.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	expect("fd00--5.db.default.svc.cluster.local", DNS_TYPE_AAAA, DNS_RCODE_NOERROR, 1);
	expect_negative("fd00--5.db.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect("_pg._tcp.db.default.svc.cluster.local", DNS_TYPE_SRV, DNS_RCODE_NOERROR, 2);
	CHECK_HAS(R->text, "SRV 0 50 5433 primary.db.default.svc.cluster.local\n");
	CHECK_HAS(R->text, "ar fd00--5.db.default.svc.cluster.local AAAA fd00::5\n");
	expect(v6rev, DNS_TYPE_PTR, DNS_RCODE_NOERROR, 1);
	CHECK_HAS(R->text, "PTR fd00--5.db.default.svc.cluster.local\n");
	expect_not_ours("9.2.0.192.in-addr.arpa", DNS_TYPE_PTR); /* not ready */
	expect_negative("192-0-2-9.db.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
}

static void test_external_name(void)
{
	apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n"
	      "  type: ExternalName\n  externalName: example.com\n");
	ask(R, "ext.default.svc.cluster.local", DNS_TYPE_A, DNS_TCP_MAX);
	CHECK(R->res == DNS_Z_CNAME_EXTERNAL);
	CHECK_STR(R->target, "example.com");
	CHECK_STR(R->text, "an ext.default.svc.cluster.local CNAME example.com\n");
	CHECK(R->a.flags & DNS_FLAG_AA);
	expect("ext.default.svc.cluster.local", DNS_TYPE_CNAME, DNS_RCODE_NOERROR, 1);
	CHECK(R->res == DNS_Z_ANSWERED);
}

static void test_pods(void)
{
	struct svc_addr a;

	expect("10-244-0-5.default.pod.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, "an 10-244-0-5.default.pod.cluster.local A 10.244.0.5\n");
	expect_negative("10-244-0-5.default.pod.cluster.local", DNS_TYPE_AAAA, DNS_RCODE_NOERROR);
	expect_negative("10-244-0-5.other.pod.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("10-244-9-9.default.pod.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	addr_parse("10.244.0.6", &a);
	CHECK_STR(dns_zone_pod_ns(zone, &a), "default");
	addr_parse("10.244.9.9", &a);
	CHECK(dns_zone_pod_ns(zone, &a) == NULL);
	/* A deleted pod leaves its records and its service. */
	delete (KIND_POD, "default", "hl-2");
	expect_negative("10-244-0-7.default.pod.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("hl-2.hl.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect("hl.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 2);
	expect_not_ours("7.0.244.10.in-addr.arpa", DNS_TYPE_PTR);
}

static void test_zone_names(void)
{
	expect("dns-version.cluster.local", DNS_TYPE_TXT, DNS_RCODE_NOERROR, 1);
	CHECK_STR(R->text, "an dns-version.cluster.local TXT \"1.1.0\"\n");
	expect_negative("dns-version.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect_negative("cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect("cluster.local", DNS_TYPE_SOA, DNS_RCODE_NOERROR, 1);
	expect_negative("svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect_negative("pod.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect_negative("default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect_negative("default.pod.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect_negative("nope.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("x.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("a.b.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("other.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_not_ours("example.com", DNS_TYPE_A);
	expect_not_ours("xcluster.local", DNS_TYPE_A);
	expect_not_ours("1.2.3.4.in-addr.arpa", DNS_TYPE_PTR);
	expect_not_ours("1.2.3.in-addr.arpa", DNS_TYPE_PTR);
	expect_not_ours("256.0.96.10.in-addr.arpa", DNS_TYPE_PTR);
}

/* The serial grows with changes; the last service of a namespace takes the
 * namespace's empty non-terminal with it. */
static void test_deletion(void)
{
	uint32_t serial = dns_zone_serial(zone);
	char ip[46], rev[64];
	unsigned a, b, c, d;

	apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: solo\n  namespace: lone\n"
	      "spec:\n  ports:\n  - port: 80\n");
	CHECK(dns_zone_serial(zone) > serial);
	expect_negative("lone.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR);
	expect("solo.lone.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 1);
	delete (KIND_SERVICE, "lone", "solo");
	expect_negative("solo.lone.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("lone.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);

	cluster_ip("default", "web", ip);
	CHECK(sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d) == 4);
	snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa", d, c, b, a);
	delete (KIND_SERVICE, "default", "web");
	expect_negative("web.default.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NXDOMAIN);
	expect_negative("_http._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV,
			DNS_RCODE_NXDOMAIN);
	expect_not_ours(rev, DNS_TYPE_PTR);
}

/* 100 endpoints: truncated whole at 512 bytes, complete over TCP. */
static void test_big_headless(void)
{
	char name[32], ip[32];

	apply(HEADLESS("big", "many", "big"));
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "big-%d", i);
		snprintf(ip, sizeof(ip), "10.245.%d.%d", i / 50, i % 50 + 1);
		pod("many", name, "big", ip);
	}
	ask(R, "big.many.svc.cluster.local", DNS_TYPE_A, DNS_UDP_MIN);
	CHECK(R->len <= DNS_UDP_MIN && (R->a.flags & DNS_FLAG_TC) && R->a.ancount == 0);
	expect("big.many.svc.cluster.local", DNS_TYPE_A, DNS_RCODE_NOERROR, 100);
	CHECK(!(R->a.flags & DNS_FLAG_TC));
	expect("_web._tcp.big.many.svc.cluster.local", DNS_TYPE_SRV, DNS_RCODE_NOERROR, 100);
	CHECK(R->a.arcount == 100);
	CHECK_HAS(R->text, "SRV 0 1 8080 big-42.big.many.svc.cluster.local\n");
	ask(R, "_web._tcp.big.many.svc.cluster.local", DNS_TYPE_SRV, DNS_UDP_MIN);
	CHECK((R->a.flags & DNS_FLAG_TC) && R->a.ancount == 0);
}

static void test_new_errors(void)
{
	struct dns_zone *z = NULL;
	struct svc_err e = {0};

	CHECK(dns_zone_new("a..b", 5, &z, &e) == -EINVAL && z == NULL);
	CHECK_HAS(e.msg, "cluster domain \"a..b\"");
	CHECK(dns_zone_new(".", 5, &z, &e) == -EINVAL && z == NULL);
	CHECK(dns_zone_update(zone, EV_ADDED, NULL) == 0);
}

/* --- memory: 30,000 services with two named ports ------------------------ */

static void print_memory(void)
{
	struct svc_port ports[2] = {{.name = "http", .proto = IPPROTO_TCP, .port = 80},
				    {.name = "metrics", .proto = IPPROTO_TCP, .port = 9090}};
	struct svc_service svc = {.type = SVC_CLUSTER_IP, .ports = ports, .nports = 2};
	struct svc_obj o = {.kind = KIND_SERVICE, .u.svc = &svc};
	char name[32], key[64], ns[16];
	struct dns_zone *z;
	struct svc_err e = {0};
	size_t before = mallinfo2().uordblks;

	CHECK(dns_zone_new("cluster.local", 5, &z, &e) == 0);
	for (uint32_t i = 0; i < 30000; i++) {
		snprintf(name, sizeof(name), "service-%u", i);
		snprintf(ns, sizeof(ns), "ns-%u", i % 50);
		snprintf(key, sizeof(key), "Service/%s/%s", ns, name);
		o.name = name, o.ns = ns, o.key = key;
		addr_from_v4(&svc.cluster_ip, 0x0a600000u + i + 1);
		CHECK(dns_zone_update(z, EV_ADDED, &o) == 0);
	}
	printf("dns zone: 30000 services x 2 ports: %.1f MB\n",
	       (double)(mallinfo2().uordblks - before) / 1e6);
	dns_zone_free(z);
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	dir[0] = '\0';
}

int main(void)
{
	struct state_config cfg = {.state_dir = dir,
				   .service_cidr = "10.96.0.0/16",
				   .node_port_lo = 30000,
				   .node_port_hi = 32767};
	struct svc_err e = {0};

	atexit(remove_dir);
	snprintf(dir, sizeof(dir), "/tmp/svcd-unit-XXXXXX");
	if (!mkdtemp(dir) || !(R = calloc(1, sizeof(*R))))
		return 1;
	CHECK(state_open(&st, &cfg, &e) == 0 && state_load(&st, &e) == 0);
	CHECK(dns_zone_new("Cluster.Local.", 5, &zone, &e) == 0);
	state_listen(&st, listener, zone);
	test_cluster_ip();
	test_case();
	test_headless();
	test_manual_endpoints();
	test_external_name();
	test_pods();
	test_zone_names();
	test_deletion();
	test_big_headless();
	test_new_errors();
	state_close(&st);
	dns_zone_free(zone);
	free(R);
	if (getenv("DNS_ZONE_MEM"))
		print_memory();
	return UNIT_DONE("test_dns_zone");
}
