// SPDX-License-Identifier: MIT
/* svcd: the front end.  Parses flags, prints the core's errors once, runs
 * the loop until SIGTERM or SIGINT. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "lb.h"
#include "localaddr.h"
#include "nft.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: svcd [options]\n"
		"  --state-dir DIR          objects and allocations (default /var/lib/svcd)\n"
		"  --socket PATH            control socket (default /run/svcd/svcd.sock)\n"
		"  --service-cidr CIDR      ClusterIP range (default 10.96.0.0/16)\n"
		"  --node-port-range A-B    nodePort range (default 30000-32767)\n"
		"  --dns-service-ip IP      kept out of the ClusterIP pool (default 10.96.0.10)\n"
		"  --resync-period SECONDS  full data-plane resync (default 30, 0 disables)\n"
		"  --mode MODE              data plane: auto (default: nftables when it works,\n"
		"                           else the userspace balancer), nftables, userspace\n"
		"                           or none\n"
		"  --cluster-cidr CIDR      pod addresses; clients outside are masqueraded\n"
		"                           (default 10.244.0.0/16)\n"
		"  --node-name NAME         endpoints with this nodeName are local (default: "
		"hostname)\n"
		"  --cluster-domain DOMAIN  the cluster's DNS zone (default cluster.local)\n"
		"userspace balancer (--mode userspace, or services annotated\n"
		"svcd.io/proxy-mode: userspace):\n"
		"  --lb-connect-timeout S   give an endpoint up after S seconds (default 1)\n"
		"  --lb-drain-grace S       connections to a removed endpoint live S seconds\n"
		"                           more, then are reset (default 30)\n"
		"  --lb-max-conns N         connections at once; accepts pause beyond (16384)\n"
		"  --lb-udp-timeout S       an idle UDP session ends after S seconds (30)\n"
		"dns:\n"
		"  --dns-listen ADDR:PORT   serve DNS here too (repeatable; the DNS service IP\n"
		"                           is always served on port 53)\n"
		"  --upstream-dns ADDR[:PORT] resolvers for names outside the zone (repeatable;\n"
		"                           default: the nameservers of /etc/resolv.conf)\n"
		"  --dns-ttl SECONDS        TTL of the cluster's records (default 5)\n"
		"  --no-dns                 serve no DNS\n"
		"pods:\n"
		"  --bridge NAME            the node's pod bridge (default svcd0)\n"
		"  --pod-cidr CIDR          this node's pod addresses (default 10.244.0.0/24)\n"
		"  --netns-dir DIR          where pod network namespaces are kept (default "
		"/run/netns)\n"
		"  --cgroup-parent PATH     cgroup of all pods (default svcd)\n"
		"  --svcrun PATH            the container launcher (default: next to svcd)\n"
		"  --restart-backoff A,B    first and longest restart delay in seconds after\n"
		"                           the immediate first restart (default 10,300)\n"
		"  --log-max BYTES          container log size before rotation (default 10 MiB)\n"
		"  --no-pods                run no pods: services and endpoints only\n"
		"  --cleanup                remove everything svcd programmed, then exit\n"
		"  -v, --verbose            debug logging\n"
		"  -h, --help\n");
}

static void log_stderr(int level, const char *msg)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char ts[21];

	fmt_rfc3339(time(NULL), ts);
	fprintf(stderr, "%s svcd %s: %s\n", ts, names[level], msg);
}

static int parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	unsigned a, b;
	char tail;

	if (sscanf(s, "%u-%u%c", &a, &b, &tail) != 2 || !a || a > b || b > 65535)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* Append s to a growing array of options (they live as long as argv). */
static const char **argv_push(const char **v, size_t *n, const char *s)
{
	const char **nv = realloc(v, (*n + 1) * sizeof(*v));

	if (!nv) {
		fprintf(stderr, "svcd: out of memory\n");
		exit(1);
	}
	nv[(*n)++] = s;
	return nv;
}

