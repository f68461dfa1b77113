// SPDX-License-Identifier: MIT
/* The batch of sends (lb/sendq.h): every send queued is made and its
 * result reported by its number in the batch, a cancelled one is not
 * made (-ECANCELED), the numbers start again at each batch, a full socket
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

int main(void)
{
	struct sendq *q = NULL;
	int sv[2], res[4], i, rc = sendq_open(4, &q);
	char got[64] = {0}, fill[4096];

	alarm(20); /* a send that waited would hang: fail instead */
	if (rc == -ENOSYS || rc == -EPERM) {
		printf("sendq: io_uring not available here (%s), skipped\n", strerror(-rc));
		return UNIT_DONE("sendq");
	}
	CHECK(rc == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

	/* Three queued, the middle one cancelled: two made, in the socket in
	 * the order queued. */
	CHECK(sendq_add(q, sv[0], "one", 3, MSG_NOSIGNAL) == 0);
	CHECK(sendq_add(q, sv[0], "two", 3, MSG_NOSIGNAL) == 1);
	CHECK(sendq_add(q, sv[0], "three", 5, MSG_NOSIGNAL) == 2);
	sendq_cancel(q, 1);
	CHECK(sendq_flush(q, res) == 0);
	CHECK(res[0] == 3 && res[1] == -ECANCELED && res[2] == 5);
	CHECK(recv(sv[1], got, sizeof(got) - 1, MSG_DONTWAIT) == 8);
	CHECK_STR(got, "onethree");

	/* Full: four fit, the fifth is refused; all four are made, and the
	 * next batch counts from 0 again. */
	for (i = 0; i < 4; i++)
		CHECK(sendq_add(q, sv[0], "x", 1, MSG_NOSIGNAL) == i);
	CHECK(sendq_add(q, sv[0], "x", 1, MSG_NOSIGNAL) == -1);
	CHECK(sendq_flush(q, res) == 0);
	CHECK(res[0] == 1 && res[1] == 1 && res[2] == 1 && res[3] == 1);
	CHECK(recv(sv[1], got, sizeof(got), MSG_DONTWAIT) == 4);

	/* A full socket: -EAGAIN, at once. */
	memset(fill, 'f', sizeof(fill));
	while (send(sv[0], fill, sizeof(fill), MSG_DONTWAIT) > 0)
		;
	CHECK(sendq_add(q, sv[0], fill, sizeof(fill), MSG_NOSIGNAL) == 0);
	CHECK(sendq_flush(q, res) == 0);
	CHECK(res[0] == -EAGAIN);

	/* A closed peer: the error, not a signal. */
	close(sv[1]);
	CHECK(sendq_add(q, sv[0], "late", 4, MSG_NOSIGNAL) == 0);
	CHECK(sendq_flush(q, res) == 0);
	CHECK(res[0] == -EPIPE);

	close(sv[0]);
	sendq_close(q);
	return UNIT_DONE("sendq");
}
