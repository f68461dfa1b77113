/* SPDX-License-Identifier: MIT */
/* The userspace balancer: svcd's fallback data plane.  It listens on each
 * service's addresses itself and relays every TCP connection (and every
 * client's UDP datagrams) to one ready endpoint, round-robin, on the
 * daemon's libev loop.  Nothing here prints or exits; the kernel is reached
 * through sockets and netlink/localaddr.h only. */
#ifndef SVCD_LB_H
#define SVCD_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "err.h"

struct ev_loop;
struct lb;

/* The label of the addresses the balancer adds to lo (IPv4 only). */
#define LB_ADDR_LABEL "lo:svcd"

struct lb_config {
	double connect_timeout; /* seconds before an endpoint is given up on */
	double drain_grace;	/* seconds a removed endpoint's connections live on */
	double udp_timeout;	/* seconds a quiet UDP session lives */
	unsigned max_conns;	/* TCP connections at once; accepts pause at the limit */
	/* Without the right to add addresses: listen on 127.0.0.1, a port the
	 * kernel picks per service port (shown by lb_service_listen). */
	bool loopback_only;
	/* Make each send on its own, as where io_uring is missing or
	 * disabled, instead of an epoll batch's sends in one system call. */
	bool send_one_by_one;
};

/* One endpoint of one service port. */
struct lb_target {
	struct svc_addr addr;
	uint16_t port;
};

/* A service port: where it listens and where it sends. */
struct lb_port_spec {
	uint8_t proto;			 /* IPPROTO_TCP or IPPROTO_UDP (others are skipped) */
	uint16_t port;			 /* on every address of the service */
	uint16_t node_port;		 /* 0: none; else also on every node address */
	const struct lb_target *targets; /* the ready endpoints */
	uint32_t ntargets;
};

struct lb_service_spec {
	const struct svc_addr *addrs; /* ClusterIP, external and LB IPs */
	uint32_t naddrs;
	bool affinity; /* sessionAffinity: ClientIP */
	uint32_t affinity_timeout;
	const struct lb_port_spec *ports;
	uint32_t nports;
};

int lb_new(struct ev_loop *loop, const struct lb_config *cfg, struct lb **out, struct svc_err *e);
/* Closes every listener and connection; removes the addresses it added. */
void lb_free(struct lb *lb);

/* Make service key ("ns/name") match spec, or remove it (spec NULL).  All
 * or nothing for that service: on failure it keeps what it had.  Existing
 * listeners and connections are kept where the spec still has them; the
 * connections of an endpoint that went away drain (lb_config.drain_grace). */
int lb_service_set(struct lb *lb, const char *key, const struct lb_service_spec *spec,
		   struct svc_err *e);
bool lb_has_service(const struct lb *lb, const char *key);
/* The services it serves, one key per call from *cursor (start at 0); NULL
 * at the end.  Removing the service just returned is allowed. */
const char *lb_service_next(const struct lb *lb, size_t *cursor);

struct lb_counters {
	uint64_t active, total;	   /* connections (UDP: sessions) */
	uint64_t bytes_in;	   /* client to endpoint */
	uint64_t bytes_out;	   /* endpoint to client */
	uint64_t connect_failures; /* attempts given up (refused, timed out...) */
};

/* Walk a service's listeners ("10.96.0.5:80/TCP") and its endpoints with
 * their counters.  Returns -ENOENT when the balancer does not serve key. */
typedef void (*lb_listen_fn)(void *ctx, const char *where);
typedef void (*lb_ep_fn)(void *ctx, const char *endpoint, const struct lb_counters *c);
int lb_service_walk(const struct lb *lb, const char *key, lb_listen_fn on_listen,
		    lb_ep_fn on_endpoint, struct lb_counters *total, void *ctx);

struct lb_stats {
	size_t services, listeners;
	uint64_t active, total, accept_paused;
	bool loopback_only;
	bool batched_sends;	/* an epoll batch's sends in one io_uring call */
	uint64_t sends_batched; /* sends made that way */
};
void lb_stats(const struct lb *lb, struct lb_stats *out);

#endif
