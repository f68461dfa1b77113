// SPDX-License-Identifier: MIT
/* A batch of sends through io_uring, with the raw system calls (liburing
 * is not needed for one opcode).  The ring is the submitting thread's
 * alone (SINGLE_ISSUER, DEFER_TASKRUN); a send with MSG_DONTWAIT completes
 * while it is submitted, so a flush waits for nothing. */
#include "sendq.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sendq {
	int fd;
	unsigned entries, queued; /* sends in this batch, at most entries */
	unsigned base;		  /* the SQ tail where this batch begins */
	void *sq_map, *cq_map;
	size_t sq_len, cq_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
};

/* Kernel headers before 6.1 lack these; the kernel says EINVAL. */
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* Linux 6.1 or later only: older kernels' io_uring differs in what a
 * send that cannot go on at once does, and a batch must never wait. */
static int ring_setup(unsigned entries, struct io_uring_params *p)
{
	int fd;

	memset(p, 0, sizeof(*p));
	p->flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	fd = (int)syscall(__NR_io_uring_setup, entries, p);
	if (fd < 0)
		return errno == EINVAL ? -ENOSYS : -errno;
	return fd;
}

int sendq_open(unsigned entries, struct sendq **out)
{
	struct io_uring_params p;
	struct sendq *q;
	int fd = ring_setup(entries, &p);

	if (fd < 0)
		return fd;
	if (!(q = calloc(1, sizeof(*q)))) {
		close(fd);
		return -ENOMEM;
	}
	q->fd = fd;
	q->entries = entries < p.sq_entries ? entries : p.sq_entries; /* never more */
	q->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	q->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (q->cq_len > q->sq_len)
			q->sq_len = q->cq_len;
		q->cq_len = 0;
	}
	q->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	q->sq_map = mmap(NULL, q->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			 IORING_OFF_SQ_RING);
	q->cq_map = q->cq_len ? mmap(NULL, q->cq_len, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING)
			      : q->sq_map;
	q->sqes = mmap(NULL, q->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		       IORING_OFF_SQES);
	if (q->sq_map == MAP_FAILED || q->cq_map == MAP_FAILED || q->sqes == MAP_FAILED) {
		int err = -errno;
		sendq_close(q);
		return err;
	}
	q->sq_tail = (unsigned *)((char *)q->sq_map + p.sq_off.tail);
	q->sq_mask = (unsigned *)((char *)q->sq_map + p.sq_off.ring_mask);
	q->sq_array = (unsigned *)((char *)q->sq_map + p.sq_off.array);
	q->cq_head = (unsigned *)((char *)q->cq_map + p.cq_off.head);
	q->cq_tail = (unsigned *)((char *)q->cq_map + p.cq_off.tail);
	q->cq_mask = (unsigned *)((char *)q->cq_map + p.cq_off.ring_mask);
	q->cqes = (struct io_uring_cqe *)((char *)q->cq_map + p.cq_off.cqes);
	*out = q;
	return 0;
}

void sendq_close(struct sendq *q)
{
	if (!q)
		return;
	if (q->sqes && q->sqes != MAP_FAILED)
		munmap(q->sqes, q->sqes_len);
	if (q->cq_len && q->cq_map && q->cq_map != MAP_FAILED)
		munmap(q->cq_map, q->cq_len);
	if (q->sq_map && q->sq_map != MAP_FAILED)
		munmap(q->sq_map, q->sq_len);
	close(q->fd);
	free(q);
}

/* Send i's user_data is i; a cancelled one's is this. */
#define CANCELLED UINT64_MAX

int sendq_add(struct sendq *q, int fd, const void *buf, size_t len, int flags)
{
	unsigned tail = *q->sq_tail, i;
	struct io_uring_sqe *s;

	/* The kernel consumes every queued entry at each flush, so the ring
	 * holds only this batch. */
	if (q->queued == q->entries || len > UINT32_MAX)
		return -1;
	if (!q->queued)
		q->base = tail;
	i = tail & *q->sq_mask;
	s = &q->sqes[i];
	memset(s, 0, sizeof(*s));
	s->opcode = IORING_OP_SEND;
	s->fd = fd;
	s->addr = (uint64_t)(uintptr_t)buf;
	s->len = (uint32_t)len;
	s->msg_flags = (uint32_t)(flags | MSG_DONTWAIT);
	s->user_data = q->queued;
	q->sq_array[i] = i;
	__atomic_store_n(q->sq_tail, tail + 1, __ATOMIC_RELEASE);
	return (int)q->queued++;
}

/* The kernel reads an entry only when it is submitted: until then it can
 * become a no-op, whose completion reap() drops. */
void sendq_cancel(struct sendq *q, int i)
{
	struct io_uring_sqe *s = &q->sqes[(q->base + (unsigned)i) & *q->sq_mask];

	memset(s, 0, sizeof(*s));
	s->opcode = IORING_OP_NOP;
	s->user_data = CANCELLED;
}

static unsigned reap(struct sendq *q, int *res)
{
	unsigned head = *q->cq_head, tail = __atomic_load_n(q->cq_tail, __ATOMIC_ACQUIRE), n = 0;

	for (; head != tail; head++, n++) {
		const struct io_uring_cqe *c = &q->cqes[head & *q->cq_mask];
		if (c->user_data < q->queued)
			res[c->user_data] = c->res;
	}
	__atomic_store_n(q->cq_head, head, __ATOMIC_RELEASE);
	return n;
}

int sendq_flush(struct sendq *q, int *res)
{
	unsigned unsubmitted = q->queued, left = q->queued;
	int err = 0;

	for (unsigned i = 0; i < q->queued; i++)
		res[i] = -ECANCELED;
	while (left && !err) {
		long n = syscall(__NR_io_uring_enter, q->fd, unsubmitted,
				 left > unsubmitted ? 1 : 0, IORING_ENTER_GETEVENTS, NULL, 0);
		unsigned got;
		if (n < 0 && errno != EINTR)
			err = -errno;
		else if (n > 0)
			unsubmitted -= (unsigned)n;
		got = reap(q, res);
		left -= got;
		if (!err && n == 0 && !got)
			err = -EAGAIN; /* the kernel takes none (out of memory) */
	}
	/* What the kernel did not take is taken back, not made. */
	__atomic_store_n(q->sq_tail, *q->sq_tail - unsubmitted, __ATOMIC_RELEASE);
	q->queued = 0;
	return err;
}
