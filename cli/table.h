/* SPDX-License-Identifier: MIT */
/* Column-aligned tables as kubectl prints them: columns separated by at least
 * three spaces, no trailing blanks.  Cells are added row by row; a flush
 * writes the complete rows added since the last flush in one fwrite, and the
 * column widths only grow, so a watch stream stays aligned with its header. */
#ifndef SVCCTL_TABLE_H
#define SVCCTL_TABLE_H

#include <stdio.h>

#include "util.h"

struct ctl_cell {
	size_t off, len, width; /* bytes in text, display columns */
};

struct ctl_table {
	size_t ncols;
	size_t *width; /* per column */
	struct sbuf text;
	struct ctl_cell *cells;
	size_t ncells, cap;
	int err; /* sticky -ENOMEM */
};

int ctl_table_init(struct ctl_table *t, size_t ncols);
/* Add the next cell; control characters become '?'.  NULL counts as "". */
void ctl_table_cell(struct ctl_table *t, const char *s);
void ctl_table_cellf(struct ctl_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Write the complete rows added so far and forget them.  Returns 0 or -errno. */
int ctl_table_flush(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

#endif
