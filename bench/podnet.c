// SPDX-License-Identifier: MIT
/* Driver of bench/podnet.sh: wires N pods with svcd's IPAM and podnet, then
 * unwires them, in the network namespace it is started in (the script makes
 * a fresh one), and prints the time each pod took:
 *
 *   ADD <mean ms> <p50 ms> <max ms>
 *   DEL <mean ms> <p50 ms> <max ms>
 *   GONE <ms>
 *
 * ADD is ipam_alloc + podnet_add (namespace, veth pair, bridge port,
 * address, routes); DEL is podnet_del + ipam_release.  The kernel deletes
 * the veth pairs with the namespaces after DEL returns: GONE is the time
 * from the first DEL until no svcd veth is left, divided by N.
 *
 * usage: podnet STATE_DIR N */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "ipam.h"
#include "podnet.h"
#include "util.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, double *ms, int n)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += ms[i];
	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	printf("%s %.3f %.3f %.3f\n", what, sum / n, ms[n / 2], ms[n - 1]);
}

static int count(const struct podnet_entry *ent, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

/* Wait (up to 30 s) until nothing of any pod is left. */
static int drained(struct podnet *pn, struct svc_err *e)
{
	for (int i = 0; i < 30000; i++) {
		int left = 0;
		if (podnet_list(pn, count, &left, e))
			return -1;
		if (!left)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
	}
	return svc_errf(e, ETIMEDOUT, "pods left behind 30 s after DEL");
}

/* One pod up or down; its time in *ms. */
static int pod_step(struct podnet *pn, struct ipam *ip, const char *id, bool add, double *ms,
		    struct svc_err *e)
{
	struct in_addr a;
	double t0 = now_ms();
	int r;

	if (add)
		r = ipam_alloc(ip, id, &a, e) ? -1 : podnet_add(pn, id, a, e);
	else
		r = podnet_del(pn, id, e) ? -1 : ipam_release(ip, id, e);
	*ms = now_ms() - t0;
	return r;
}

static int fail(const char *msg)
{
	fprintf(stderr, "podnet: %s\n", msg);
	return 1;
}

static int run(struct podnet *pn, struct ipam *ip, int n, double *add, double *del, double *gone)
{
	struct svc_err e = {0};
	char id[64];
	double t0;

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "svcd-bench-%d", i);
		if (pod_step(pn, ip, id, true, &add[i], &e))
			return fail(e.msg);
	}
	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "svcd-bench-%d", i);
		if (pod_step(pn, ip, id, false, &del[i], &e))
			return fail(e.msg);
	}
	if (drained(pn, &e))
		return fail(e.msg);
	*gone = (now_ms() - t0) / n;
	return ipam_used(ip) ? fail("addresses left behind after DEL") : 0;
}

int main(int argc, char **argv)
{
	char netns[4096], ipam_dir[4096];
	struct podnet_config c = {.bridge = "svcd0", .pod_prefix = 16, .cluster_prefix = 16};
	struct svc_err e = {0};
	struct podnet *pn = NULL;
	struct ipam *ip = NULL;
	int n = argc == 3 ? atoi(argv[2]) : 0, r = 1;
	double gone = 0;
	double *add = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
	double *del = calloc((size_t)(n > 0 ? n : 1), sizeof(double));

	if (n <= 0 || n > 60000 || !add || !del) {
		fprintf(stderr, "usage: podnet STATE_DIR N (1-60000)\n");
		return 2;
	}
	snprintf(netns, sizeof(netns), "%s/netns", argv[1]);
	snprintf(ipam_dir, sizeof(ipam_dir), "%s/ipam", argv[1]);
	inet_pton(AF_INET, "10.244.0.0", &c.pod_net);
	c.cluster_net = c.pod_net;
	c.netns_dir = netns;
	if (ipam_open(ipam_dir, c.pod_net, c.pod_prefix, &ip, &e) || podnet_open(&c, &pn, &e))
		fail(e.msg);
	else if (!(r = run(pn, ip, n, add, del, &gone))) {
		report("ADD", add, n);
		report("DEL", del, n);
		printf("GONE %.3f\n", gone);
	}
	podnet_close(pn);
	ipam_close(ip);
	free(add);
	free(del);
	return r;
}
