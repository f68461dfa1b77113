// SPDX-License-Identifier: MIT
/* nf_tables transactions and dumps over libmnl, and expression builders. */
#include "nftmsg.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <libnftnl/common.h>
#include <libnftnl/batch.h>

#define PAGE_SIZE_BATCH (256u << 10)
#define RCVBUF		(4u << 20)
/* Zeroed ahead of each message: more than the biggest one (512 elements). */
#define ZERO_AHEAD (64u << 10)

int nft_sock_open(struct nft_sock *s, struct svc_err *e)
{
	int one = 1, rcv = RCVBUF;

	memset(s, 0, sizeof(*s));
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->nl)
		return svc_errf(e, errno, "nftables: netlink socket: %s", strerror(errno));
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = errno;
		mnl_socket_close(s->nl);
		s->nl = NULL;
		return svc_errf(e, err, "nftables: netlink bind: %s", strerror(err));
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = 1;
	/* Capped acks keep error replies small; extended acks say why. */
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)))
		setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	return 0;
}

void nft_sock_close(struct nft_sock *s)
{
	if (s->nl)
		mnl_socket_close(s->nl);
	s->nl = NULL;
}

int nft_txn_begin(struct nft_txn *t, struct nft_sock *s)
{
	memset(t, 0, sizeof(*t));
	t->sock = s;
	t->batch = nftnl_batch_alloc(PAGE_SIZE_BATCH, PAGE_SIZE_BATCH);
	if (!t->batch)
		return -ENOMEM;
	nftnl_batch_begin(nftnl_batch_buffer(t->batch), s->seq++);
	nftnl_batch_update(t->batch);
	t->first_seq = s->seq;
	return 0;
}

void nft_txn_free(struct nft_txn *t)
{
	for (uint32_t i = 0; i < t->nmsgs; i++)
		free(t->what[i]);
	free(t->what);
	if (t->batch)
		nftnl_batch_free(t->batch);
	memset(t, 0, sizeof(*t));
}

bool nft_txn_empty(const struct nft_txn *t)
{
	return t->nmsgs == 0;
}

/* libmnl 1.0.4 leaves attribute padding as it finds it, and batch pages come
 * from malloc: zero ahead of the message about to be built, so that no stale
 * heap byte goes to the kernel (and valgrind stays quiet).  Each byte of a
 * page is zeroed once; a page ends PAGE_SIZE_BATCH of overrun past where a
 * message may start, which ZERO_AHEAD stays within. */
static void zero_ahead(struct nft_txn *t)
{
	char *p = nftnl_batch_buffer(t->batch);

	if (p < t->zlo || p > t->zhi) /* a new page */
		t->zlo = t->zhi = p;
	if (t->zhi < p + ZERO_AHEAD) {
		memset(t->zhi, 0, (size_t)(p + ZERO_AHEAD - t->zhi));
		t->zhi = p + ZERO_AHEAD;
	}
}

struct nlmsghdr *nft_txn_msg(struct nft_txn *t, uint16_t type, uint16_t family, uint16_t flags,
			     const char *what)
{
	struct nlmsghdr *nlh;

	if (t->err)
		return NULL;
	if (t->nmsgs == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **w = realloc(t->what, cap * sizeof(*w));
		if (!w) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->what = w;
		t->cap = cap;
	}
	if (!(t->what[t->nmsgs] = strdup(what ? what : "?"))) {
		t->err = -ENOMEM;
		return NULL;
	}
	t->nmsgs++;
	zero_ahead(t);
	nlh = nftnl_nlmsg_build_hdr(nftnl_batch_buffer(t->batch), type, family, flags | NLM_F_ACK,
				    t->sock->seq++);
	return nlh;
}

void nft_txn_done(struct nft_txn *t)
{
	nftnl_batch_update(t->batch);
}

struct ack_state {
	struct nft_txn *t;
	uint32_t acks;
	int err;
	uint32_t err_seq;
	char ext[256];
};

