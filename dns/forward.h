/* SPDX-License-Identifier: MIT */
/* The forwarder: names outside the cluster zone go to the node's upstream
 * resolvers (the nameservers of /etc/resolv.conf, or --upstream-dns), over
 * UDP, again over TCP when the answer is truncated, with a timeout, and
 * through a small answer cache with negative caching (RFC 2308: the SOA
 * minimum of a negative answer, bounded).  Runs on the daemon's libev
 * loop; nothing blocks. */
#ifndef SVCD_DNS_FORWARD_H
#define SVCD_DNS_FORWARD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

struct ev_loop;
struct dns_fwd;
struct dns_fwd_req;

struct dns_fwd_config {
	const struct sockaddr_storage *upstreams; /* tried in order, port 53 by default */
	size_t n;
	double timeout;	      /* seconds for the whole lookup; SERVFAIL after (2; <= 0 means 2).
			       * Each upstream gets timeout/n per try. */
	size_t cache_max;     /* entries (10000); 0 disables the cache */
	uint32_t neg_ttl_max; /* cap on negative caching, seconds (30) */
	uint32_t ttl_max;     /* cap on positive caching, seconds (300) */
	/* Clock for cache ages, monotonic seconds; NULL = CLOCK_MONOTONIC.
	 * A hook for tests; timeouts always run on the loop's clock. */
	double (*now)(void);
};

/* The upstream nameservers of a resolv.conf (at most 3, as the libc
 * resolver); -ENOENT when it names none.  *out is malloc'd. */
int dns_fwd_resolv_conf(const char *path, struct sockaddr_storage **out, size_t *n,
			struct svc_err *e);

/* Copies cfg and its upstreams; opens one UDP socket per address family
 * (a family the host lacks is skipped while another one works). */
int dns_fwd_new(struct ev_loop *loop, const struct dns_fwd_config *cfg, struct dns_fwd **out,
		struct svc_err *e);
/* Pending callbacks are not called.  Safe from within a callback (the
 * freeing then happens when the callback returns). */
void dns_fwd_free(struct dns_fwd *f);

/* The answer to (name, type, class IN): `resp` is a whole DNS response
 * message (its ID and flags are the forwarder's own, its question the name
 * as given: the caller takes the rcode and the records it needs); on a
 * timeout or when every upstream fails, err < 0 and resp NULL.  Called
 * later from the loop, never from within dns_fwd_query, even on a cache
 * hit. */
typedef void (*dns_fwd_cb)(void *ctx, int err, const uint8_t *resp, size_t len);
/* `name` is in presentation form ("example.com"); case is kept on the
 * wire, the cache ignores it.  Returns a handle for dns_fwd_cancel, or NULL
 * (out of memory: the callback will not be called).  An invalid name is
 * answered with err -EINVAL.  The handle is dead once the callback has run.
 * Callbacks may call dns_fwd_query and dns_fwd_cancel. */
struct dns_fwd_req *dns_fwd_query(struct dns_fwd *f, const char *name, uint16_t type,
				  bool dnssec_ok, dns_fwd_cb cb, void *ctx);
/* The callback of req will not be called (the client went away); req is
 * freed.  Within req's own callback it does nothing.  The upstream lookup
 * goes on, to fill the cache. */
void dns_fwd_cancel(struct dns_fwd *f, struct dns_fwd_req *req);

struct dns_fwd_stats {
	uint64_t forwarded; /* lookups sent upstream */
	uint64_t cache_hits, cache_misses;
	uint64_t coalesced; /* misses that joined a lookup already in flight */
	uint64_t timeouts, tcp_retries;
};
void dns_fwd_stats(const struct dns_fwd *f, struct dns_fwd_stats *out);
#endif
