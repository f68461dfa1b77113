/* SPDX-License-Identifier: MIT */
/* The cluster DNS server: UDP and TCP sockets on the DNS service IP and on
 * any extra listen addresses, answering from a zone kept in step with the
 * object model and forwarding the rest (forward.h).  Runs on the daemon's
 * libev loop; nothing blocks.  Nothing here prints but svc_log. */
#ifndef SVCD_DNS_SERVER_H
#define SVCD_DNS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"
#include "forward.h"
#include "state.h"

struct ev_loop;
struct dns_server;

struct dns_server_config {
	const char *domain;	   /* the cluster zone, "cluster.local" */
	uint32_t ttl;		   /* of every record we own */
	const char *service_ip;	   /* served on port 53 and added to lo; NULL: none */
	const char *const *listen; /* more "ADDR:PORT" to serve on */
	size_t nlisten;
	const struct sockaddr_storage *upstreams; /* none: forwarding gives SERVFAIL */
	size_t nupstreams;
};

/* "1.2.3.4", "1.2.3.4:53", "::1", "[::1]:53" into out; def_port 0 makes the
 * port mandatory.  Returns 0 or -EINVAL with e filled. */
int dns_parse_hostport(const char *s, uint16_t def_port, struct sockaddr_storage *out,
		       struct svc_err *e);

/* Open the sockets, fill the zone from st's model and listen to st for
 * changes (st must outlive the server).  Returns 0 or -errno. */
int dns_server_open(struct ev_loop *loop, struct svc_state *st, const struct dns_server_config *cfg,
		    struct dns_server **out, struct svc_err *e);
/* Close everything; the service IP stays on lo (svcd --cleanup removes it).
 * Call before st stops sending events: state listeners cannot be removed. */
void dns_server_close(struct dns_server *s);

#define DNS_STAT_TYPES	10 /* A AAAA SRV PTR CNAME TXT SOA NS ANY other */
#define DNS_STAT_RCODES 8  /* NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED BADVERS other */
struct dns_server_stats {
	uint64_t queries, dropped, forwarded, tcp_connections, autopath;
	uint64_t by_type[DNS_STAT_TYPES], by_rcode[DNS_STAT_RCODES];
	struct dns_fwd_stats fwd; /* zero without upstreams */
	uint32_t serial;	  /* the zone's */
};
void dns_server_stats(const struct dns_server *s, struct dns_server_stats *out);
/* The name of counter i of by_type / by_rcode ("A", "NXDOMAIN"). */
const char *dns_stat_type_name(size_t i);
const char *dns_stat_rcode_name(size_t i);

#endif
