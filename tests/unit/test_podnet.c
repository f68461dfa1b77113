// SPDX-License-Identifier: MIT
/* podnet against the kernel, as root, inside a network and mount namespace
 * of its own (/ made private), so that the host's links, routes, ruleset
 * and mounts are never touched:
 *
 *   test ns: up0 (veth, MTU 1400, default route)   svcdt0 bridge 10.244.0.1/24
 *                                                      |           |
 *                                              vethXXXXXXXX   vethYYYYYYYY
 *                                                      |           |
 *                                   svcd-pod1: eth0 10.244.0.2   svcd-pod2: eth0 10.244.0.3
 *
 * Connectivity is checked with TCP connects from sockets made inside the
 * pods' namespaces, which needs no ping on the machine.
 * Not root: prints "skipped" and passes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "podnet.h"
#include "unit.h"

#define BR    "svcdt0"
#define TABLE "svcd-pods-test"

static char root[64], nsdir[96];

static struct in_addr A(const char *s) {
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a;
}

/* The output of a shell command (stderr too), malloc'd; exit status in *rc. */
static char *
run(int *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run(int *rc, const char *fmt, ...)
{
	char cmd[1024], *out = calloc(1, 65536);
	size_t n = 0;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	if (!out || !(f = popen(cmd, "r")))
		abort();
	while (n < 65535 && fgets(out + n, (int)(65536 - n), f))
		n = strlen(out);
	*rc = pclose(f);
	return out;
}

#define CHECK_RUN(needle, ...)                                                                     \
	do {                                                                                       \
		int rc_;                                                                           \
		char *o_ = run(&rc_, __VA_ARGS__);                                                 \
		CHECK_HAS(o_, needle);                                                             \
		free(o_);                                                                          \
	} while (0)

#define CHECK_RUN_NOT(needle, ...)                                                                 \
	do {                                                                                       \
		int rc_;                                                                           \
		char *o_ = run(&rc_, __VA_ARGS__);                                                 \
		CHECK(!strstr(o_, needle));                                                        \
		free(o_);                                                                          \
	} while (0)

static const char *path_of(const char *id)
{
	static char p[2][160];
	static int i;

	i ^= 1;
	snprintf(p[i], sizeof(p[i]), "%s/%s", nsdir, id);
	return p[i];
}

/* A socket made inside the namespace of pod id (it stays there). */
static int socket_in(const char *id, int type)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY), ns = open(path_of(id), O_RDONLY);
	int fd = -1;

	if (self >= 0 && ns >= 0 && !setns(ns, CLONE_NEWNET)) {
		fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
		if (setns(self, CLONE_NEWNET))
			abort();
	}
	if (self >= 0)
		close(self);
	if (ns >= 0)
		close(ns);
	return fd;
}

/* 1 when pod `from` reaches `ip`:8080 over TCP within 1 s: a listener in
 * pod `to` accepts, or (to NULL) the host there refuses. */
static int reaches(const char *from, const char *to, const char *ip)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080), .sin_addr = A(ip)};
	int l = to ? socket_in(to, SOCK_STREAM) : -1;
	int c = socket_in(from, SOCK_STREAM | SOCK_NONBLOCK), ok = 0, err = 0;
	struct pollfd p = {.fd = c, .events = POLLOUT};

	if (to && (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1)))
		goto out;
	if (c >= 0 && (!connect(c, (void *)&sa, sizeof(sa)) || errno == EINPROGRESS) &&
	    poll(&p, 1, 1000) == 1 &&
	    !getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){sizeof(err)}))
		ok = to ? !err : err == ECONNREFUSED;
out:
	if (l >= 0)
		close(l);
	if (c >= 0)
		close(c);
	return ok;
}

/* The kernel deletes a deleted pod's veth pair with its namespace, a little
 * later: wait up to 5 s for the link to go. */
static bool link_gone(const char *name)
{
	for (int i = 0; i < 500; i++) {
		if (!if_nametoindex(name))
			return true;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return false;
}

static struct podnet_config config(void)
{
	return (struct podnet_config){.bridge = BR,
				      .pod_net = A("10.244.0.0"),
				      .pod_prefix = 24,
				      .cluster_net = A("10.244.0.0"),
				      .cluster_prefix = 16,
				      .netns_dir = nsdir,
				      .masq_table = TABLE};
}

static int setup_private(void)
{
	int rc;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL))
		return -1;
	/* An uplink, so that the bridge takes its MTU. */
	free(run(&rc, "ip link add up0 mtu 1400 type veth peer name up1 && "
		      "ip link set up0 up && ip link set up1 up && "
		      "ip addr add 192.0.2.2/24 dev up0 && ip route add default via 192.0.2.1"));
	snprintf(root, sizeof(root), "/tmp/test_podnet.XXXXXX");
	if (rc || !mkdtemp(root))
		return -1;
	snprintf(nsdir, sizeof(nsdir), "%s/netns", root);
	return 0;
}

