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

/* Queue send(fd, buf, len, flags | MSG_DONTWAIT) as the batch's next
 * send; fd and buf must stay until the flush or sendq_cancel.  Returns its
 * number in the batch (0, 1, ...), or -1 when the batch is full (send it
 * now instead). */
int sendq_add(struct sendq *q, int fd, const void *buf, size_t len, int flags);
/* Send i of the batch is not made. */
void sendq_cancel(struct sendq *q, int i);

/* Make the batch's sends: res[i] gets send i's result, bytes or -errno,
 * and -ECANCELED for one cancelled or, when the ring failed, not made (a
 * send the kernel took completes while it is submitted, so none is left
 * half way).  Returns 0, or -errno when the ring failed. */
int sendq_flush(struct sendq *q, int *res);

#endif
