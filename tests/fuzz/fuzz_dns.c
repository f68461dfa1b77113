// SPDX-License-Identifier: MIT
/* libFuzzer harness for the DNS wire layer: any bytes must parse or fail
 * cleanly; a query that parses must give a response that parses back with
 * the same question, whose every RR reads, and whose name text reads back
 * into the same name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void add_rrs(struct dns_resp *r, const struct dns_query *q)
{
	static const uint8_t a4[4] = {10, 96, 0, 10};
	static const char *const txt[] = {"1.1.0"};
	struct dns_name t, zone;
	struct dns_soa soa = {0};

	if (dns_name_from_str(&t, "web-0.My-Svc.ns.svc.cluster.local", NULL) ||
	    dns_name_from_str(&zone, "cluster.local", NULL) ||
	    dns_name_from_str(&soa.mname, "ns.dns.cluster.local", NULL) ||
	    dns_name_from_str(&soa.rname, "hostmaster.cluster.local", NULL))
		abort();
	dns_resp_set_aa(r, true);
	dns_resp_add_a(r, DNS_SEC_ANSWER, &q->qname, 5, a4);
	dns_resp_add_a(r, DNS_SEC_ANSWER, &q->qname, 5, a4);
	dns_resp_add_name(r, DNS_SEC_ANSWER, &t, DNS_TYPE_CNAME, 5, &q->qname);
	dns_resp_add_srv(r, DNS_SEC_ANSWER, &q->qname, 5, 0, 100, 53, &t);
	dns_resp_add_txt(r, DNS_SEC_ANSWER, &zone, 5, txt, 1);
	dns_resp_add_soa(r, DNS_SEC_AUTHORITY, &zone, 5, &soa);
	dns_resp_add_a(r, DNS_SEC_ADDITIONAL, &t, 5, a4);
	if (q->edns && q->edns_version)
		dns_resp_set_rcode(r, DNS_RCODE_BADVERS);
}

/* Every RR after the question must read. */
static void walk(const uint8_t *m, size_t len, const struct dns_query *a)
{
	struct dns_rd r;
	struct dns_rr rr;
	unsigned n = (unsigned)a->ancount + a->nscount + a->arcount;

	dns_rd_init(&r, m, len);
	dns_rd_seek(&r, DNS_HDR_SIZE);
	dns_rd_name(&r, NULL);
	dns_rd_skip(&r, 4);
	for (unsigned i = 0; i < n; i++)
		dns_rr_read(&r, &rr);
	if (r.err || dns_rd_left(&r))
		abort();
}

static void respond(const struct dns_query *q, bool tcp)
{
	static uint8_t buf[DNS_TCP_MAX];
	struct dns_query a;
	struct dns_resp r;
	struct svc_err e = {0};
	size_t limit = dns_resp_limit(q, tcp, 4096), len = 0;

	if (dns_resp_init(&r, buf, limit, q, 1232, &e))
		abort();
	add_rrs(&r, q);
	if (dns_resp_finish(&r, &len, &e) || len > limit)
		abort();
	if (dns_query_parse(buf, len, &a, &e))
		abort(); /* we wrote something our own reader refuses */
	if (a.id != q->id || a.qtype != q->qtype || !dns_name_eq(&a.qname, &q->qname) ||
	    memcmp(a.qname.wire, q->qname.wire, q->qname.len) || a.edns != q->edns)
		abort();
	walk(buf, len, &a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	struct dns_name n;
	struct svc_err e = {0};

	if (dns_query_parse(data, size, &q, &e))
		return 0;
	/* The lookup text must name the same name (case aside). */
	if (dns_name_from_str(&n, q.qname_str, &e) || !dns_name_eq(&n, &q.qname))
		abort();
	respond(&q, false);
	respond(&q, true);
	return 0;
}
