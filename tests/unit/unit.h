/* SPDX-License-Identifier: MIT */
/* A minimal unit-test harness: CHECK records a failure and goes on;
 * each test binary ends with UNIT_DONE(), which prints
 * "<name>: N passed, N failed" and returns the exit status. */
#ifndef SVCD_UNIT_H
#define SVCD_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_pass, unit_fail;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			unit_pass++;                                                               \
		} else {                                                                           \
			unit_fail++;                                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (a_ && b_ && !strcmp(a_, b_)) {                                                 \
			unit_pass++;                                                               \
		} else {                                                                           \
			unit_fail++;                                                               \
			fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__,          \
				__LINE__, b_ ? b_ : "(null)", a_ ? a_ : "(null)");                 \
		}                                                                                  \
	} while (0)

/* The message contains the substring. */
#define CHECK_HAS(hay, needle)                                                                     \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (h_ && strstr(h_, n_)) {                                                        \
			unit_pass++;                                                               \
		} else {                                                                           \
			unit_fail++;                                                               \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,       \
				__LINE__, h_ ? h_ : "(null)", n_);                                 \
		}                                                                                  \
	} while (0)

#define UNIT_DONE(name)                                                                            \
	(printf("%s: %d passed, %d failed\n", (name), unit_pass, unit_fail), unit_fail ? 1 : 0)

#endif
