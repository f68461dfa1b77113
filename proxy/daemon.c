// SPDX-License-Identifier: MIT
#include "daemon.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/capability.h>
#include <sys/syscall.h>

#include "lbsync.h"
#include "nft.h"
#include "server.h"
#include "util.h"

void svcd_config_defaults(struct svcd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->state_dir = "/var/lib/svcd";
	cfg->socket_path = "/run/svcd/svcd.sock";
	cfg->service_cidr = "10.96.0.0/16";
	cfg->node_port_lo = 30000;
	cfg->node_port_hi = 32767;
	cfg->resync_seconds = 30;
	cfg->mode = "auto";
	cfg->lb.connect_timeout = 1;
	cfg->lb.drain_grace = 30;
	cfg->lb.udp_timeout = 30;
	cfg->lb.max_conns = 16384;
	cfg->dns_service_ip = "10.96.0.10";
	cfg->cluster_cidr = "10.244.0.0/16";
	cfg->nft_table = "svcd";
	static char host[256];
	if (!host[0] && gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "localhost");
	cfg->node_name = host;
	cfg->cluster_domain = "cluster.local";
	cfg->dns_ttl = 5;
	cfg->resolv_conf = "/etc/resolv.conf";
	cfg->pods.bridge = "svcd0";
	cfg->pods.pod_cidr = "10.244.0.0/24";
	cfg->pods.netns_dir = "/run/netns";
	cfg->pods.cgroup_parent = "svcd";
	cfg->pods.backoff_initial = 10;
	cfg->pods.backoff_max = 300;
	cfg->pods.backoff_reset = 600;
	cfg->pods.log_max = 10u << 20;
}

static int start_pods(struct svcd *d, struct svc_err *e)
{
	struct pods_config pc = d->cfg.pods;

	if (d->cfg.no_pods)
		return 0;
	pc.state_dir = d->cfg.state_dir;
	pc.cluster_cidr = d->cfg.cluster_cidr;
	pc.dns_ip = d->cfg.dns_service_ip;
	pc.cluster_domain = d->cfg.cluster_domain;
	return pods_open(d->loop, &d->st, &pc, &d->pods, e);
}

static void on_store_event(void *ctx, const char *name)
{
	state_file_event(ctx, name);
}

static void on_store_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct svcd *d = w->data;

	(void)loop;
	(void)revents;
	if (store_read_events(d->st.store, on_store_event, &d->st) < 0)
		svc_log(SVC_LOG_ERROR, "store: reading directory events: %s", strerror(errno));
}

/* May this process add addresses (CAP_NET_ADMIN in its effective set)? */
static bool have_net_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d))
		return false;
	return d[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
}

/* The userspace balancer, for every service (all) or the annotated ones. */
static int start_lb(struct svcd *d, bool all, struct svc_err *e)
{
	struct lb_config lc = d->cfg.lb;
	struct svc_backend b;
	int r;

	lc.loopback_only = !have_net_admin();
	if ((r = lb_backend_new(d->loop, &lc, all, &b, &d->lb, e)))
		return r;
	if (reconciler_add_backend(d->rec, &b)) {
		b.destroy(b.priv);
		d->lb = NULL;
		return svc_errf(e, ENOSPC, "too many backends");
	}
	if (all)
		svc_log(SVC_LOG_INFO, "data plane: userspace balancer (%s)",
			lc.loopback_only ? "no CAP_NET_ADMIN: services listen on 127.0.0.1, "
					   "ports in svcctl list"
					 : "service addresses on lo");
	return 0;
}

/* --mode auto takes nftables whenever it can be programmed, else the
 * userspace balancer, and says which; --mode nftables fails loudly when it
 * cannot.  Next to nftables, the balancer carries the services annotated
 * svcd.io/proxy-mode: userspace. */
static int start_dataplane(struct svcd *d, struct svc_err *e)
{
	struct nft_config nc = {.table = d->cfg.nft_table,
				.cluster_cidr = d->cfg.cluster_cidr,
				.node_name = d->cfg.node_name};
	const char *mode = d->cfg.mode;
	struct svc_backend b;
	int r;

	d->mode = "none";
	if (!strcmp(mode, "none"))
		return 0;
	if (strcmp(mode, "auto") && strcmp(mode, "nftables") && strcmp(mode, "userspace"))
		return svc_errf(e, EINVAL,
				"--mode: \"%s\" is not one of auto, nftables, userspace, none",
				mode);
	if (!strcmp(mode, "userspace")) {
		d->mode = "userspace";
		return start_lb(d, true, e);
	}
	r = nft_backend_new(&nc, &b, e);
	if (r && !strcmp(mode, "nftables"))
		return svc_err_ctx(e, "--mode nftables");
	if (r) {
		svc_log(SVC_LOG_WARN,
			"mode auto: nftables cannot be used (%s); "
			"using the userspace balancer",
			e->msg);
		svc_err_clear(e);
		d->mode = "userspace";
		return start_lb(d, true, e);
	}
	svc_log(SVC_LOG_INFO, "data plane: nftables (table ip %s)", d->cfg.nft_table);
	d->mode = "nftables";
	if (reconciler_add_backend(d->rec, &b)) {
		b.destroy(b.priv);
		return svc_errf(e, ENOSPC, "too many backends");
	}
	return start_lb(d, false, e);
}