static int parse_ttl(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > 0x7fffffff)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct svcd_config *cfg, int *verbose, int *cleanup)
{
	enum {
		O_STATE = 256,
		O_SOCKET,
		O_CIDR,
		O_NPR,
		O_DNSIP,
		O_RESYNC,
		O_MODE,
		O_CCIDR,
		O_NODE,
		O_CLEANUP,
		O_DOMAIN,
		O_BRIDGE,
		O_PODCIDR,
		O_NETNS,
		O_CGROUP,
		O_SVCRUN,
		O_BACKOFF,
		O_LOGMAX,
		O_NOPODS,
		O_DNSLISTEN,
		O_UPSTREAM,
		O_DNSTTL,
		O_NODNS,
		O_LBCT,
		O_LBDRAIN,
		O_LBMAX,
		O_LBUDP
	};
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, O_STATE},
	    {"socket", required_argument, NULL, O_SOCKET},
	    {"service-cidr", required_argument, NULL, O_CIDR},
	    {"node-port-range", required_argument, NULL, O_NPR},
	    {"dns-service-ip", required_argument, NULL, O_DNSIP},
	    {"resync-period", required_argument, NULL, O_RESYNC},
	    {"mode", required_argument, NULL, O_MODE},
	    {"cluster-cidr", required_argument, NULL, O_CCIDR},
	    {"node-name", required_argument, NULL, O_NODE},
	    {"cleanup", no_argument, NULL, O_CLEANUP},
	    {"cluster-domain", required_argument, NULL, O_DOMAIN},
	    {"bridge", required_argument, NULL, O_BRIDGE},
	    {"pod-cidr", required_argument, NULL, O_PODCIDR},
	    {"netns-dir", required_argument, NULL, O_NETNS},
	    {"cgroup-parent", required_argument, NULL, O_CGROUP},
	    {"svcrun", required_argument, NULL, O_SVCRUN},
	    {"restart-backoff", required_argument, NULL, O_BACKOFF},
	    {"log-max", required_argument, NULL, O_LOGMAX},
	    {"no-pods", no_argument, NULL, O_NOPODS},
	    {"dns-listen", required_argument, NULL, O_DNSLISTEN},
	    {"upstream-dns", required_argument, NULL, O_UPSTREAM},
	    {"dns-ttl", required_argument, NULL, O_DNSTTL},
	    {"no-dns", no_argument, NULL, O_NODNS},
	    {"lb-connect-timeout", required_argument, NULL, O_LBCT},
	    {"lb-drain-grace", required_argument, NULL, O_LBDRAIN},
	    {"lb-max-conns", required_argument, NULL, O_LBMAX},
	    {"lb-udp-timeout", required_argument, NULL, O_LBUDP},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case O_STATE:
			cfg->state_dir = optarg;
			break;
		case O_SOCKET:
			cfg->socket_path = optarg;
			break;
		case O_CIDR:
			cfg->service_cidr = optarg;
			break;
		case O_NPR:
			if (parse_range(optarg, &cfg->node_port_lo, &cfg->node_port_hi)) {
				fprintf(stderr,
					"svcd: --node-port-range: \"%s\" is not a range like "
					"30000-32767\n",
					optarg);
				return 2;
			}
			break;
		case O_DNSIP:
			cfg->dns_service_ip = optarg;
			break;
		case O_RESYNC:
			cfg->resync_seconds = strtod(optarg, &end);
			if (*end || cfg->resync_seconds < 0) {
				fprintf(
				    stderr,
				    "svcd: --resync-period: \"%s\" is not a number of seconds\n",
				    optarg);
				return 2;
			}
			break;
		case O_MODE:
			cfg->mode = optarg;
			break;
		case O_CCIDR:
			cfg->cluster_cidr = optarg;
			break;
		case O_NODE:
			cfg->node_name = optarg;
			break;
		case O_CLEANUP:
			*cleanup = 1;
			break;
		case O_DOMAIN:
			cfg->cluster_domain = optarg;
			break;
		case O_BRIDGE:
			cfg->pods.bridge = optarg;
			break;
		case O_PODCIDR:
			cfg->pods.pod_cidr = optarg;
			break;
		case O_NETNS:
			cfg->pods.netns_dir = optarg;
			break;
		case O_CGROUP:
			cfg->pods.cgroup_parent = optarg;
			break;
		case O_SVCRUN:
			cfg->pods.svcrun = optarg;
			break;
		case O_BACKOFF:
			if (sscanf(optarg, "%lf,%lf", &cfg->pods.backoff_initial,
				   &cfg->pods.backoff_max) != 2 ||
			    cfg->pods.backoff_initial < 0 ||
			    cfg->pods.backoff_max < cfg->pods.backoff_initial) {
				fprintf(stderr,
					"svcd: --restart-backoff: \"%s\" is not FIRST,MAX in "
					"seconds, like 10,300\n",
					optarg);
				return 2;
			}
			break;
		case O_LOGMAX:
			cfg->pods.log_max = strtoull(optarg, &end, 10);
			if (*end || cfg->pods.log_max < 4096) {
				fprintf(stderr,
					"svcd: --log-max: \"%s\" is not a size in bytes of at "
					"least 4096\n",
					optarg);
				return 2;
			}
			break;
		case O_NOPODS:
			cfg->no_pods = true;
			break;
		case O_LBCT:
		case O_LBDRAIN:
		case O_LBUDP: {
			double v = strtod(optarg, &end);
			if (*end || !(v > 0) || v > 86400) {
				fprintf(stderr,
					"svcd: --%s: \"%s\" is not a number of seconds (above 0, "
					"at most 86400)\n",
					c == O_LBCT	 ? "lb-connect-timeout"
					: c == O_LBDRAIN ? "lb-drain-grace"
							 : "lb-udp-timeout",
					optarg);
				return 2;
			}
			*(c == O_LBCT	   ? &cfg->lb.connect_timeout
			  : c == O_LBDRAIN ? &cfg->lb.drain_grace
					   : &cfg->lb.udp_timeout) = v;
			break;
		}
		case O_LBMAX: {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || !v || v > 10000000) {
				fprintf(stderr,
					"svcd: --lb-max-conns: \"%s\" is not a count from 1 to "
					"10000000\n",
					optarg);
				return 2;
			}
			cfg->lb.max_conns = (unsigned)v;
			break;
		}
		case O_DNSLISTEN:
			cfg->dns_listen = argv_push(cfg->dns_listen, &cfg->n_dns_listen, optarg);
			break;
		case O_UPSTREAM:
			cfg->upstream_dns =
			    argv_push(cfg->upstream_dns, &cfg->n_upstream_dns, optarg);
			break;
		case O_DNSTTL:
			if (parse_ttl(optarg, &cfg->dns_ttl)) {
				fprintf(stderr,
					"svcd: --dns-ttl: \"%s\" is not a number of seconds\n",
					optarg);
				return 2;
			}
			break;
		case O_NODNS:
			cfg->no_dns = true;
			break;
		case 'v':
			*verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "svcd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	svc_log(SVC_LOG_INFO, "%s: shutting down", strsignal(w->signum));
	ev_break(loop, EVBREAK_ALL);
}

