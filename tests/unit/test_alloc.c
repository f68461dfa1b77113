// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>

#include "alloc.h"
#include "unit.h"

static void test_small_range_exhaustion(void)
{
	struct svc_alloc a;
	struct alloc_txn t;
	struct svc_err e = {0};
	struct svc_addr ip[3] = {{0}}, dns;
	char s[SVC_ADDR_STRLEN];

	addr_parse("10.96.0.2", &dns);
	/* /29: 8 addresses, minus network, broadcast and the reserved one: 5. */
	CHECK(alloc_init(&a, "10.96.0.0/29", 30000, 30001, &dns, &e) == 0);
	alloc_txn_begin(&t, &a);
	for (int i = 0; i < 5; i++) {
		struct svc_addr x = {0};
		CHECK(alloc_txn_ip(&t, &x, "spec.clusterIP", &e) == 0);
		CHECK(!addr_eq(&x, &dns));
		if (i < 3)
			ip[i] = x;
	}
	CHECK(alloc_txn_ip(&t, &(struct svc_addr){0}, "spec.clusterIP", &e) < 0);
	CHECK_HAS(e.msg,
		  "spec.clusterIP: no free address in the service CIDR 10.96.0.0/29 (8 in use)");
	alloc_txn_commit(&t);
	CHECK(a.ips.used == 8);
	CHECK_STR(addr_fmt(&ip[0], s), "10.96.0.1");

	/* Release at commit, and not before. */
	alloc_txn_begin(&t, &a);
	alloc_txn_release_ip(&t, &ip[1]);
	CHECK(alloc_txn_ip(&t, &(struct svc_addr){0}, "x", &e) < 0);
	alloc_txn_commit(&t);
	alloc_txn_begin(&t, &a);
	struct svc_addr again = {0};
	CHECK(alloc_txn_ip(&t, &again, "x", &e) == 0);
	CHECK(addr_eq(&again, &ip[1]));
	alloc_txn_commit(&t);
	alloc_free(&a);
}

static void test_explicit_and_abort(void)
{
	struct svc_alloc a;
	struct alloc_txn t;
	struct svc_err e = {0};
	struct svc_addr x;
	uint16_t p = 30005, q = 0;

	CHECK(alloc_init(&a, "10.96.0.0/16", 30000, 30010, NULL, &e) == 0);
	alloc_txn_begin(&t, &a);
	addr_parse("10.96.5.5", &x);
	CHECK(alloc_txn_ip(&t, &x, "spec.clusterIP", &e) == 0);
	CHECK(alloc_txn_ip(&t, &x, "spec.clusterIP", &e) == -EEXIST);
	CHECK_HAS(e.msg, "spec.clusterIP: 10.96.5.5 is already allocated");
	addr_parse("10.97.0.1", &x);
	CHECK(alloc_txn_ip(&t, &x, "spec.clusterIP", &e) == -EINVAL);
	CHECK_HAS(e.msg, "spec.clusterIP: 10.97.0.1 is not in the service CIDR 10.96.0.0/16");
	CHECK(alloc_txn_port(&t, &p, "spec.ports[0].nodePort", &e) == 0);
	CHECK(alloc_txn_port(&t, &p, "spec.ports[0].nodePort", &e) == -EEXIST);
	p = 40000;
	CHECK(alloc_txn_port(&t, &p, "spec.ports[0].nodePort", &e) == -EINVAL);
	CHECK_HAS(e.msg, "spec.ports[0].nodePort: 40000 is not in the nodePort range 30000-30010");
	CHECK(alloc_txn_port(&t, &q, "n", &e) == 0 && q == 30000);
	alloc_txn_abort(&t);
	/* Everything taken by the aborted transaction is free again. */
	CHECK(a.ips.used == 2 && a.node_ports.used == 0);
	alloc_free(&a);
}

static void test_node_port_exhaustion(void)
{
	struct svc_alloc a;
	struct alloc_txn t;
	struct svc_err e = {0};
	uint16_t p;

	CHECK(alloc_init(&a, "10.96.0.0/16", 30000, 30002, NULL, &e) == 0);
	alloc_txn_begin(&t, &a);
	for (int i = 0; i < 3; i++) {
		p = 0;
		CHECK(alloc_txn_port(&t, &p, "n", &e) == 0);
	}
	p = 0;
	CHECK(alloc_txn_port(&t, &p, "spec.ports[1].nodePort", &e) == -ENOSPC);
	CHECK_HAS(e.msg, "spec.ports[1].nodePort: no free nodePort in 30000-30002 (3 in use)");
	alloc_txn_commit(&t);
	alloc_free(&a);
}

static void test_bad_config(void)
{
	struct svc_alloc a;
	struct svc_err e = {0};

	CHECK(alloc_init(&a, "10.96.0.1/16", 30000, 32767, NULL, &e) < 0);
	CHECK_HAS(e.msg, "--service-cidr");
	CHECK(alloc_init(&a, "fd00::/108", 30000, 32767, NULL, &e) < 0);
	CHECK(alloc_init(&a, "10.96.0.0/16", 32767, 30000, NULL, &e) < 0);
	CHECK_HAS(e.msg, "--node-port-range");
}

int main(void)
{
	test_small_range_exhaustion();
	test_explicit_and_abort();
	test_node_port_exhaustion();
	test_bad_config();
	return UNIT_DONE("alloc");
}
