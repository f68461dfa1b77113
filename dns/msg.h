/* SPDX-License-Identifier: MIT */
/* DNS messages: parsing a query and building its response (RFC 1035,
 * RFC 6891 for EDNS0).  Wire access goes through wire.h; no struct is laid
 * over packet bytes.  Nothing here prints. */
#ifndef SVCD_DNS_MSG_H
#define SVCD_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "wire.h"

/* Header: byte offsets and flag bits. */
#define DNS_HDR_ID	0
#define DNS_HDR_FLAGS	2
#define DNS_HDR_QDCOUNT 4
#define DNS_HDR_ANCOUNT 6
#define DNS_HDR_NSCOUNT 8
#define DNS_HDR_ARCOUNT 10
#define DNS_HDR_SIZE	12

#define DNS_FLAG_QR	      0x8000
#define DNS_FLAG_OPCODE_MASK  0x7800
#define DNS_FLAG_OPCODE_SHIFT 11
#define DNS_FLAG_AA	      0x0400
#define DNS_FLAG_TC	      0x0200
#define DNS_FLAG_RD	      0x0100
#define DNS_FLAG_RA	      0x0080
#define DNS_FLAG_AD	      0x0020
#define DNS_FLAG_CD	      0x0010
#define DNS_FLAG_RCODE_MASK   0x000f

#define DNS_OPCODE_QUERY 0

#define DNS_TYPE_A     1
#define DNS_TYPE_NS    2
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SOA   6
#define DNS_TYPE_PTR   12
#define DNS_TYPE_MX    15
#define DNS_TYPE_TXT   16
#define DNS_TYPE_AAAA  28
#define DNS_TYPE_SRV   33
#define DNS_TYPE_OPT   41
#define DNS_TYPE_IXFR  251
#define DNS_TYPE_AXFR  252
#define DNS_TYPE_ANY   255

#define DNS_CLASS_IN  1
#define DNS_CLASS_CH  3
#define DNS_CLASS_ANY 255

#define DNS_RCODE_NOERROR  0
#define DNS_RCODE_FORMERR  1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP   4
#define DNS_RCODE_REFUSED  5
#define DNS_RCODE_BADVERS  16 /* extended: its high bits travel in the OPT TTL */

#define DNS_UDP_MIN	 512	/* without EDNS, and the floor of any advertised size */
#define DNS_EDNS_UDP_DEF 1232	/* our default payload cap (DNS flag day 2020) */
#define DNS_TCP_MAX	 65535	/* a TCP message is framed by a 16-bit length */
#define DNS_OPT_RR_SIZE	 11	/* root owner, type, class, TTL, RDLENGTH 0 */
#define DNS_EDNS_DO	 0x8000 /* DO bit in the OPT TTL's low 16 bits */

/* Header getters; wire must hold at least DNS_HDR_SIZE bytes. */
static inline uint16_t dns_hdr_id(const uint8_t *wire)
{
	return dns_get16(wire + DNS_HDR_ID);
}
static inline uint16_t dns_hdr_flags(const uint8_t *wire)
{
	return dns_get16(wire + DNS_HDR_FLAGS);
}
static inline uint16_t dns_hdr_qdcount(const uint8_t *wire)
{
	return dns_get16(wire + DNS_HDR_QDCOUNT);
}
static inline uint16_t dns_hdr_ancount(const uint8_t *wire)
{
	return dns_get16(wire + DNS_HDR_ANCOUNT);
}
static inline uint16_t dns_hdr_nscount(const uint8_t *wire)
{
	return dns_get16(wire + DNS_HDR_NSCOUNT);
}
static inline uint16_t dns_hdr_arcount(const uint8_t *wire)
{
	return dns_get16(wire + DNS_HDR_ARCOUNT);
}
static inline unsigned dns_flags_opcode(uint16_t flags)
{
	return (flags & DNS_FLAG_OPCODE_MASK) >> DNS_FLAG_OPCODE_SHIFT;
}

/* One resource record as read; the rdata stays in the message. */
struct dns_rr {
	struct dns_name owner;
	uint16_t type, rclass;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdata; /* offset of the rdata in the message */
};
/* Read one RR at the cursor and skip its rdata; returns r->err. */
int dns_rr_read(struct dns_rd *r, struct dns_rr *rr);

