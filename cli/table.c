// SPDX-License-Identifier: MIT
#include "table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define GAP 3

int ctl_table_init(struct ctl_table *t, size_t ncols)
{
	*t = (struct ctl_table){.ncols = ncols};
	t->width = calloc(ncols, sizeof(*t->width));
	/* text.p is never NULL afterwards, so empty cells need no special case. */
	if (!t->width || sbuf_reserve(&t->text, 4096))
		t->err = -ENOMEM;
	return t->err;
}

static struct ctl_cell *new_cell(struct ctl_table *t)
{
	if (t->err)
		return NULL;
	if (t->ncells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct ctl_cell *c = realloc(t->cells, cap * sizeof(*c));
		if (!c) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->cells = c;
		t->cap = cap;
	}
	return &t->cells[t->ncells];
}

/* Sanitize the bytes just appended at text[off..] and count UTF-8 characters. */
static size_t clean(char *s, size_t n)
{
	size_t width = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			s[i] = '?';
		width += (ch & 0xc0) != 0x80;
	}
	return width;
}

static void commit_cell(struct ctl_table *t, struct ctl_cell *c, size_t off)
{
	c->off = off;
	c->len = t->text.len - off;
	c->width = clean(t->text.p + off, c->len);
	t->ncells++;
}

void ctl_table_cell(struct ctl_table *t, const char *s)
{
	struct ctl_cell *c = new_cell(t);
	size_t off = t->text.len;

	if (!c)
		return;
	if (s && *s && sbuf_adds(&t->text, s)) {
		t->err = -ENOMEM;
		return;
	}
	commit_cell(t, c, off);
}

void ctl_table_cellf(struct ctl_table *t, const char *fmt, ...)
{
	struct ctl_cell *c = new_cell(t);
	size_t off = t->text.len;
	va_list ap;
	int n;

	if (!c)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sbuf_reserve(&t->text, (size_t)n)) {
		t->err = -ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(t->text.p + off, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->text.len += (size_t)n;
	commit_cell(t, c, off);
}

/* Widen the columns for rows [0, nrows) and return the bytes they need. */
static size_t measure(struct ctl_table *t, size_t nrows)
{
	size_t total = 0;

	for (size_t i = 0; i < nrows * t->ncols; i++) {
		size_t col = i % t->ncols;
		if (t->cells[i].width > t->width[col])
			t->width[col] = t->cells[i].width;
	}
	for (size_t col = 0; col + 1 < t->ncols; col++)
		total += t->width[col] + GAP;
	return nrows * (total + 1) + t->text.len; /* +1 for '\n'; cell bytes >= width */
}

static char *render_row(const struct ctl_table *t, const struct ctl_cell *row, char *o)
{
	for (size_t col = 0; col < t->ncols; col++) {
		memcpy(o, t->text.p + row[col].off, row[col].len);
		o += row[col].len;
		if (col + 1 == t->ncols)
			break;
		memset(o, ' ', t->width[col] - row[col].width + GAP);
		o += t->width[col] - row[col].width + GAP;
	}
	*o++ = '\n';
	return o;
}

/* Keep the cells of an unfinished row (none in practice) for the next flush. */
static void forget_rows(struct ctl_table *t, size_t nrows)
{
	size_t done = nrows * t->ncols, keep = t->ncells - done;
	size_t base = keep ? t->cells[done].off : t->text.len;

	sbuf_consume(&t->text, base);
	for (size_t i = 0; i < keep; i++) {
		t->cells[i] = t->cells[done + i];
		t->cells[i].off -= base;
	}
	t->ncells = keep;
}

int ctl_table_flush(struct ctl_table *t, FILE *f)
{
	size_t nrows = t->ncols ? t->ncells / t->ncols : 0;
	char *out, *o;

	if (t->err || !nrows)
		return t->err;
	out = malloc(measure(t, nrows));
	if (!out)
		return t->err = -ENOMEM;
	o = out;
	for (size_t r = 0; r < nrows; r++)
		o = render_row(t, &t->cells[r * t->ncols], o);
	if (fwrite(out, 1, (size_t)(o - out), f) != (size_t)(o - out))
		t->err = errno ? -errno : -EIO;
	free(out);
	forget_rows(t, nrows);
	return t->err;
}

void ctl_table_free(struct ctl_table *t)
{
	free(t->width);
	free(t->cells);
	sbuf_free(&t->text);
	*t = (struct ctl_table){0};
}