/* Clean up (--cleanup) or run the daemon until a signal. */
static int run(struct svcd_config *cfg, int verbose, int cleanup)
{
	struct svc_err e = {0};
	struct ev_loop *loop;
	ev_signal sigterm, sigint;
	struct svcd d;

	if (cleanup) {
		/* Rules outlive the daemon on purpose; this is how they go. */
		if (nft_cleanup(cfg->nft_table, &e)) {
			fprintf(stderr, "svcd: --cleanup: %s\n", e.msg);
			return 1;
		}
		cfg->pods.cluster_cidr = cfg->cluster_cidr;
		if (pods_cleanup(&cfg->pods, &e) || localaddr_del(cfg->dns_service_ip, &e) ||
		    localaddr_flush_label(LB_ADDR_LABEL, &e)) {
			fprintf(stderr, "svcd: --cleanup: %s\n", e.msg);
			return 1;
		}
		return 0;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	svc_log_set(log_stderr, verbose ? SVC_LOG_DEBUG : SVC_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		fprintf(stderr, "svcd: cannot start the event loop\n");
		return 1;
	}
	if (svcd_start(&d, loop, cfg, &e)) {
		fprintf(stderr, "svcd: %s\n", e.msg);
		return 1;
	}
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_run(loop, 0);
	svcd_stop(&d);
	ev_signal_stop(loop, &sigterm);
	ev_signal_stop(loop, &sigint);
	ev_loop_destroy(loop);
	return 0;
}

int main(int argc, char **argv)
{
	struct svcd_config cfg;
	int verbose = 0, cleanup = 0, r;

	svcd_config_defaults(&cfg);
	if (!(r = parse_args(argc, argv, &cfg, &verbose, &cleanup)))
		r = run(&cfg, verbose, cleanup);
	free(cfg.dns_listen);
	free(cfg.upstream_dns);
	return r;
}
