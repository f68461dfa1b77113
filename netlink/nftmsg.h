/* SPDX-License-Identifier: MIT */
/* Internal to netlink/: an nf_tables transaction being built, sent as one
 * batch (pages chained into a single sendmsg so it stays atomic), and the
 * expression builders the rules are made of. */
#ifndef SVCD_NFTMSG_H
#define SVCD_NFTMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "err.h"

struct nft_sock {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

int nft_sock_open(struct nft_sock *s, struct svc_err *e);
void nft_sock_close(struct nft_sock *s);

/* A transaction: BEGIN, messages, END.  Each message remembers what it was
 * for, so that an error reply can name it. */
struct nft_txn {
	struct nft_sock *sock;
	struct nftnl_batch *batch;
	uint32_t first_seq, nmsgs;
	char **what; /* per message, indexed by seq - first_seq */
	size_t cap;
	int err;	  /* sticky: the first failure while building */
	uint32_t set_ids; /* ids handed to sets created in this transaction */
	char *zlo, *zhi;  /* the zeroed stretch of the current batch page */
};

int nft_txn_begin(struct nft_txn *t, struct nft_sock *s);
/* Start a message; returns the header to fill or NULL (t->err set). */
struct nlmsghdr *nft_txn_msg(struct nft_txn *t, uint16_t type, uint16_t family, uint16_t flags,
			     const char *what);
/* Close the message started last, once its payload is built. */
void nft_txn_done(struct nft_txn *t);
/* Send and wait for every reply; the first error names its message. */
int nft_txn_commit(struct nft_txn *t, struct svc_err *e);
void nft_txn_free(struct nft_txn *t);
bool nft_txn_empty(const struct nft_txn *t);

/* Dumps: run a GET request and hand each reply message to cb. */
typedef int (*nft_dump_cb)(const struct nlmsghdr *nlh, void *data);
int nft_dump(struct nft_sock *s, uint16_t type, uint16_t family, const char *table, const char *set,
	     nft_dump_cb cb, void *data, struct svc_err *e);

/* 32-bit registers, as concatenations use them. */
#define R(n) (NFT_REG32_00 + (n))

/* Expression builders: each adds one expression to the rule. */
void ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg);
void ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
void ex_meta_set(struct nftnl_rule *r, uint32_t key, uint32_t sreg);
void ex_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len);
void ex_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, const void * xor,
		uint32_t len);
void ex_lookup(struct nftnl_rule *r, const char *set, uint32_t sreg, int dreg, bool inv);
void ex_imm(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len);
void ex_verdict(struct nftnl_rule *r, int verdict, const char *chain);
void ex_numgen(struct nftnl_rule *r, uint32_t mod, uint32_t dreg);
void ex_dnat(struct nftnl_rule *r, uint32_t reg_addr, uint32_t reg_port);
void ex_masq(struct nftnl_rule *r);
void ex_reject(struct nftnl_rule *r, uint32_t type, uint8_t code);
void ex_fib_daddr_type(struct nftnl_rule *r, uint32_t dreg);
void ex_ct(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
void ex_ct_dir(struct nftnl_rule *r, uint32_t key, uint8_t dir, uint32_t dreg);
void ex_dynset(struct nftnl_rule *r, const char *set, uint32_t op, uint32_t sreg_key,
	       uint32_t sreg_data, uint64_t timeout_ms);

#endif
