// SPDX-License-Identifier: MIT
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RECV_CHUNK (256u << 10)

static struct timeval ms_to_tv(int ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_timeo(int fd, int opt, int ms)
{
	struct timeval tv = ms_to_tv(ms);

	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) ? -errno : 0;
}

static void describe_timeout(char *buf, size_t n, int ms)
{
	if (ms % 1000)
		snprintf(buf, n, "%.1f s", ms / 1000.0);
	else
		snprintf(buf, n, "%d s", ms / 1000);
}

static int timed_out(const struct ctl_client *c, struct svc_err *e)
{
	char t[32];

	describe_timeout(t, sizeof(t), c->timeout_ms);
	return svc_errf(e, ETIMEDOUT, "svcd did not answer within %s (--timeout)", t);
}

int ctl_client_connect(struct ctl_client *c, const char *path, int timeout_ms, struct svc_err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	int err;

	*c = (struct ctl_client){.fd = -1, .timeout_ms = timeout_ms};
	if (n == 0 || n >= sizeof(sa.sun_path))
		return svc_errf(e, n ? ENAMETOOLONG : ENOENT, "cannot reach svcd at %s: %s", path,
				strerror(n ? ENAMETOOLONG : ENOENT));
	memcpy(sa.sun_path, path, n);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return svc_errf(e, errno, "cannot create a socket: %s", strerror(errno));
	/* SO_SNDTIMEO also bounds connect() when the daemon's backlog is full. */
	err = set_timeo(c->fd, SO_SNDTIMEO, timeout_ms);
	if (!err)
		err = ctl_client_set_timeout(c, timeout_ms, e);
	if (!err && connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		err = -errno;
	if (err == -EAGAIN || err == -EINPROGRESS)
		err = -ETIMEDOUT;
	if (err) {
		ctl_client_close(c);
		return svc_errf(e, -err, "cannot reach svcd at %s: %s", path, strerror(-err));
	}
	return 0;
}

int ctl_client_set_timeout(struct ctl_client *c, int timeout_ms, struct svc_err *e)
{
	int err = set_timeo(c->fd, SO_RCVTIMEO, timeout_ms);

	if (err)
		return svc_errf(e, -err, "setting the socket timeout: %s", strerror(-err));
	c->timeout_ms = timeout_ms;
	return 0;
}

static int send_all(struct ctl_client *c, const char *p, size_t n, struct svc_err *e)
{
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return timed_out(c, e);
		if (w < 0)
			return svc_errf(e, errno, "sending to svcd: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int ctl_client_send(struct ctl_client *c, const cJSON *req, struct svc_err *e)
{
	char *line = cJSON_PrintUnformatted(req);
	size_t n;
	int err;

	if (!line)
		return svc_errf(e, ENOMEM, "encoding the request: out of memory");
	n = strlen(line);
	if (n + 1 > CTL_MAX_REQUEST)
		err = svc_errf(e, EMSGSIZE, "request is %zu bytes; svcd accepts at most %u MiB",
			       n + 1, CTL_MAX_REQUEST >> 20);
	else
		err = send_all(c, line, n, e);
	if (!err)
		err = send_all(c, "\n", 1, e);
	free(line);
	return err;
}

/* Make room for at least RECV_CHUNK more bytes at buf + len. */
static int make_room(struct ctl_client *c, struct svc_err *e)
{
	size_t used = c->len - c->start, cap = c->cap ? c->cap : RECV_CHUNK;
	char *p;

	if (c->start) {
		memmove(c->buf, c->buf + c->start, used);
		c->scanned -= c->start;
		c->len = used;
		c->start = 0;
	}
	if (c->cap - c->len >= RECV_CHUNK / 4)
		return 0;
	if (used >= CTL_MAX_RESPONSE)
		return svc_errf(e, EMSGSIZE, "response from svcd exceeds %u MiB",
				CTL_MAX_RESPONSE >> 20);
	while (cap - used < RECV_CHUNK)
		cap *= 2;
	p = realloc(c->buf, cap);
	if (!p)
		return svc_errf(e, ENOMEM, "reading from svcd: out of memory");
	c->buf = p;
	c->cap = cap;
	return 0;
}

/* Receive more bytes before `deadline` (0: none).  Returns bytes read, 0 at
 * end of stream, or -errno. */
static ssize_t fill(struct ctl_client *c, long long deadline, struct svc_err *e)
{
	ssize_t r;
	int err = make_room(c, e);

	if (err)
		return err;
	for (;;) {
		long long left = deadline ? deadline - now_ms() : 0;
		if (deadline && left <= 0)
			return timed_out(c, e);
		if (deadline && (err = set_timeo(c->fd, SO_RCVTIMEO, (int)left)))
			return svc_errf(e, -err, "setting the socket timeout: %s", strerror(-err));
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r >= 0)
			break;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return timed_out(c, e);
		if (errno != EINTR)
			return svc_errf(e, errno, "reading from svcd: %s", strerror(errno));
	}
	c->len += (size_t)r;
	return r;
}

static int parse_line(struct ctl_client *c, char *nl, cJSON **out, struct svc_err *e)
{
	const char *line = c->buf + c->start;
	size_t n = (size_t)(nl - line);

	c->start += n + 1;
	c->scanned = c->start;
	*out = cJSON_ParseWithLength(line, n);
	if (!*out)
		return svc_errf(e, EPROTO, "svcd sent a response that is not valid JSON");
	if (!cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		return svc_errf(e, EPROTO, "svcd sent a response that is not a JSON object");
	}
	return 0;
}

int ctl_client_recv(struct ctl_client *c, cJSON **out, struct svc_err *e)
{
	long long deadline = c->timeout_ms ? now_ms() + c->timeout_ms : 0;

	*out = NULL;
	for (;;) {
		char *nl = NULL;
		ssize_t r;

		if (c->len > c->scanned)
			nl = memchr(c->buf + c->scanned, '\n', c->len - c->scanned);
		if (nl)
			return parse_line(c, nl, out, e);
		c->scanned = c->len;
		r = fill(c, deadline, e);
		if (r < 0)
			return (int)r;
		if (r == 0 && c->len == c->start)
			return 1;
		if (r == 0)
			return svc_errf(e, EPROTO, "svcd closed the connection mid-response");
	}
}

void ctl_client_close(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	*c = (struct ctl_client){.fd = -1};
}
