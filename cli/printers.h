/* SPDX-License-Identifier: MIT */
/* The `svcctl get` table of each kind, after kubectl's columns. */
#ifndef SVCCTL_PRINTERS_H
#define SVCCTL_PRINTERS_H

#include <stdbool.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "table.h"
#include "util.h"

struct ctl_row_ctx {
	time_t now;	 /* for AGE */
	struct sbuf tmp; /* scratch for building cells */
};

struct ctl_printer {
	const char *kind;
	const char *columns[7]; /* NULL-terminated */
	const char *wide[3];	/* added by -o wide, NULL-terminated */
	/* Add one row's cells (columns, then wide ones when `wide`). */
	void (*row)(struct ctl_table *t, const cJSON *obj, bool wide, struct ctl_row_ctx *ctx);
};

/* The printer of a protocol Kind ("Service"), or NULL. */
const struct ctl_printer *ctl_printer_find(const char *kind);

#endif
