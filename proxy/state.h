/* SPDX-License-Identifier: MIT */
/* The desired state: the object model, its allocations and its files.
 * Every change goes through here as one transaction (validate everything,
 * allocate, write the files, then publish), and listeners hear about each
 * object that changed once the transaction is durable. */
#ifndef SVCD_STATE_H
#define SVCD_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"
#include "smap.h"
#include "store.h"

/* EV_ENDPOINTS: a service's resolved endpoints changed, not its manifest. */
enum svc_event { EV_ADDED, EV_MODIFIED, EV_DELETED, EV_ENDPOINTS };
const char *event_name(enum svc_event ev); /* "ADDED", ... */

/* `obj` is the new object (the old one for EV_DELETED); valid only during the call. */
typedef void (*state_listener_fn)(void *ctx, enum svc_event ev, const struct svc_obj *obj);

struct state_config {
	const char *state_dir;
	const char *service_cidr;
	uint16_t node_port_lo, node_port_hi;
	const char *reserved_ip; /* kept out of the ClusterIP pool (DNS); may be NULL */
};

/* What one apply or delete did to one object. */
struct state_result {
	enum svc_kind kind;
	char *ns, *name;
	const char *action; /* "created", "configured", "unchanged", "deleted" */
};

struct state_results {
	struct state_result *v;
	size_t n;
	uint64_t generation; /* desired generation after the change */
};
void state_results_free(struct state_results *r);

struct svc_state {
	struct svc_model *model;
	struct svc_alloc alloc;
	struct svc_store *store;
	uint64_t generation; /* bumped once per transaction that changed something */
	uint64_t rv;	     /* last resourceVersion handed out */
	struct {
		state_listener_fn fn;
		void *ctx;
	} listeners[6];
	int nlisteners;
	struct smap paths; /* file name -> object, for the directory watch */
	/* "addr/proto/port" of external IPs -> the service serving it (both owned). */
	struct smap external;
	/* Files in the objects dir we could not load: name -> reason (both owned). */
	struct smap bad_files;
};

int state_open(struct svc_state *st, const struct state_config *cfg, struct svc_err *e);
void state_close(struct svc_state *st);
void state_listen(struct svc_state *st, state_listener_fn fn, void *ctx);

/* Load every object file; files that fail are logged and skipped. */
int state_load(struct svc_state *st, struct svc_err *e);
/* A file in the objects directory changed (name NULL: rescan everything). */
void state_file_event(struct svc_state *st, const char *name);

/* A pod's runtime status changed (phase, IP, readiness, containers): a new
 * resourceVersion, an EV_MODIFIED to listeners (generation unchanged) and
 * the services it feeds recomputed. */
void state_pod_status(struct svc_state *st, struct svc_obj *pod);
/* Apply a manifest (all documents or none). */
int state_apply(struct svc_state *st, const char *source, const char *text, size_t len,
		struct state_results *res, struct svc_warn *w, struct svc_err *e);
/* Delete objects named by key parts, or every object of a manifest. */
int state_delete(struct svc_state *st, enum svc_kind k, const char *ns, const char *name,
		 struct state_results *res, struct svc_err *e);
int state_delete_manifest(struct svc_state *st, const char *source, const char *text, size_t len,
			  bool ignore_missing, struct state_results *res, struct svc_err *e);

/* The endpoints controller: recompute service targets (state_endpoints.c). */
void endpoints_service_changed(struct svc_state *st, struct svc_obj *svc);
/* Any Pod/Endpoints/EndpointSlice change: recompute the services it feeds and
 * return them through the callback. */
void endpoints_source_changed(struct svc_state *st, const struct svc_obj *src,
			      void (*touched)(void *ctx, struct svc_obj *svc), void *ctx);

/* The Endpoints object Kubernetes' controller would write for a service
 * with a selector (svcd keeps it in memory only); caller frees. */
cJSON *endpoints_synthesize(const struct svc_obj *svc);

#endif