static void test_open(struct podnet **pn)
{
	struct podnet_config c = config();
	struct svc_err e = {0};
	char gw[INET_ADDRSTRLEN];

	CHECK(podnet_open(&c, pn, &e) == 0);
	if (!*pn) {
		fprintf(stderr, "podnet_open: %s\n", e.msg);
		exit(1);
	}
	inet_ntop(AF_INET, &(struct in_addr){podnet_gateway(*pn).s_addr}, gw, sizeof(gw));
	CHECK_STR(gw, "10.244.0.1");
	CHECK_RUN("mtu 1400", "ip -d link show " BR);
	CHECK_RUN("bridge ", "ip -d link show " BR);
	CHECK_RUN("inet 10.244.0.1/24", "ip -4 addr show dev " BR);
	CHECK_RUN("1", "cat /proc/sys/net/ipv4/ip_forward");
	if (access("/proc/sys/net/bridge/bridge-nf-call-iptables", F_OK) == 0)
		CHECK_RUN("1", "cat /proc/sys/net/bridge/bridge-nf-call-iptables");
	CHECK_RUN("type nat hook postrouting priority srcnat", "nft list table ip " TABLE);
	CHECK_RUN("ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 oifname != \"" BR
		  "\" masquerade",
		  "nft list table ip " TABLE);

	/* Again: idempotent, and a deleted rule comes back. */
	struct podnet *again = NULL;
	free(run(&(int){0}, "nft flush chain ip " TABLE " postrouting"));
	CHECK(podnet_open(&c, &again, &e) == 0);
	podnet_close(again);
	CHECK_RUN("masquerade", "nft list table ip " TABLE);
	CHECK_RUN("1\n", "nft -a list table ip " TABLE " | grep -c masquerade");
}

/* The host end: on the bridge, hairpin on, the alias, up. */
static void check_host_veth(const char *id)
{
	char veth[IFNAMSIZ];

	podnet_veth_name(id, veth);
	CHECK_RUN("master " BR, "ip -o link show %s", veth);
	CHECK_RUN("hairpin on", "ip -o -d link show %s", veth);
	CHECK_RUN("alias svcd:", "ip -o link show %s", veth);
	CHECK_RUN(id, "ip -o link show %s", veth);
	CHECK_RUN("mtu 1400", "ip -o link show %s", veth);
	CHECK_RUN(",UP", "ip -o link show %s", veth);
}

static void check_pod(const char *id, const char *cidr)
{
	const char *p = path_of(id);

	CHECK_RUN(cidr, "nsenter --net=%s ip -4 addr show dev eth0", p);
	CHECK_RUN("mtu 1400", "nsenter --net=%s ip link show eth0", p);
	CHECK_RUN("state UP", "nsenter --net=%s ip link show eth0", p);
	CHECK_RUN("<LOOPBACK,UP", "nsenter --net=%s ip link show lo", p);
	CHECK_RUN("default via 10.244.0.1 dev eth0", "nsenter --net=%s ip route show", p);
	check_host_veth(id);
}