struct dns_query {
	uint16_t id, flags;
	uint16_t qdcount, ancount, nscount, arcount;
	bool has_header;   /* id and flags are valid: a FORMERR reply is possible */
	bool has_question; /* qname, qtype and qclass are valid */
	uint16_t qtype, qclass;
	bool edns;	      /* an OPT record was present */
	uint16_t udp_size;    /* the client's advertised payload size, as sent */
	uint8_t ext_rcode;    /* high 8 bits of the client's rcode */
	uint8_t edns_version; /* anything but 0 calls for BADVERS */
	bool do_bit;
	/* Last, and not cleared before parsing: a query is parsed for each
	 * packet and these two are most of its size. */
	uint16_t qname_len;		  /* strlen(qname_str) */
	struct dns_name qname;		  /* wire form, in the query's case */
	char qname_str[DNS_NAME_STR_MAX]; /* lower case, no trailing dot, for lookups */
};

/* Parse a query (also accepts a response: answer and authority are skipped).
 * QDCOUNT must be 1, at most one OPT, no trailing bytes.  Returns 0, or
 * -EBADMSG with e = "offset N: what" (worth FORMERR when has_header). */
int dns_query_parse(const uint8_t *wire, size_t len, struct dns_query *q, struct svc_err *e);

enum dns_section { DNS_SEC_ANSWER, DNS_SEC_AUTHORITY, DNS_SEC_ADDITIONAL };

/* Response builder.  RRs are added in section order.  Consecutive RRs with
 * the same section, owner and type form an RRset; an RRset that does not fit
 * is dropped whole.  A dropped answer or authority RRset sets TC and ends
 * the message (further adds do nothing); a dropped additional RRset only
 * leaves it out (RFC 2181 section 9). */
struct dns_resp {
	struct dns_wr w;
	size_t limit;	/* message size limit, OPT included */
	uint16_t flags; /* header flags so far */
	uint16_t qdcount;
	uint16_t count[3];    /* per enum dns_section */
	enum dns_section sec; /* the section being filled */
	uint16_t rcode;	      /* 12 bits */
	bool edns, do_bit, full;
	uint16_t udp_size; /* advertised in our OPT */
	/* The query's name, written at DNS_HDR_SIZE: an owner that is this very
	 * struct (the usual case) becomes a pointer there without a search. */
	const struct dns_name *qname;
	/* The RRset being added; set_owner is not copied when it is qname. */
	bool set_open, set_dropped, set_is_q;
	enum dns_section set_sec;
	uint16_t set_type, set_count;
	struct dns_wr_mark set_mark;
	struct dns_name set_owner; /* last: dns_resp_init does not clear it */
};

struct dns_soa {
	struct dns_name mname, rname;
	uint32_t serial, refresh, retry, expire, minimum;
};

/* Size limit for the response to q: 65535 over TCP, 512 without EDNS, else
 * the client's size between 512 and our_max. */
size_t dns_resp_limit(const struct dns_query *q, bool tcp, uint16_t our_max);
/* Start the response to q in buf (at least limit bytes): ID, opcode, RD and
 * CD copied, QR set, the question echoed in the query's case.  With EDNS in
 * q, room for our OPT (advertising udp_size) is kept.  Returns 0 or -errno. */
int dns_resp_init(struct dns_resp *r, uint8_t *buf, size_t limit, const struct dns_query *q,
		  uint16_t udp_size, struct svc_err *e);
void dns_resp_set_aa(struct dns_resp *r, bool aa);
/* rcode above 15 needs EDNS in the query: -EINVAL otherwise. */
int dns_resp_set_rcode(struct dns_resp *r, uint16_t rcode);

/* Adding RRs (class IN).  Each returns 0, -EMSGSIZE when its RRset was
 * dropped for lack of room, or -EINVAL when sections go backwards. */
int dns_resp_add(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		 uint16_t type, uint32_t ttl, const void *rdata, uint16_t rdlen);
int dns_resp_add_a(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		   uint32_t ttl, const uint8_t addr[4]);
int dns_resp_add_aaaa(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		      uint32_t ttl, const uint8_t addr[16]);
/* CNAME, PTR and NS: one compressed target name. */
int dns_resp_add_name(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		      uint16_t type, uint32_t ttl, const struct dns_name *target);
/* The SRV target is never compressed (RFC 2782). */
int dns_resp_add_srv(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint32_t ttl, uint16_t prio, uint16_t weight, uint16_t port,
		     const struct dns_name *target);
/* n character-strings of at most 255 bytes each. */
int dns_resp_add_txt(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint32_t ttl, const char *const *strs, size_t n);
int dns_resp_add_soa(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint32_t ttl, const struct dns_soa *soa);

/* Write the counts, flags (TC when an RRset was dropped) and our OPT;
 * *len gets the message length.  Returns 0 or -errno. */
int dns_resp_finish(struct dns_resp *r, size_t *len, struct svc_err *e);
/* Was the response truncated (TC)? */
static inline bool dns_resp_tc(const struct dns_resp *r)
{
	return r->flags & DNS_FLAG_TC;
}

#endif
