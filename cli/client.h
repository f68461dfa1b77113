/* SPDX-License-Identifier: MIT */
/* The svcd control connection: one JSON object per line each way
 * (docs/protocol.md).  Never prints; errors go into a struct svc_err. */
#ifndef SVCCTL_CLIENT_H
#define SVCCTL_CLIENT_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"

/* The daemon refuses longer requests; the client refuses longer responses. */
#define CTL_MAX_REQUEST	 (64u << 20)
#define CTL_MAX_RESPONSE (512u << 20)

struct ctl_client {
	int fd;
	int timeout_ms; /* for each response; 0 waits forever */
	char *buf;	/* received bytes; the unparsed ones are buf[start, len) */
	size_t start, len, cap;
	size_t scanned; /* buf[start, scanned) holds no '\n' */
};

/* Connect to the unix socket at `path`. */
int ctl_client_connect(struct ctl_client *c, const char *path, int timeout_ms, struct svc_err *e);
/* Change the limit for the next responses (watch streams wait forever). */
int ctl_client_set_timeout(struct ctl_client *c, int timeout_ms, struct svc_err *e);
/* Send one request line. */
int ctl_client_send(struct ctl_client *c, const cJSON *req, struct svc_err *e);
/* Read one response line into *out (a JSON object, caller frees).  Returns 0,
 * 1 when the daemon closed the connection between lines, or -errno. */
int ctl_client_recv(struct ctl_client *c, cJSON **out, struct svc_err *e);
void ctl_client_close(struct ctl_client *c);

#endif
