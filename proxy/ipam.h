/* SPDX-License-Identifier: MIT */
/* Host-local IP address management for the node's pod CIDR.
 *
 * One file per allocated address, `<dir>/<a.b.c.d>`, holding its owner (the
 * pod's uid) and a newline, written atomically; the in-memory bitmap is
 * rebuilt from the directory at open.  Unlike the CNI host-local plugin, a
 * leak after a crash is not permanent: the owner of svcd's IPAM calls
 * ipam_retain() at start-up with the owners that still exist, and every
 * other allocation is freed.
 *
 * The directory is untrusted input: a file whose name is not an assignable
 * address of the CIDR in canonical form, that is not a regular file, or
 * whose content is not one owner (1-255 printable ASCII characters, no
 * space) is skipped with a warning (svc_log) and left in place; its address
 * counts as free, and an allocation writes over it.  Of two files naming one
 * owner the lower address is kept.  Temp files of an interrupted write are
 * removed.
 *
 * Durability: files are renamed into place (never torn, also across a
 * crash of svcd) but not fsynced.  An address record describes a network
 * namespace, and a power loss, the only thing an fsync guards against,
 * takes every namespace with it: after a reboot svcd wires every pod
 * again, and ipam_retain() frees what no pod owns, whichever files the
 * disk kept.  Two fsyncs per pod were half the cost of wiring one.
 *
 * Round-robin survives a restart without a last_reserved_ip file (which
 * would cost a second durable write per pod): at open, the last allocation
 * is taken to be the newest address file by mtime (ties: the higher
 * address). */
#ifndef SVCD_IPAM_H
#define SVCD_IPAM_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

struct svc_err;
struct ipam;

/* net/prefix: the pod CIDR.  The network address, the gateway (first host)
 * and the broadcast address are never handed out. */
int ipam_open(const char *dir, struct in_addr net, int prefix, struct ipam **out,
	      struct svc_err *e);
void ipam_close(struct ipam *ip);
/* The address of `owner`, allocating the next free one (round-robin after
 * the last allocation, as host-local does, so a freed address is not reused
 * at once) when it has none.  Persisted before returning.  -ENOSPC when the
 * CIDR is full. */
int ipam_alloc(struct ipam *ip, const char *owner, struct in_addr *out, struct svc_err *e);
/* Claim a specific address for owner (adopting a running pod whose
 * namespace already has it); -EEXIST if another owner holds it, -EINVAL if
 * it is not assignable.  An owner holding another address moves: the
 * namespace is the truth. */
int ipam_claim(struct ipam *ip, const char *owner, struct in_addr addr, struct svc_err *e);
/* 0 and *out when owner has an address, -ENOENT otherwise. */
int ipam_lookup(const struct ipam *ip, const char *owner, struct in_addr *out);
/* Free owner's address (file removed, not fsynced); absent is fine. */
int ipam_release(struct ipam *ip, const char *owner, struct svc_err *e);
/* Free every allocation whose owner `keep` rejects; returns how many were
 * freed, or -errno. */
typedef bool (*ipam_keep_fn)(const char *owner, void *ctx);
int ipam_retain(struct ipam *ip, ipam_keep_fn keep, void *ctx, struct svc_err *e);
size_t ipam_used(const struct ipam *ip);
#endif
