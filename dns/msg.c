// SPDX-License-Identifier: MIT
/* Query parsing and response building on top of the wire cursors. */
#include "msg.h"

#include <errno.h>
#include <string.h>

/* ---- parsing ---- */

int dns_rr_read(struct dns_rd *r, struct dns_rr *rr)
{
	dns_rd_name(r, &rr->owner);
	rr->type = dns_rd_u16(r);
	rr->rclass = dns_rd_u16(r);
	rr->ttl = dns_rd_u32(r);
	rr->rdlen = dns_rd_u16(r);
	rr->rdata = r->pos;
	if (!r->err && rr->rdlen > dns_rd_left(r))
		return dns_rd_fail(r, r->pos - 2, "RDLENGTH %u overruns the message (%zu left)",
				   rr->rdlen, dns_rd_left(r));
	dns_rd_skip(r, rr->rdlen);
	return r->err;
}

static int parse_header(struct dns_rd *r, struct dns_query *q)
{
	q->id = dns_rd_u16(r);
	q->flags = dns_rd_u16(r);
	q->qdcount = dns_rd_u16(r);
	q->ancount = dns_rd_u16(r);
	q->nscount = dns_rd_u16(r);
	q->arcount = dns_rd_u16(r);
	if (r->err)
		return r->err;
	q->has_header = true;
	if (q->qdcount != 1)
		return dns_rd_fail(r, DNS_HDR_QDCOUNT, "QDCOUNT %u, expected 1", q->qdcount);
	return 0;
}

static int parse_question(struct dns_rd *r, struct dns_query *q)
{
	dns_rd_name(r, &q->qname);
	q->qtype = dns_rd_u16(r);
	q->qclass = dns_rd_u16(r);
	if (r->err)
		return r->err;
	/* Cannot fail: the buffer holds the longest presentation form. */
	q->qname_len = (uint16_t)dns_name_str(&q->qname, q->qname_str, sizeof(q->qname_str));
	q->has_question = true;
	return 0;
}

/* The OPT rdata is a run of {code, length, data} options that must fill it
 * exactly (RFC 6891 section 6.1.2). */
static int check_options(struct dns_rd *r, const struct dns_rr *rr)
{
	struct dns_rd o;

	dns_rd_init(&o, r->wire, rr->rdata + rr->rdlen);
	dns_rd_seek(&o, rr->rdata);
	while (!o.err && dns_rd_left(&o)) {
		dns_rd_u16(&o); /* option code: none is acted on */
		dns_rd_skip(&o, dns_rd_u16(&o));
	}
	if (o.err)
		return dns_rd_fail(r, o.err_pos, "EDNS option: %s", o.why);
	return 0;
}

static int parse_opt(struct dns_rd *r, struct dns_query *q, const struct dns_rr *rr, size_t at)
{
	if (q->edns)
		return dns_rd_fail(r, at, "second OPT record");
	if (rr->owner.len != 1)
		return dns_rd_fail(r, at, "OPT record not owned by the root");
	q->edns = true;
	q->udp_size = rr->rclass;
	q->ext_rcode = (uint8_t)(rr->ttl >> 24);
	q->edns_version = (uint8_t)(rr->ttl >> 16);
	q->do_bit = rr->ttl & DNS_EDNS_DO;
	return check_options(r, rr);
}

/* Answer and authority are skipped (validated only); the additional section
 * is searched for the OPT record. */
static int parse_records(struct dns_rd *r, struct dns_query *q)
{
	unsigned skip = (unsigned)q->ancount + q->nscount;
	struct dns_rr rr;

	for (unsigned i = 0; !r->err && i < skip + q->arcount; i++) {
		size_t at = r->pos;

		if (dns_rr_read(r, &rr) || rr.type != DNS_TYPE_OPT)
			continue;
		if (i < skip)
			return dns_rd_fail(r, at, "OPT record outside the additional section");
		parse_opt(r, q, &rr, at);
	}
	return r->err;
}

int dns_query_parse(const uint8_t *wire, size_t len, struct dns_query *q, struct svc_err *e)
{
	struct dns_rd r;

	memset(q, 0, offsetof(struct dns_query, qname_len));
	q->qname_len = 0;
	q->qname.len = q->qname.labels = 0;
	q->qname_str[0] = 0;
	dns_rd_init(&r, wire, len);
	if (!parse_header(&r, q) && !parse_question(&r, q) && !parse_records(&r, q) &&
	    dns_rd_left(&r))
		dns_rd_fail(&r, r.pos, "%zu trailing bytes", dns_rd_left(&r));
	if (r.err)
		return dns_rd_error(&r, e);
	return 0;
}

/* ---- building ---- */

size_t dns_resp_limit(const struct dns_query *q, bool tcp, uint16_t our_max)
{
	size_t n;

	if (tcp)
		return DNS_TCP_MAX;
	if (!q->edns)
		return DNS_UDP_MIN;
	n = q->udp_size < DNS_UDP_MIN ? DNS_UDP_MIN : q->udp_size;
	if (our_max < DNS_UDP_MIN)
		our_max = DNS_UDP_MIN;
	return n < our_max ? n : our_max;
}

