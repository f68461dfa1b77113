/* SPDX-License-Identifier: MIT */
/* The daemon core wired together: state, reconciler, control socket and the
 * directory watch, all on one libev loop.  svcd.c is a thin front end. */
#ifndef SVCD_DAEMON_H
#define SVCD_DAEMON_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lb.h"
#include "pods.h"
#include "reconcile.h"
#include "state.h"

struct svcd_config {
	const char *state_dir;	  /* --state-dir */
	const char *socket_path;  /* --socket */
	const char *service_cidr; /* --service-cidr */
	uint16_t node_port_lo, node_port_hi;
	double resync_seconds; /* --resync-period */
	const char *mode;      /* --mode: auto, nftables, userspace, none */
	struct lb_config lb;   /* --lb-* */
	const char *dns_service_ip;
	const char *cluster_cidr;   /* --cluster-cidr */
	const char *node_name;	    /* --node-name: endpoints there are local */
	const char *nft_table;	    /* the nftables table svcd owns */
	const char *cluster_domain; /* --cluster-domain */
	struct pods_config pods;    /* --bridge, --pod-cidr, --netns-dir, ... */
	bool no_pods;		    /* --no-pods: run no pods (a pure proxy) */
	/* Cluster DNS (dns/server.h). */
	bool no_dns;		 /* --no-dns */
	const char **dns_listen; /* --dns-listen ADDR:PORT, repeatable */
	size_t n_dns_listen;
	const char **upstream_dns; /* --upstream-dns; none: /etc/resolv.conf */
	size_t n_upstream_dns;
	uint32_t dns_ttl;	 /* --dns-ttl */
	const char *resolv_conf; /* where the node's upstreams are read */
};

struct svc_api;
struct dns_server;

struct svcd {
	struct ev_loop *loop;
	struct svcd_config cfg;
	struct svc_state st;
	struct svc_reconciler *rec;
	struct svc_api *api;
	struct svc_pods *pods;	/* NULL with --no-pods */
	struct dns_server *dns; /* NULL with --no-dns */
	struct lb *lb;		/* the userspace balancer; owned by its backend */
	const char *mode;	/* the data plane chosen: nftables, userspace, none */
	ev_io store_io;
	time_t started;
};

void svcd_config_defaults(struct svcd_config *cfg);
int svcd_start(struct svcd *d, struct ev_loop *loop, const struct svcd_config *cfg,
	       struct svc_err *e);
void svcd_stop(struct svcd *d);

/* The control socket (api.c). */
int api_open(struct svcd *d, const char *path, struct svc_api **out, struct svc_err *e);
void api_close(struct svc_api *a);

#endif
