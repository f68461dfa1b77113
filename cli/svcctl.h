/* SPDX-License-Identifier: MIT */
/* svcctl front end: the subcommands and the helpers they share.  Everything
 * here prints; the transport (client.h) and the formatters never do. */
#ifndef SVCCTL_H
#define SVCCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "client.h"

#define CTL_DEFAULT_SOCKET     "/run/svcd/svcd.sock"
#define CTL_DEFAULT_TIMEOUT_MS 30000
#define CTL_WAIT_TIMEOUT_MS    60000

/* Exit statuses. */
enum { CTL_OK = 0, CTL_ERROR = 1, CTL_USAGE = 2 };

/* Global options; the subcommands accept --socket and --timeout too. */
struct ctl {
	const char *socket;
	int timeout_ms; /* 0 waits forever */
	bool timeout_set;
};

int ctl_apply_main(struct ctl *ctl, int argc, char **argv);
int ctl_delete_main(struct ctl *ctl, int argc, char **argv);
int ctl_get_main(struct ctl *ctl, int argc, char **argv);
int ctl_list_main(struct ctl *ctl, int argc, char **argv);
int ctl_status_main(struct ctl *ctl, int argc, char **argv);
int ctl_image_main(struct ctl *ctl, int argc, char **argv);
int ctl_logs_main(struct ctl *ctl, int argc, char **argv);
int ctl_describe_main(struct ctl *ctl, int argc, char **argv);

/* Long options every subcommand takes (end its table with CTL_COMMON_OPTIONS). */
enum { OPT_SOCKET = 0x100, OPT_TIMEOUT, OPT_WAIT, OPT_IGNORE_NOT_FOUND };
// clang-format off
#define CTL_COMMON_OPTIONS					\
	{"socket", required_argument, NULL, OPT_SOCKET},	\
	{"timeout", required_argument, NULL, OPT_TIMEOUT},	\
	{"help", no_argument, NULL, 'h'},			\
	{NULL, 0, NULL, 0}
// clang-format on

/* Handle a common option or a getopt error for a subcommand whose usage text
 * is `usage`.  Returns -1 to go on parsing, else the exit status to return. */
int ctl_option(struct ctl *ctl, int opt, char **argv, const char *usage);
/* Parse "30", "1.5", "90s", "2m" into milliseconds; 0 means no limit. */
int ctl_parse_timeout(const char *s, int *ms);

/* "svcctl: <msg>" on stderr; returns CTL_ERROR. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "svcctl: <msg>" and the usage text on stderr; returns CTL_USAGE. */
int ctl_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write server-supplied text with control characters (but \n and \t) made visible. */
void ctl_put_clean(FILE *f, const char *s);

/* Connect to the daemon; prints the error.  Returns CTL_OK or CTL_ERROR. */
int ctl_open(const struct ctl *ctl, struct ctl_client *c, int timeout_ms);

enum ctl_call { CALL_OK, CALL_REFUSED, CALL_BROKEN };
/* One request on its own connection; a refusal or transport error is
 * printed.  CTL_OK hands back *resp (caller frees). */
int ctl_request(const struct ctl *ctl, const cJSON *req, cJSON **resp, int timeout_ms);
/* Send `req` and read its response.  Warnings are printed.  CALL_OK and
 * CALL_REFUSED (the daemon answered ok:false) hand back *resp, which the
 * caller frees; CALL_BROKEN has printed the transport error, after `what`
 * ("apply app.yaml") when not NULL. */
enum ctl_call ctl_call(struct ctl_client *c, const cJSON *req, cJSON **resp, const char *what);
/* Print a refused response: `error: <msg>`, or with `kube` set and a reason
 * present, `Error from server (<reason>): <msg>`. */
void ctl_print_refusal(const cJSON *resp, bool kube);
/* The same for a request about one object: a NotFound refusal without a
 * message becomes kubectl's `services "web" not found`. */
struct ctl_kind;
void ctl_print_refusal_for(const cJSON *resp, const struct ctl_kind *k, const char *name);
/* Reason of a refused response ("NotFound"), or "". */
const char *ctl_reason(const cJSON *resp);

/* One line per entry of resp.results: kubectl's "service/web created", or
 * with `quoted` (delete) "service \"web\" deleted". */
void ctl_print_results(const cJSON *resp, bool quoted);

/* A manifest source for apply and delete -f. */
struct ctl_source {
	const char *name; /* as given, "<stdin>" for "-" */
	char *text;
	size_t len;
};
/* Read every path; "-" is stdin (once).  Prints the error; CTL_OK or CTL_ERROR. */
int ctl_read_sources(char **paths, size_t n, struct ctl_source *out);
void ctl_free_sources(struct ctl_source *s, size_t n);

/* Output formats of get, list and status. */
enum ctl_output { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML, OUT_NAME };
/* Parse -o; `allowed` is a mask of 1 << OUT_*.  Returns 0 or -1. */
int ctl_parse_output(const char *s, unsigned allowed, enum ctl_output *out);
/* Print a value as kubectl does for -o json (4-space indent) or -o yaml;
 * `yaml_sep` puts "---" before a YAML document (watch streams). */
int ctl_print_value(const cJSON *j, enum ctl_output out, bool yaml_sep);

#endif
