/* SPDX-License-Identifier: MIT */
/* Cell formatters shared by `get` and `list`, written after kubectl's
 * printers.  Each appends to `b`; a missing or mistyped field prints as
 * kubectl prints an unset one. */
#ifndef SVCCTL_FORMAT_H
#define SVCCTL_FORMAT_H

#include <time.h>
#include <cjson/cJSON.h>

#include "util.h"

/* kubectl's HumanDuration: "5s", "3m2s", "4h", "2d3h", "400d", "3y". */
void ctl_fmt_duration(struct sbuf *b, long long seconds);
/* Age of an RFC 3339 time stamp at `now`; "<unknown>" if unset or invalid. */
void ctl_fmt_age(struct sbuf *b, const char *stamp, time_t now);
/* "80/TCP,443:30443/TCP" from [{port, nodePort, protocol}]; "<none>" when empty. */
void ctl_fmt_ports(struct sbuf *b, const cJSON *ports);
/* "app=web,tier=x" from a string map, keys sorted; "<none>" when empty. */
void ctl_fmt_selector(struct sbuf *b, const cJSON *map);
/* The strings of an array joined by ","; returns how many there were. */
size_t ctl_fmt_join(struct sbuf *b, const cJSON *arr);
/* " + N more..." after `shown` of `total` items; an empty list is `empty`. */
void ctl_fmt_more(struct sbuf *b, size_t shown, long long total, const char *empty);

/* Collects the first CTL_FMT_MAX items of a list, counting all of them. */
#define CTL_FMT_MAX 3
struct ctl_fmt_list {
	struct sbuf *b;
	size_t shown;
	long long total;
};
void ctl_fmt_list_add(struct ctl_fmt_list *l, const char *s);
/* Adds "ip:port" ("[ip]:port" for IPv6), or the ip alone when port < 0. */
void ctl_fmt_list_hostport(struct ctl_fmt_list *l, const char *ip, long long port);

#endif