static void test_add(struct podnet *pn)
{
	struct svc_err e = {0};
	struct stat a, b;
	char buf[160], veth[IFNAMSIZ];

	CHECK(podnet_add(pn, "svcd-pod1", A("10.244.0.2"), &e) == 0);
	check_pod("svcd-pod1", "inet 10.244.0.2/24");
	CHECK(podnet_netns_path(pn, "svcd-pod1", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, path_of("svcd-pod1"));

	/* A complete set-up is kept as it is: the same namespace. */
	CHECK(stat(path_of("svcd-pod1"), &a) == 0);
	CHECK(podnet_add(pn, "svcd-pod1", A("10.244.0.2"), &e) == 0);
	CHECK(stat(path_of("svcd-pod1"), &b) == 0 && a.st_ino == b.st_ino);

	/* A broken one is redone. */
	free(run(&(int){0}, "nsenter --net=%s ip route del default", path_of("svcd-pod1")));
	CHECK(podnet_add(pn, "svcd-pod1", A("10.244.0.2"), &e) == 0);
	check_pod("svcd-pod1", "inet 10.244.0.2/24");
	CHECK(stat(path_of("svcd-pod1"), &b) == 0 && a.st_ino != b.st_ino);

	/* So is one with another address. */
	CHECK(podnet_add(pn, "svcd-pod1", A("10.244.0.9"), &e) == 0);
	check_pod("svcd-pod1", "inet 10.244.0.9/24");
	CHECK(podnet_add(pn, "svcd-pod1", A("10.244.0.2"), &e) == 0);
	check_pod("svcd-pod1", "inet 10.244.0.2/24");

	/* The daemon's ids: "svcd-" and a 36-character uid. */
	CHECK(podnet_add(pn, "svcd-pod2-67e55044-10b1-426f-9247-bb680e5fe0c8", A("10.244.0.3"),
			 &e) == 0);
	CHECK(podnet_del(pn, "svcd-pod2-67e55044-10b1-426f-9247-bb680e5fe0c8", &e) == 0);
	podnet_veth_name("svcd-pod2-67e55044-10b1-426f-9247-bb680e5fe0c8", veth);
	CHECK(link_gone(veth));
	CHECK(podnet_add(pn, "svcd-pod2", A("10.244.0.3"), &e) == 0);
	check_pod("svcd-pod2", "inet 10.244.0.3/24");
	/* Pod to pod over the bridge, and a pod to itself by its own address. */
	CHECK(reaches("svcd-pod2", "svcd-pod1", "10.244.0.2"));
	CHECK(reaches("svcd-pod1", "svcd-pod2", "10.244.0.3"));
	CHECK(reaches("svcd-pod1", "svcd-pod1", "10.244.0.2"));
}

static void test_errors(struct podnet *pn)
{
	struct svc_err e = {0};
	char veth[IFNAMSIZ];
	int rc;

	CHECK(podnet_add(pn, "../etc", A("10.244.0.4"), &e) == -EINVAL);
	CHECK_HAS(e.msg, "invalid pod id");
	CHECK(podnet_add(pn, "..", A("10.244.0.4"), &e) == -EINVAL);
	CHECK(podnet_add(pn, "", A("10.244.0.4"), &e) == -EINVAL);
	char long_id[65];
	memset(long_id, 'x', 64);
	long_id[64] = '\0';
	CHECK(podnet_add(pn, long_id, A("10.244.0.4"), &e) == -EINVAL);
	long_id[63] = '\0';
	CHECK(podnet_del(pn, long_id, &e) == 0); /* 63 are fine */
	CHECK(podnet_del(pn, "a/b", &e) == -EINVAL);

	/* The veth name taken by someone else: the add fails, names the step,
	 * and leaves nothing of the pod. */
	podnet_veth_name("svcd-pod3", veth);
	free(run(&rc, "ip link add %s type veth peer name x3 && ip link set %s alias svcd:svcd-x",
		 veth, veth));
	CHECK(rc == 0);
	CHECK(podnet_add(pn, "svcd-pod3", A("10.244.0.4"), &e) == -EEXIST);
	CHECK_HAS(e.msg, "creating veth ");
	CHECK_HAS(e.msg, " for svcd-pod3");
	CHECK(access(path_of("svcd-pod3"), F_OK) < 0);
	CHECK(podnet_del(pn, "svcd-pod3", &e) == 0); /* not its veth: left alone */
	CHECK_RUN("alias svcd:svcd-x", "ip -o link show %s", veth);
	free(run(&rc, "ip link del %s", veth));

	/* The same name left by a crashed add of that very pod: taken over. */
	free(run(&rc, "ip link add %s master " BR " type veth peer name x3", veth));
	CHECK(podnet_add(pn, "svcd-pod3", A("10.244.0.4"), &e) == 0);
	check_pod("svcd-pod3", "inet 10.244.0.4/24");

	/* An address the pod CIDR cannot route: the route step fails. */
	CHECK(podnet_add(pn, "svcd-pod4", A("10.99.0.4"), &e) < 0);
	CHECK_HAS(e.msg, "adding the default route via 10.244.0.1 in svcd-pod4");
	CHECK(access(path_of("svcd-pod4"), F_OK) < 0);
	podnet_veth_name("svcd-pod4", veth);
	CHECK(link_gone(veth));
}

struct seen {
	int n, pod1, pod2, ghost, other;
};

static int on_entry(const struct podnet_entry *ent, void *ctx)
{
	struct seen *s = ctx;

	s->n++;
	if (!strcmp(ent->id, "svcd-pod1"))
		s->pod1 = ent->has_netns && ent->has_veth;
	else if (!strcmp(ent->id, "svcd-pod2"))
		s->pod2 = ent->has_netns && ent->has_veth;
	else if (!strcmp(ent->id, "svcd-ghost"))
		s->ghost = !ent->has_netns && ent->has_veth;
	else
		s->other++;
	return 0;
}

static int stop_at_first(const struct podnet_entry *ent, void *ctx)
{
	(*(int *)ctx)++;
	return 7;
}

static void test_list(struct podnet *pn)
{
	struct svc_err e = {0};
	struct seen s = {0};
	char ghost[IFNAMSIZ];
	int rc, calls = 0;

	/* Not svcd's: a namespace file without the prefix. */
	free(run(&rc, "touch %s/other", nsdir));
	/* A leaked veth, its namespace gone. */
	podnet_veth_name("svcd-ghost", ghost);
	free(run(&rc,
		 "ip link add %s type veth peer name g0 && ip link set %s alias svcd:svcd-ghost",
		 ghost, ghost));
	CHECK(podnet_list(pn, on_entry, &s, &e) == 0);
	CHECK(s.pod1 && s.pod2 && s.ghost);
	CHECK(s.n == 4); /* and svcd-pod3 */
	CHECK(s.other == 1);
	CHECK(podnet_list(pn, stop_at_first, &calls, &e) == 7 && calls == 1);
	CHECK(podnet_del(pn, "svcd-ghost", &e) == 0);
	CHECK_RUN("does not exist", "ip link show %s", ghost);
	free(run(&rc, "rm -f %s/other", nsdir));
}

static void test_del(struct podnet *pn)
{
	struct svc_err e = {0};
	char veth[IFNAMSIZ];

	podnet_veth_name("svcd-pod1", veth);
	CHECK(podnet_del(pn, "svcd-pod1", &e) == 0);
	CHECK(access(path_of("svcd-pod1"), F_OK) < 0);
	CHECK(!reaches("svcd-pod2", NULL, "10.244.0.2")); /* off the network at once */
	CHECK(link_gone(veth));
	CHECK_RUN_NOT("svcd:svcd-pod1", "ip -o link show");
	CHECK(podnet_del(pn, "svcd-pod1", &e) == 0);	  /* gone already: fine */
	CHECK(reaches("svcd-pod2", NULL, "10.244.0.3"));  /* the probe works... */
	CHECK(!reaches("svcd-pod2", NULL, "10.244.0.2")); /* ...and nobody is there now */
}

static void test_cleanup(struct podnet *pn)
{
	struct podnet_config c = config();
	struct svc_err e = {0};

	/* Pods are left: the table goes, the bridge stays. */
	CHECK(podnet_cleanup(&c, &e) == 0);
	CHECK_RUN("No such file", "nft list table ip " TABLE);
	CHECK_RUN("mtu 1400", "ip link show " BR);
	CHECK(podnet_del(pn, "svcd-pod2", &e) == 0);
	CHECK(podnet_del(pn, "svcd-pod3", &e) == 0);
	CHECK(podnet_cleanup(&c, &e) == 0);
	CHECK_RUN("does not exist", "ip link show " BR);
	CHECK(podnet_cleanup(&c, &e) == 0); /* nothing left: fine */
}

/* The network namespace of the calling thread, which every podnet call,
 * failed ones included, must leave as it found it. */
static ino_t self_ns(void)
{
	struct stat st;

	return stat("/proc/thread-self/ns/net", &st) ? 0 : st.st_ino;
}

int main(void)
{
	struct podnet *pn = NULL;
	ino_t ns;

	if (geteuid() != 0) {
		printf("test_podnet: skipped (not root)\n");
		return 0;
	}
	if (setup_private()) {
		perror("test_podnet: private namespaces");
		return 1;
	}
	ns = self_ns();
	test_open(&pn);
	test_add(pn);
	CHECK(self_ns() == ns);
	test_errors(pn);
	CHECK(self_ns() == ns);
	test_list(pn);
	test_del(pn);
	test_cleanup(pn);
	CHECK(self_ns() == ns && ns);
	podnet_close(pn);
	remove_tree(AT_FDCWD, root);
	return UNIT_DONE("test_podnet");
}