int dns_resp_init(struct dns_resp *r, uint8_t *buf, size_t limit, const struct dns_query *q,
		  uint16_t udp_size, struct svc_err *e)
{
	struct dns_wr *w = &r->w;

	memset(r, 0, offsetof(struct dns_resp, set_owner)); /* the name is copied in */
	r->set_owner.len = 0;
	if (limit > DNS_TCP_MAX) /* also keeps every RDLENGTH below 65536 */
		limit = DNS_TCP_MAX;
	dns_wr_init(w, buf, limit);
	r->limit = limit;
	r->edns = q->edns;
	r->do_bit = q->do_bit; /* copied back (RFC 3225 section 3) */
	r->udp_size = udp_size < DNS_UDP_MIN ? DNS_UDP_MIN : udp_size;
	r->flags = DNS_FLAG_QR | (q->flags & (DNS_FLAG_OPCODE_MASK | DNS_FLAG_RD | DNS_FLAG_CD));
	dns_wr_u16(w, q->id);
	dns_wr_bytes(w, (const uint8_t[10]){0}, 10); /* flags and counts, set by finish */
	if (q->has_question) {
		r->qname = &q->qname;
		dns_wr_name(w, &q->qname, true);
		dns_wr_u16(w, q->qtype);
		dns_wr_u16(w, q->qclass);
		r->qdcount = 1;
	}
	if (w->err || (r->edns && w->pos + DNS_OPT_RR_SIZE > limit))
		return svc_errf(e, EMSGSIZE, "a %zu-byte limit leaves no room for the question",
				limit);
	/* Keep room for the OPT record: it is written last but must always fit. */
	if (r->edns)
		dns_wr_set_limit(w, limit - DNS_OPT_RR_SIZE);
	return 0;
}

void dns_resp_set_aa(struct dns_resp *r, bool aa)
{
	r->flags = aa ? r->flags | DNS_FLAG_AA : r->flags & ~DNS_FLAG_AA;
}

int dns_resp_set_rcode(struct dns_resp *r, uint16_t rcode)
{
	if (rcode > 0xfff || (rcode > DNS_FLAG_RCODE_MASK && !r->edns))
		return -EINVAL;
	r->rcode = rcode;
	return 0;
}

static bool name_ok(const struct dns_name *n)
{
	return n && dns_name_valid(n);
}

/* Continue the open RRset, or open a new one: remember where it starts so
 * that it can be dropped whole. */
static bool set_owner_eq(const struct dns_resp *r, const struct dns_name *owner)
{
	if (r->set_is_q)
		return owner == r->qname || dns_name_eq(r->qname, owner);
	return dns_name_eq(&r->set_owner, owner);
}

static int set_enter(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint16_t type)
{
	bool is_q = owner && owner == r->qname; /* valid: the parser read it */

	if (sec < r->sec || sec > DNS_SEC_ADDITIONAL || (!is_q && !name_ok(owner)) ||
	    type == DNS_TYPE_OPT)
		return -EINVAL;
	if (r->set_open && r->set_sec == sec && r->set_type == type && set_owner_eq(r, owner))
		return r->set_dropped ? -EMSGSIZE : 0;
	if (r->full)
		return -EMSGSIZE;
	r->sec = sec;
	r->set_open = true;
	r->set_dropped = false;
	r->set_sec = sec;
	r->set_type = type;
	r->set_count = r->count[sec];
	r->set_mark = dns_wr_mark(&r->w);
	r->set_is_q = is_q;
	if (!is_q) {
		r->set_owner.len = owner->len;
		memcpy(r->set_owner.wire, owner->wire, owner->len);
	}
	return 0;
}

/* Write an RR's fixed part; *rdlen_at gets where RDLENGTH goes. */
static int rr_head(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		   uint16_t type, uint32_t ttl, size_t *rdlen_at)
{
	int err = set_enter(r, sec, owner, type);

	if (err)
		return err;
	if (owner == r->qname)
		dns_wr_u16(&r->w, 0xc000 | DNS_HDR_SIZE);
	else
		dns_wr_name(&r->w, owner, true);
	dns_wr_u16(&r->w, type);
	dns_wr_u16(&r->w, DNS_CLASS_IN);
	dns_wr_u32(&r->w, ttl);
	*rdlen_at = r->w.pos;
	dns_wr_u16(&r->w, 0);
	return 0;
}

/* Finish an RR: set RDLENGTH, or drop its whole RRset if it did not fit. */
static int rr_done(struct dns_resp *r, size_t rdlen_at)
{
	struct dns_wr *w = &r->w;

	if (!w->err) {
		dns_wr_u16_at(w, rdlen_at, (uint16_t)(w->pos - rdlen_at - 2));
		r->count[r->set_sec]++;
		return 0;
	}
	dns_wr_rewind(w, r->set_mark);
	r->count[r->set_sec] = r->set_count;
	r->set_dropped = true;
	if (r->set_sec != DNS_SEC_ADDITIONAL) {
		r->flags |= DNS_FLAG_TC;
		r->full = true;
	}
	return -EMSGSIZE;
}