/* --upstream-dns, else the node's resolv.conf; none is allowed (SERVFAIL
 * for names outside the zone).  *out is malloc'd. */
static int dns_upstreams(const struct svcd_config *cfg, struct sockaddr_storage **out, size_t *n,
			 struct svc_err *e)
{
	int r;

	*out = NULL;
	*n = 0;
	if (!cfg->n_upstream_dns) {
		/* A node without resolvers still serves the cluster zone. */
		if (dns_fwd_resolv_conf(cfg->resolv_conf, out, n, e) < 0) {
			svc_log(SVC_LOG_WARN, "dns: upstream resolvers from %s: %s",
				cfg->resolv_conf, e->msg);
			svc_err_clear(e);
			free(*out);
			*out = NULL;
			*n = 0;
		}
		return 0;
	}
	if (!(*out = calloc(cfg->n_upstream_dns, sizeof(**out))))
		return svc_errf(e, ENOMEM, "out of memory");
	for (; *n < cfg->n_upstream_dns; (*n)++)
		if ((r = dns_parse_hostport(cfg->upstream_dns[*n], 53, &(*out)[*n], e)))
			return svc_err_ctx(e, "--upstream-dns");
	return 0;
}

static int start_dns(struct svcd *d, struct svc_err *e)
{
	struct dns_server_config dc = {.domain = d->cfg.cluster_domain,
				       .ttl = d->cfg.dns_ttl,
				       .service_ip = d->cfg.dns_service_ip,
				       .listen = d->cfg.dns_listen,
				       .nlisten = d->cfg.n_dns_listen};
	struct sockaddr_storage *ups;
	int r;

	if (d->cfg.no_dns)
		return 0;
	if (!(r = dns_upstreams(&d->cfg, &ups, &dc.nupstreams, e))) {
		dc.upstreams = ups;
		r = dns_server_open(d->loop, &d->st, &dc, &d->dns, e);
	}
	free(ups);
	return r;
}

int svcd_start(struct svcd *d, struct ev_loop *loop, const struct svcd_config *cfg,
	       struct svc_err *e)
{
	struct state_config sc = {
	    .state_dir = cfg->state_dir,
	    .service_cidr = cfg->service_cidr,
	    .node_port_lo = cfg->node_port_lo,
	    .node_port_hi = cfg->node_port_hi,
	    .reserved_ip = cfg->dns_service_ip,
	};
	int r;

	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->cfg = *cfg;
	d->started = time(NULL);
	if ((r = state_open(&d->st, &sc, e)))
		return r;
	if ((r = state_load(&d->st, e)) ||
	    (r = reconciler_new(loop, &d->st, cfg->resync_seconds, &d->rec, e)) ||
	    (r = start_dataplane(d, e)) || (r = start_pods(d, e)) || (r = start_dns(d, e)) ||
	    (r = api_open(d, cfg->socket_path, &d->api, e))) {
		svcd_stop(d);
		return r;
	}
	malloc_trim(0); /* loading parsed every file at once: give that back */
	ev_io_init(&d->store_io, on_store_io, store_watch_fd(d->st.store), EV_READ);
	d->store_io.data = d;
	ev_io_start(loop, &d->store_io);
	svc_log(SVC_LOG_INFO, "serving %zu services from %s on %s",
		model_count(d->st.model, KIND_SERVICE), cfg->state_dir, cfg->socket_path);
	return 0;
}

void svcd_stop(struct svcd *d)
{
	if (d->loop)
		ev_io_stop(d->loop, &d->store_io);
	api_close(d->api);
	pods_close(d->pods);
	reconciler_free(d->rec);
	dns_server_close(d->dns); /* last before the state: it listens to it */
	state_close(&d->st);
	d->dns = NULL;
	d->api = NULL;
	d->pods = NULL;
	d->rec = NULL;
	d->lb = NULL; /* freed with its backend */
}