static int parse_extack(const struct nlattr *attr, void *data)
{
	struct ack_state *st = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(st->ext, sizeof(st->ext), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static void on_ack(struct ack_state *st, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err;

	if (nlh->nlmsg_type != NLMSG_ERROR ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nlmsgerr))
		return;
	err = mnl_nlmsg_get_payload(nlh);
	st->acks++;
	if (!err->error || st->err)
		return;
	st->err = err->error;
	st->err_seq = nlh->nlmsg_seq;
	/* With NETLINK_CAP_ACK only the header of the request follows. */
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = sizeof(*err);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += mnl_nlmsg_get_payload_len(&err->msg);
		if (mnl_nlmsg_get_payload_len(nlh) > off)
			mnl_attr_parse_payload(nlh, off, parse_extack, st);
	}
}

static int read_acks(struct ack_state *st)
{
	struct nft_sock *s = st->t->sock;
	static char buf[1 << 16];

	/* nfnetlink processes the batch inside sendmsg: every reply is queued
	 * by now, so read until the queue is empty. */
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(s->nl), buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		int left = (int)n;
		for (const struct nlmsghdr *nlh = (void *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left))
			on_ack(st, nlh);
	}
}

static int send_batch(struct nft_txn *t, struct svc_err *e)
{
	int cnt = nftnl_batch_iovec_len(t->batch);
	struct iovec iov[cnt];
	struct sockaddr_nl snl = {.nl_family = AF_NETLINK};
	struct msghdr msg = {.msg_name = &snl, .msg_namelen = sizeof(snl), .msg_iov = iov};
	size_t total = 0;
	int fd = mnl_socket_get_fd(t->sock->nl), sz;

	nftnl_batch_iovec(t->batch, iov, (uint32_t)cnt);
	msg.msg_iovlen = (size_t)cnt;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	/* The whole transaction goes in one sendmsg, so the socket must take it. */
	sz = (int)(total + 4096);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (sendmsg(fd, &msg, 0) < 0)
		return svc_errf(e, errno, "nftables: sending %zu bytes: %s", total,
				strerror(errno));
	return 0;
}

int nft_txn_commit(struct nft_txn *t, struct svc_err *e)
{
	struct ack_state st = {.t = t};
	int r;

	if (t->err)
		return svc_errf(e, -t->err, "nftables: building the transaction: %s",
				strerror(-t->err));
	if (!t->nmsgs)
		return 0;
	nftnl_batch_end(nftnl_batch_buffer(t->batch), t->sock->seq++);
	nftnl_batch_update(t->batch);
	if ((r = send_batch(t, e)))
		return r;
	if ((r = read_acks(&st)))
		return svc_errf(e, -r, "nftables: reading replies: %s", strerror(-r));
	if (st.err) {
		uint32_t i = st.err_seq - t->first_seq;
		return svc_errf(e, -st.err, "nftables: %s: %s%s%s",
				i < t->nmsgs ? t->what[i] : "transaction", strerror(-st.err),
				st.ext[0] ? ": " : "", st.ext);
	}
	if (st.acks < t->nmsgs)
		return svc_errf(e, EPROTO, "nftables: %u of %u messages acknowledged", st.acks,
				t->nmsgs);
	return 0;
}

/* --- dumps ------------------------------------------------------------------ */

int nft_dump(struct nft_sock *s, uint16_t type, uint16_t family, const char *table, const char *set,
	     nft_dump_cb cb, void *data, struct svc_err *e)
{
	static char buf[1 << 17];
	struct nlmsghdr *nlh;
	uint32_t seq = s->seq++;
	int r;

	nlh = nftnl_nlmsg_build_hdr(buf, type, family, NLM_F_DUMP, seq);
	if (type == NFT_MSG_GETSETELEM) {
		struct nftnl_set *st = nftnl_set_alloc();
		if (!st)
			return svc_errf(e, ENOMEM, "out of memory");
		nftnl_set_set_str(st, NFTNL_SET_TABLE, table);
		nftnl_set_set_str(st, NFTNL_SET_NAME, set);
		nftnl_set_elems_nlmsg_build_payload(nlh, st);
		nftnl_set_free(st);
	} else if (table) {
		mnl_attr_put_strz(nlh, NFTA_TABLE_NAME,
				  table); /* same id for chains, rules, sets */
	}
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return svc_errf(e, errno, "nftables: dump request: %s", strerror(errno));
	for (int err = 0;;) {
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		bool last = false;
		int left;
		if (n < 0)
			return svc_errf(e, errno, "nftables: reading dump: %s", strerror(errno));
		left = (int)n;
		for (const struct nlmsghdr *h = (void *)buf; mnl_nlmsg_ok(h, left);
		     h = mnl_nlmsg_next(h, &left)) {
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				err = err ? err : EINTR;
			if (h->nlmsg_seq == seq &&
			    (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR))
				last = true;
		}
		/* After a failure the rest of the dump is still read, so that
		 * the socket is clean for the next request. */
		if (!err) {
			r = mnl_cb_run(buf, (size_t)n, seq, s->portid, cb, data);
			if (r == MNL_CB_STOP)
				return 0;
			if (r < 0)
				err = errno ? errno : EPROTO;
		}
		if (last)
			return err ? svc_errf(e, err, "nftables: dump: %s", strerror(err)) : 0;
	}
}

