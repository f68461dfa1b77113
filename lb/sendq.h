/* SPDX-License-Identifier: MIT */
/* A batch of socket sends issued in one system call (io_uring).
 *
 * The balancer queues the writes an epoll batch produces and issues them
 * together: each send that wakes a sleeping endpoint or client no longer
 * returns to user space right after, where the woken process would take
 * the CPU before the next one is written; the woken processes find more
 * requests each when they run.  Sends never wait (MSG_DONTWAIT): a full
 * socket completes with -EAGAIN.  Where io_uring is missing, disabled or
 * older than Linux 6.1, sendq_open fails and the caller sends one at a
 * time. */
#ifndef SVCD_LB_SENDQ_H
#define SVCD_LB_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sendq;

/* A queue for up to entries sends (a power of two).  Returns 0 or
 * -errno (-ENOSYS, -EPERM: io_uring is not available here, or too old). */
int sendq_open(unsigned entries, struct sendq **out);
void sendq_close(struct sendq *q);

/* Queue send(fd, buf, len, flags | MSG_DONTWAIT), tag not 0, and say
 * which slot it took; fd and buf must stay until the flush or a sendq_cancel.  Returns
 * false when the queue is full (send it now instead). */
bool sendq_add(struct sendq *q, int fd, const void *buf, size_t len, int flags, uint64_t tag,
	       unsigned *slot);
/* The send queued in slot is not made; the flush reports nothing for it. */
void sendq_cancel(struct sendq *q, unsigned slot);
unsigned sendq_queued(const struct sendq *q);

/* Issue what is queued and report each send's result (bytes, or -errno)
 * to done, with its tag.  Returns 0, or -errno when the ring failed: the
 * sends not reported were not made (a send taken by the kernel completes
 * while it is submitted, so none is left half way). */
typedef void (*sendq_done_fn)(void *arg, uint64_t tag, int res);
int sendq_flush(struct sendq *q, sendq_done_fn done, void *arg);

#endif
