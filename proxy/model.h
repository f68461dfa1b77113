/* SPDX-License-Identifier: MIT */
/* The object model: Kubernetes-shaped objects held in memory, typed for the
 * data plane and kept as their canonical JSON text for `get`. */
#ifndef SVCD_MODEL_H
#define SVCD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "addr.h"
#include "err.h"
#include "store.h"

enum svc_kind {
	KIND_SERVICE,
	KIND_ENDPOINTS,
	KIND_ENDPOINTSLICE,
	KIND_POD,
	KIND_DEPLOYMENT,
	KIND_COUNT
};

const char *kind_name(enum svc_kind k);		   /* "Service" */
const char *kind_resource(enum svc_kind k);	   /* "services", for messages */
int kind_parse(const char *s, enum svc_kind *out); /* exact manifest spelling */

struct svc_label {
	char *key, *value;
};
struct svc_labels {
	struct svc_label *v;
	uint32_t n;
};
/* Every selector pair is present in labels (an empty selector matches nothing). */
bool labels_match(const struct svc_labels *selector, const struct svc_labels *labels);

/* A Service annotation: "userspace" sends it through the userspace balancer. */
#define SVC_PROXY_MODE_ANNOTATION "svcd.io/proxy-mode"

enum svc_type { SVC_CLUSTER_IP, SVC_NODE_PORT, SVC_LOAD_BALANCER, SVC_EXTERNAL_NAME };
const char *svc_type_name(enum svc_type t);

struct svc_port {
	char *name;    /* "" when unnamed */
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	uint16_t port;
	uint16_t target_port; /* 0 when target_name is used */
	char *target_name;    /* named targetPort, resolved per endpoint */
	uint16_t node_port;   /* 0 unless NodePort/LoadBalancer */
};

/* One backend of one service port, resolved by the endpoints controller. */
struct svc_target {
	struct svc_addr addr;
	uint16_t port;
	bool ready;
	const char *hostname; /* borrowed from the source object; may be NULL */
	const char *node;     /* nodeName; may be NULL */
};

struct svc_port_targets {
	struct svc_target *v;
	uint32_t n;
};

struct svc_service {
	enum svc_type type;
	bool headless;		    /* clusterIP: None */
	struct svc_addr cluster_ip; /* unset for headless and ExternalName */
	struct svc_port *ports;
	uint32_t nports;
	bool has_selector;
	struct svc_labels selector;
	bool affinity;		   /* sessionAffinity: ClientIP */
	uint32_t affinity_timeout; /* seconds */
	struct svc_addr *external_ips;
	uint32_t n_external_ips;
	struct svc_addr *lb_ips; /* status.loadBalancer.ingress[].ip */
	uint32_t n_lb_ips;
	bool external_local, internal_local; /* traffic policies */
	bool userspace;			     /* annotation SVC_PROXY_MODE_ANNOTATION: "userspace" */
	char *external_name;
	/* Owned by the endpoints controller: one list per entry of ports[]. */
	struct svc_port_targets *targets;
	uint32_t ready_addrs; /* distinct ready endpoint addresses */
};

/* A named port an endpoint offers (container port or Endpoints port). */
struct svc_ep_port {
	char *name;
	uint8_t proto;
	uint16_t port;
};

struct svc_endpoint {
	struct svc_addr addr;
	bool ready;
	char *hostname, *node;
	const struct svc_ep_port *ports; /* borrowed from the set's port lists */
	uint32_t nports;
};

/* Endpoints and EndpointSlice objects both reduce to this.  The addresses
 * of one subset (or slice) share its port list. */
struct svc_epset {
	char *service; /* the service they belong to, same namespace */
	struct svc_endpoint *v;
	uint32_t n;
	struct svc_ep_port **lists;
	uint32_t *list_len, nlists;
};

struct svc_container {
	char *name, *image;
	struct svc_ep_port *ports;
	uint32_t nports;
};

enum pod_phase { POD_PENDING, POD_RUNNING, POD_SUCCEEDED, POD_FAILED, POD_UNKNOWN };
const char *pod_phase_name(enum pod_phase p);

struct svc_pod {
	struct svc_container *containers;
	uint32_t ncontainers;
	char *restart_policy;
	char *node_name;
	/* Runtime status, owned by whoever runs the pod. */
	enum pod_phase phase;
	bool ready;
	struct svc_addr ip;
	char *reason, *message;
	time_t start_time;	   /* when the runtime took the pod on; 0: not yet */
	cJSON *container_statuses; /* status.containerStatuses, Kubernetes' shape */
};

struct svc_deployment {
	int32_t replicas;
	struct svc_labels selector;
};

struct svc_obj {
	enum svc_kind kind;
	char *ns, *name;
	char *key;		 /* "Kind/ns/name", the model's index */
	char *json;		 /* canonical stored form, compact JSON */
	char *path;		 /* file name inside the objects directory */
	struct file_stamp stamp; /* the file as we last wrote or read it */
	char uid[37];
	time_t created;
	int64_t generation; /* bumped when the spec changes */
	uint64_t rv;	    /* resourceVersion: bumped on every change */
	struct svc_labels labels;
	union {
		struct svc_service *svc;
		struct svc_epset *eps;
		struct svc_pod *pod;
		struct svc_deployment *dep;
		void *any;
	} u;
};

void obj_free(struct svc_obj *o);
/* The object as `get` shows it: stored JSON plus status; caller frees. */
cJSON *obj_to_json(const struct svc_obj *o);
/* Its JSON text with the server's metadata (uid, versions...) put back. */
struct sbuf;
int obj_json_text(const struct svc_obj *o, struct sbuf *b);
/* "Kind/ns/name" into buf. */
int obj_key(char *buf, size_t n, enum svc_kind k, const char *ns, const char *name);

/* The set of objects, indexed by key. */
struct svc_model;
struct svc_model *model_new(void);
void model_free(struct svc_model *m);
struct svc_obj *model_get(const struct svc_model *m, enum svc_kind k, const char *ns,
			  const char *name);
struct svc_obj *model_get_key(const struct svc_model *m, const char *key);
/* Insert or replace (the replaced object is returned, not freed). */
int model_put(struct svc_model *m, struct svc_obj *o, struct svc_obj **old);
struct svc_obj *model_del(struct svc_model *m, const char *key);
size_t model_count(const struct svc_model *m, enum svc_kind k);
/* Objects of a kind (optionally one namespace), sorted by namespace then name.
 * Returns a malloc'd array the caller frees (not the objects). */
int model_list(const struct svc_model *m, enum svc_kind k, const char *ns, struct svc_obj ***out,
	       size_t *n);
/* Iterate over all objects of a kind in no particular order. */
struct svc_obj *model_iter(const struct svc_model *m, enum svc_kind k, size_t *cursor);

/* Validation: build a typed object from one manifest document.  Errors name
 * the field path ("spec.ports[0].port: must be 1-65535, got 70000"); unknown
 * fields are warnings.  Defaults are filled in `doc` itself (namespace,
 * protocol, targetPort...), which becomes the stored form. */
int obj_from_doc(cJSON *doc, struct svc_obj **out, struct svc_warn *w, struct svc_err *e);

#endif