/* --- expressions ------------------------------------------------------------ */

static struct nftnl_expr *ex_new(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *x = nftnl_expr_alloc(name);

	if (x)
		nftnl_rule_add_expr(r, x);
	return x;
}

#define EX(r, name)                                                                                \
	struct nftnl_expr *x = ex_new(r, name);                                                    \
	if (!x)                                                                                    \
	return

void ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	EX(r, "payload");
	nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}

void ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	EX(r, "meta");
	nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, dreg);
}

void ex_meta_set(struct nftnl_rule *r, uint32_t key, uint32_t sreg)
{
	EX(r, "meta");
	nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(x, NFTNL_EXPR_META_SREG, sreg);
}

void ex_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
	EX(r, "cmp");
	nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, data, len);
}

void ex_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, const void * xor,
		uint32_t len)
{
	EX(r, "bitwise");
	nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(x, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(x, NFTNL_EXPR_BITWISE_XOR, xor, len);
}

void ex_lookup(struct nftnl_rule *r, const char *set, uint32_t sreg, int dreg, bool inv)
{
	EX(r, "lookup");
	nftnl_expr_set_str(x, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SREG, sreg);
	if (dreg >= 0)
		nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
	if (inv)
		nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
}

void ex_imm(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len)
{
	EX(r, "immediate");
	nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, dreg);
	nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, data, len);
}

void ex_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	EX(r, "immediate");
	nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(x, NFTNL_EXPR_IMM_CHAIN, chain);
}

void ex_numgen(struct nftnl_rule *r, uint32_t mod, uint32_t dreg)
{
	EX(r, "numgen");
	nftnl_expr_set_u32(x, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NG_MODULUS, mod);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NG_OFFSET, 0);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NG_DREG, dreg);
}

void ex_dnat(struct nftnl_rule *r, uint32_t reg_addr, uint32_t reg_port)
{
	EX(r, "nat");
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_port);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
}

void ex_masq(struct nftnl_rule *r)
{
	EX(r, "masq");
	nftnl_expr_set_u32(x, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
}

void ex_reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
	EX(r, "reject");
	nftnl_expr_set_u32(x, NFTNL_EXPR_REJECT_TYPE, type);
	nftnl_expr_set_u8(x, NFTNL_EXPR_REJECT_CODE, code);
}

void ex_fib_daddr_type(struct nftnl_rule *r, uint32_t dreg)
{
	EX(r, "fib");
	nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_DREG, dreg);
}

void ex_ct(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	EX(r, "ct");
	nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, dreg);
}

void ex_ct_dir(struct nftnl_rule *r, uint32_t key, uint8_t dir, uint32_t dreg)
{
	EX(r, "ct");
	nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u8(x, NFTNL_EXPR_CT_DIR, dir);
	nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, dreg);
}

void ex_dynset(struct nftnl_rule *r, const char *set, uint32_t op, uint32_t sreg_key,
	       uint32_t sreg_data, uint64_t timeout_ms)
{
	EX(r, "dynset");
	nftnl_expr_set_str(x, NFTNL_EXPR_DYNSET_SET_NAME, set);
	nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_OP, op);
	nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SREG_KEY, sreg_key);
	if (sreg_data)
		nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SREG_DATA, sreg_data);
	if (timeout_ms)
		nftnl_expr_set_u64(x, NFTNL_EXPR_DYNSET_TIMEOUT, timeout_ms);
}
