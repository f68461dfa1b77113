// SPDX-License-Identifier: MIT
/* ct_delete_udp against the kernel, inside a private network namespace so
 * that the host's conntrack table is never touched.  Entries are created
 * through ctnetlink with explicit original and reply tuples, which is what a
 * DNAT'ed flow looks like:
 *
 *   client 10.0.0.1:40000 --> service 10.96.0.10:53     (original tuple)
 *   client 10.0.0.1:40000 <-- endpoint 10.244.0.5:53    (reply tuple)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "../../netlink/conntrack.h"
#include "unit.h"

struct flow {
	const char *client, *service, *endpoint;
	uint16_t cport, sport, eport; /* client, service and endpoint ports */
	uint8_t proto;
	uint16_t zone;
};

static struct mnl_socket *nl;
static uint32_t seq;

static struct svc_addr ip(const char *s)
{
	struct svc_addr a;

	if (addr_parse(s, &a) < 0)
		abort();
	return a;
}

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const char *src, const char *dst,
		      uint8_t proto, uint16_t sp, uint16_t dp)
{
	struct svc_addr s = ip(src), d = ip(dst);
	bool v4 = s.family == AF_INET;
	struct nlattr *t = mnl_attr_nest_start(nlh, type), *n;

	n = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, v4 ? 4 : 16, s.a);
	mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, v4 ? 4 : 16, d.a);
	mnl_attr_nest_end(nlh, n);
	n = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sp));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dp));
	mnl_attr_nest_end(nlh, n);
	mnl_attr_nest_end(nlh, t);
}

/* A request about one flow: its original tuple and zone. */
static struct nlmsghdr *flow_request(char *buf, uint16_t type, uint16_t flags, const struct flow *f)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = ip(f->client).family;
	nfg->version = NFNETLINK_V0;
	put_tuple(nlh, CTA_TUPLE_ORIG, f->client, f->service, f->proto, f->cport, f->sport);
	if (f->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(f->zone));
	return nlh;
}

/* Sends one request and reads until its ACK; 0 or -errno. */
static int talk(struct nlmsghdr *nlh)
{
	char buf[8192];
	int r;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ssize_t len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0)
			return -errno;
		r = mnl_cb_run(buf, len, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL);
		if (r < 0)
			return -errno;
	} while (r != MNL_CB_STOP);
	return 0;
}

static int flow_add(const struct flow *f)
{
	char buf[1024] = {0}; /* libmnl does not zero attribute padding */
	struct nlmsghdr *nlh = flow_request(buf, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, f);

	put_tuple(nlh, CTA_TUPLE_REPLY, f->endpoint, f->client, f->proto, f->eport, f->cport);
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(300));
	return talk(nlh);
}

/* 1 if the kernel still has the flow, 0 if not, -errno on failure. */
static int flow_exists(const struct flow *f)
{
	char buf[1024] = {0}; /* libmnl does not zero attribute padding */
	int r = talk(flow_request(buf, IPCTNL_MSG_CT_GET, 0, f));

	return r == -ENOENT ? 0 : r == 0 ? 1 : r;
}

static struct ct_match match(const char *service, uint16_t sport, const char *endpoint,
			     uint16_t eport)
{
	struct ct_match m = {.orig_dport = sport, .endpoint = ip(endpoint), .endpoint_port = eport};

	if (service)
		m.orig_dst = ip(service);
	return m;
}

#define UDP IPPROTO_UDP
static const struct flow fa = {"10.0.0.1", "10.96.0.10", "10.244.0.5", 40000, 53, 53, UDP, 0};
static const struct flow fb = {"10.0.0.1", "10.96.0.10", "10.244.0.6", 40001, 53, 53, UDP, 0};
static const struct flow fc = {"10.0.0.1", "10.96.0.10", "10.244.0.5", 40002, 5353, 5353, UDP, 0};
/* TCP to the same service and endpoint as A: never ours. */
static const struct flow fd = {"10.0.0.1", "10.96.0.10", "10.244.0.5", 40003,
			       53,	   53,		 IPPROTO_TCP,  0};
/* nodePort flows to two node addresses. */
static const struct flow fe = {"10.0.0.2", "192.168.1.10", "10.244.0.5", 40000, 30053, 53, UDP, 0};
static const struct flow ff = {"10.0.0.2", "172.18.0.2", "10.244.0.5", 40001, 30053, 53, UDP, 0};
static const struct flow fg = {"fd00::1", "fd00:96::10", "fd00:244::5", 40000, 53, 53, UDP, 0};
/* Same tuple as A but in conntrack zone 7. */
static const struct flow fz = {"10.0.0.1", "10.96.0.10", "10.244.0.5", 40000, 53, 53, UDP, 7};

static const struct flow *const all[] = {&fa, &fb, &fc, &fd, &fe, &ff, &fg, &fz};

/* Deletes by one match and checks the count and which flows survive. */
static void expect_delete(const struct ct_match *m, size_t n, size_t want,
			  const struct flow *const *gone, size_t ngone)
{
	struct svc_err e = {0};
	size_t deleted = 99;

	CHECK(ct_delete_udp(m, n, &deleted, &e) == 0);
	CHECK_STR(e.msg, "");
	CHECK(deleted == want);
	for (size_t i = 0; i < ngone; i++)
		CHECK(flow_exists(gone[i]) == 0);
}