int dns_resp_add(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		 uint16_t type, uint32_t ttl, const void *rdata, uint16_t rdlen)
{
	size_t at;
	int err = rr_head(r, sec, owner, type, ttl, &at);

	if (err)
		return err;
	dns_wr_bytes(&r->w, rdata, rdlen);
	return rr_done(r, at);
}

int dns_resp_add_a(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		   uint32_t ttl, const uint8_t addr[4])
{
	return dns_resp_add(r, sec, owner, DNS_TYPE_A, ttl, addr, 4);
}

int dns_resp_add_aaaa(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		      uint32_t ttl, const uint8_t addr[16])
{
	return dns_resp_add(r, sec, owner, DNS_TYPE_AAAA, ttl, addr, 16);
}

int dns_resp_add_name(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		      uint16_t type, uint32_t ttl, const struct dns_name *target)
{
	size_t at;
	int err = name_ok(target) ? rr_head(r, sec, owner, type, ttl, &at) : -EINVAL;

	if (err)
		return err;
	dns_wr_name(&r->w, target, true);
	return rr_done(r, at);
}

int dns_resp_add_srv(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint32_t ttl, uint16_t prio, uint16_t weight, uint16_t port,
		     const struct dns_name *target)
{
	size_t at;
	int err = name_ok(target) ? rr_head(r, sec, owner, DNS_TYPE_SRV, ttl, &at) : -EINVAL;

	if (err)
		return err;
	dns_wr_u16(&r->w, prio);
	dns_wr_u16(&r->w, weight);
	dns_wr_u16(&r->w, port);
	dns_wr_name(&r->w, target, false);
	return rr_done(r, at);
}

int dns_resp_add_txt(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint32_t ttl, const char *const *strs, size_t n)
{
	size_t at;
	int err = n ? 0 : -EINVAL;

	for (size_t i = 0; i < n && !err; i++)
		if (strlen(strs[i]) > 255)
			err = -EINVAL;
	if (err || (err = rr_head(r, sec, owner, DNS_TYPE_TXT, ttl, &at)))
		return err;
	for (size_t i = 0; i < n; i++) {
		dns_wr_u8(&r->w, (uint8_t)strlen(strs[i]));
		dns_wr_bytes(&r->w, strs[i], strlen(strs[i]));
	}
	return rr_done(r, at);
}

int dns_resp_add_soa(struct dns_resp *r, enum dns_section sec, const struct dns_name *owner,
		     uint32_t ttl, const struct dns_soa *soa)
{
	size_t at;
	int err = name_ok(&soa->mname) && name_ok(&soa->rname) ? 0 : -EINVAL;

	if (err || (err = rr_head(r, sec, owner, DNS_TYPE_SOA, ttl, &at)))
		return err;
	dns_wr_name(&r->w, &soa->mname, true);
	dns_wr_name(&r->w, &soa->rname, true);
	dns_wr_u32(&r->w, soa->serial);
	dns_wr_u32(&r->w, soa->refresh);
	dns_wr_u32(&r->w, soa->retry);
	dns_wr_u32(&r->w, soa->expire);
	dns_wr_u32(&r->w, soa->minimum);
	return rr_done(r, at);
}

/* Our OPT: version 0, the high rcode bits in the TTL, no options. */
static void write_opt(struct dns_resp *r)
{
	uint32_t ttl = (uint32_t)(r->rcode >> 4) << 24 | (r->do_bit ? DNS_EDNS_DO : 0);

	dns_wr_set_limit(&r->w, r->limit);
	dns_wr_u8(&r->w, 0);
	dns_wr_u16(&r->w, DNS_TYPE_OPT);
	dns_wr_u16(&r->w, r->udp_size);
	dns_wr_u32(&r->w, ttl);
	dns_wr_u16(&r->w, 0);
	if (!r->w.err)
		r->count[DNS_SEC_ADDITIONAL]++;
}

int dns_resp_finish(struct dns_resp *r, size_t *len, struct svc_err *e)
{
	struct dns_wr *w = &r->w;

	if (r->edns)
		write_opt(r);
	if (w->err)
		return svc_errf(e, -w->err, "finishing the DNS response");
	dns_wr_u16_at(w, DNS_HDR_FLAGS, (uint16_t)(r->flags | (r->rcode & DNS_FLAG_RCODE_MASK)));
	dns_wr_u16_at(w, DNS_HDR_QDCOUNT, r->qdcount);
	dns_wr_u16_at(w, DNS_HDR_ANCOUNT, r->count[DNS_SEC_ANSWER]);
	dns_wr_u16_at(w, DNS_HDR_NSCOUNT, r->count[DNS_SEC_AUTHORITY]);
	dns_wr_u16_at(w, DNS_HDR_ARCOUNT, r->count[DNS_SEC_ADDITIONAL]);
	*len = w->pos;
	return 0;
}
