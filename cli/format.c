// SPDX-License-Identifier: MIT
#include "format.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static void duration_big(struct sbuf *b, long long hours)
{
	long long days = hours / 24, years = days / 365;

	if (hours < 48)
		sbuf_addf(b, "%lldh", hours);
	else if (hours < 24 * 8 && hours % 24)
		sbuf_addf(b, "%lldd%lldh", days, hours % 24);
	else if (hours < 24 * 365 * 2)
		sbuf_addf(b, "%lldd", days);
	else if (hours < 24 * 365 * 8 && days % 365)
		sbuf_addf(b, "%lldy%lldd", years, days % 365);
	else
		sbuf_addf(b, "%lldy", years);
}

void ctl_fmt_duration(struct sbuf *b, long long s)
{
	long long m = s / 60, h = s / 3600;

	if (s < -1)
		sbuf_adds(b, "<invalid>");
	else if (s < 0)
		sbuf_adds(b, "0s");
	else if (s < 120)
		sbuf_addf(b, "%llds", s);
	else if (m < 10 && s % 60)
		sbuf_addf(b, "%lldm%llds", m, s % 60);
	else if (m < 180)
		sbuf_addf(b, "%lldm", m);
	else if (h < 8 && m % 60)
		sbuf_addf(b, "%lldh%lldm", h, m % 60);
	else if (h < 8)
		sbuf_addf(b, "%lldh", h);
	else
		duration_big(b, h);
}

void ctl_fmt_age(struct sbuf *b, const char *stamp, time_t now)
{
	time_t t;

	if (!stamp || parse_rfc3339(stamp, &t))
		sbuf_adds(b, "<unknown>");
	else
		ctl_fmt_duration(b, (long long)now - (long long)t);
}

/* sbuf_addf() costs two vsnprintf calls; tables with 10,000 rows notice. */
static void add_int(struct sbuf *b, long long v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	sbuf_add(b, p, (size_t)(buf + sizeof(buf) - p));
}

void ctl_fmt_ports(struct sbuf *b, const cJSON *ports)
{
	const cJSON *p;
	size_t n = 0;

	cJSON_ArrayForEach(p, (cJSON_IsArray(ports) ? ports : NULL))
	{
		const char *proto = ctl_json_str(p, "protocol");
		long long node = ctl_json_int(p, "nodePort", 0);

		if (n++)
			sbuf_add(b, ",", 1);
		add_int(b, ctl_json_int(p, "port", 0));
		if (node > 0) {
			sbuf_add(b, ":", 1);
			add_int(b, node);
		}
		sbuf_add(b, "/", 1);
		sbuf_adds(b, proto && *proto ? proto : "TCP");
	}
	if (!n)
		sbuf_adds(b, "<none>");
}

static int cmp_key(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

void ctl_fmt_selector(struct sbuf *b, const cJSON *map)
{
	const cJSON *v, **sorted;
	size_t n = 0;

	if (!cJSON_IsObject(map) || !map->child)
		goto none;
	sorted = malloc((size_t)cJSON_GetArraySize(map) * sizeof(*sorted));
	if (!sorted)
		goto none;
	cJSON_ArrayForEach(v, map)
	{
		if (v->string && cJSON_IsString(v) && v->valuestring)
			sorted[n++] = v;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_key);
	for (size_t i = 0; i < n; i++)
		sbuf_addf(b, "%s%s=%s", i ? "," : "", sorted[i]->string, sorted[i]->valuestring);
	free(sorted);
	if (n)
		return;
none:
	sbuf_adds(b, "<none>");
}

size_t ctl_fmt_join(struct sbuf *b, const cJSON *arr)
{
	const cJSON *v;
	size_t n = 0;

	cJSON_ArrayForEach(v, (cJSON_IsArray(arr) ? arr : NULL))
	{
		if (!cJSON_IsString(v) || !v->valuestring)
			continue;
		if (n++)
			sbuf_add(b, ",", 1);
		sbuf_adds(b, v->valuestring);
	}
	return n;
}

void ctl_fmt_more(struct sbuf *b, size_t shown, long long total, const char *empty)
{
	if (!shown && total <= 0)
		sbuf_adds(b, empty);
	else if (total > (long long)shown)
		sbuf_addf(b, "%s+ %lld more...", shown ? " " : "", total - (long long)shown);
}

void ctl_fmt_list_add(struct ctl_fmt_list *l, const char *s)
{
	if (l->shown < CTL_FMT_MAX) {
		sbuf_addf(l->b, "%s%s", l->shown ? "," : "", s);
		l->shown++;
	}
	l->total++;
}

void ctl_fmt_list_hostport(struct ctl_fmt_list *l, const char *ip, long long port)
{
	if (l->shown < CTL_FMT_MAX) {
		bool v6 = port >= 0 && strchr(ip, ':');
		sbuf_addf(l->b, "%s%s%s%s", l->shown ? "," : "", v6 ? "[" : "", ip, v6 ? "]" : "");
		if (port >= 0)
			sbuf_addf(l->b, ":%lld", port);
		l->shown++;
	}
	l->total++;
}
