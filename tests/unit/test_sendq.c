// SPDX-License-Identifier: MIT
/* The batch of sends (lb/sendq.h): every send queued is made and reported
 * with its own tag and result, a cancelled one is neither, a full socket
 * reports -EAGAIN instead of waiting, and the queue says when it is full.
 * Where the kernel has no io_uring (or it is disabled), sendq_open must
 * say so with -ENOSYS or -EPERM, and the rest is skipped. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sendq.h"
#include "unit.h"

struct results {
	uint64_t tag[8];
	int res[8];
	int n;
};

static void on_done(void *arg, uint64_t tag, int res)
{
	struct results *r = arg;

	if (r->n < 8) {
		r->tag[r->n] = tag;
		r->res[r->n] = res;
	}
	r->n++;
}

static int result_of(const struct results *r, uint64_t tag)
{
	for (int i = 0; i < r->n && i < 8; i++)
		if (r->tag[i] == tag)
			return r->res[i];
	return -1000; /* not reported */
}

int main(void)
{
	struct sendq *q = NULL;
	struct results r = {0};
	int sv[2], rc = sendq_open(4, &q);
	unsigned slot, cancelled;
	char got[64] = {0}, fill[4096];
	ssize_t n;

	alarm(20); /* a send that waited would hang: fail instead */
	if (rc == -ENOSYS || rc == -EPERM) {
		printf("sendq: io_uring not available here (%s), skipped\n", strerror(-rc));
		return UNIT_DONE("sendq");
	}
	CHECK(rc == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

	/* Three queued, the middle one cancelled: two reported, in the socket
	 * in the order queued. */
	CHECK(sendq_add(q, sv[0], "one", 3, MSG_NOSIGNAL, 1, &slot));
	CHECK(sendq_add(q, sv[0], "two", 3, MSG_NOSIGNAL, 2, &cancelled));
	CHECK(sendq_add(q, sv[0], "three", 5, MSG_NOSIGNAL, 3, &slot));
	CHECK(sendq_queued(q) == 3);
	sendq_cancel(q, cancelled);
	CHECK(sendq_flush(q, on_done, &r) == 0);
	CHECK(r.n == 2);
	CHECK(result_of(&r, 1) == 3);
	CHECK(result_of(&r, 2) == -1000);
	CHECK(result_of(&r, 3) == 5);
	CHECK(sendq_queued(q) == 0);
	n = recv(sv[1], got, sizeof(got) - 1, MSG_DONTWAIT);
	CHECK(n == 8);
	CHECK_STR(got, "onethree");

	/* Full: four fit, the fifth is refused; all four are made. */
	r = (struct results){0};
	for (uint64_t t = 1; t <= 4; t++)
		CHECK(sendq_add(q, sv[0], "x", 1, MSG_NOSIGNAL, t, &slot));
	CHECK(!sendq_add(q, sv[0], "x", 1, MSG_NOSIGNAL, 5, &slot));
	CHECK(sendq_flush(q, on_done, &r) == 0);
	CHECK(r.n == 4);
	CHECK(recv(sv[1], got, sizeof(got), MSG_DONTWAIT) == 4);

	/* A full socket: -EAGAIN, at once. */
	memset(fill, 'f', sizeof(fill));
	while (send(sv[0], fill, sizeof(fill), MSG_DONTWAIT) > 0)
		;
	r = (struct results){0};
	CHECK(sendq_add(q, sv[0], fill, sizeof(fill), MSG_NOSIGNAL, 7, &slot));
	CHECK(sendq_flush(q, on_done, &r) == 0);
	CHECK(r.n == 1 && result_of(&r, 7) == -EAGAIN);

	/* A closed peer: the error, not a signal. */
	close(sv[1]);
	r = (struct results){0};
	CHECK(sendq_add(q, sv[0], "late", 4, MSG_NOSIGNAL, 8, &slot));
	CHECK(sendq_flush(q, on_done, &r) == 0);
	CHECK(r.n == 1 && result_of(&r, 8) == -EPIPE);

	close(sv[0]);
	sendq_close(q);
	return UNIT_DONE("sendq");
}