static int live_count(void)
{
	int n = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		n += flow_exists(all[i]) == 1;
	return n;
}

static void test_matches(void)
{
	struct ct_match m;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		CHECK(flow_add(all[i]) == 0);
	CHECK(live_count() == 8);

	/* One endpoint of a ClusterIP: A and its twin in zone 7, not B, C or D. */
	m = match("10.96.0.10", 53, "10.244.0.5", 53);
	expect_delete(&m, 1, 2, (const struct flow *const[]){&fa, &fz}, 2);
	CHECK(live_count() == 6);

	/* A wrong endpoint port keeps C; any port removes it. */
	m = match("10.96.0.10", 5353, "10.244.0.5", 9999);
	expect_delete(&m, 1, 0, NULL, 0);
	m = match("10.96.0.10", 5353, "10.244.0.5", 0);
	expect_delete(&m, 1, 1, (const struct flow *const[]){&fc}, 1);

	/* nodePort: any destination address on the port. */
	m = match(NULL, 30053, "10.244.0.5", 0);
	expect_delete(&m, 1, 2, (const struct flow *const[]){&fe, &ff}, 2);

	m = match("fd00:96::10", 53, "fd00:244::5", 53);
	expect_delete(&m, 1, 1, (const struct flow *const[]){&fg}, 1);

	/* TCP is never touched, even when everything else matches. */
	m = match(NULL, 53, "10.244.0.5", 0);
	expect_delete(&m, 1, 0, NULL, 0);
	CHECK(flow_exists(&fd) == 1 && flow_exists(&fb) == 1);
	CHECK(live_count() == 2);
}

static void test_no_matches(void)
{
	struct svc_err e = {0};
	size_t deleted = 99;

	CHECK(ct_delete_udp(NULL, 0, &deleted, &e) == 0);
	CHECK(deleted == 0);
	CHECK(flow_exists(&fb) == 1);
}

/* Enough matches for probing to matter, several sharing the hash key of B
 * (endpoint and port) with other services; one of them is B's. */
static void test_many_matches(void)
{
	struct ct_match m[300];
	char s[SVC_ADDR_STRLEN];
	size_t n = 0;

	for (int i = 0; i < 250; i++) {
		snprintf(s, sizeof(s), "10.245.%d.%d", i / 200, i % 200 + 1);
		m[n++] = match("10.96.0.10", 53, s, 53);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(s, sizeof(s), "10.96.1.%d", i + 1);
		m[n++] = match(s, 53, "10.244.0.6", 53);
	}
	m[n++] = match("10.96.0.10", 53, "10.244.0.6", 53);
	expect_delete(m, n, 1, (const struct flow *const[]){&fb}, 1);
	CHECK(flow_exists(&fd) == 1);
}

/* A table bigger than many dump buffers and delete pages. */
static void test_large_table(void)
{
	struct flow f = {"10.1.0.0", "10.96.1.1", "10.244.1.1", 0, 8053, 8053, UDP, 0};
	char client[SVC_ADDR_STRLEN];
	struct ct_match m = match("10.96.1.1", 8053, "10.244.1.1", 0);
	int ok = 0, kept = 0;

	f.client = client;
	for (int i = 0; i < 4000; i++) {
		snprintf(client, sizeof(client), "10.1.%d.%d", i / 250, i % 250 + 1);
		f.cport = (uint16_t)(20000 + i);
		f.endpoint = i % 4 ? "10.244.1.1" : "10.244.1.2";
		ok += flow_add(&f) == 0;
	}
	CHECK(ok == 4000);
	expect_delete(&m, 1, 3000, NULL, 0);
	for (int i = 0; i < 4000; i += 4) {
		snprintf(client, sizeof(client), "10.1.%d.%d", i / 250, i % 250 + 1);
		f.cport = (uint16_t)(20000 + i);
		kept += flow_exists(&f) == 1;
	}
	CHECK(kept == 1000);
}

/* Without CAP_NET_ADMIN the dump is refused: a child drops root to see it. */
static void test_not_permitted(void)
{
	struct ct_match m = match("10.96.0.10", 53, "10.244.0.6", 0);
	int status = -1;
	pid_t pid = fork();

	if (pid == 0) {
		struct svc_err e = {0};
		size_t deleted = 99;
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			exit(2);
		int r = ct_delete_udp(&m, 1, &deleted, &e);
		if (r == -EPERM && deleted == 0 &&
		    !strcmp(e.msg, "conntrack: dump: Operation not permitted"))
			exit(0);
		fprintf(stderr, "unprivileged ct_delete_udp: %d \"%s\"\n", r, e.msg);
		exit(1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(flow_exists(&fd) == 1);
}

int main(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: conntrack: a private network namespace needs root (%s)\n",
		       strerror(errno));
		return 0;
	}
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("conntrack: netlink socket");
		return 1;
	}
	test_matches();
	test_no_matches();
	test_many_matches();
	test_large_table();
	test_not_permitted();
	mnl_socket_close(nl);
	return UNIT_DONE("conntrack");
}
