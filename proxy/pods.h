/* SPDX-License-Identifier: MIT */
/* The pod runtime, what a kubelet does on one node: for each Pod object it
 * allocates an address, wires the pod into the node bridge (podnet.h),
 * starts every container through the bundled launcher `svcrun`, restarts
 * them by the pod's restartPolicy with the kubelet's back-off, and reports
 * Kubernetes-shaped status through state_pod_status().
 *
 * Everything it needs to find again after a crash is a file under
 * <state-dir>/pods/<uid>/: `pod` (the pod's key, spec generation and
 * address), `etc/` (hosts, resolv.conf, hostname bound into the
 * containers), `logs/<container>/<restart>.log`, and per container
 * `containers/<name>/` with the launcher's state file (shim pid, container
 * pid, exit status), `status` (restart count, last state) and `scratch/`
 * (the overlay's writable layer).  A restarted svcd adopts the shims still running, learns
 * the exit status of the containers that ended while it was away, and
 * removes whatever belongs to no pod: namespaces, veths, addresses,
 * cgroups and directories. */
#ifndef SVCD_PODS_H
#define SVCD_PODS_H
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct ev_loop;
struct svc_state;
struct svc_err;

struct pods_config {
	const char *state_dir;
	const char *svcrun;	   /* the launcher; NULL: next to this executable */
	const char *bridge;	   /* --bridge, "svcd0" */
	const char *pod_cidr;	   /* --pod-cidr, "10.244.0.0/24" */
	const char *cluster_cidr;  /* --cluster-cidr, "10.244.0.0/16" */
	const char *netns_dir;	   /* --netns-dir, "/run/netns" */
	const char *cgroup_parent; /* --cgroup-parent, "svcd" */
	const char *dns_ip;	   /* nameserver written into each pod's resolv.conf */
	const char *cluster_domain;
	double backoff_initial, backoff_max; /* 10 s doubling to 300 s */
	double backoff_reset;		     /* 600 s of running forgets the back-off */
	size_t log_max;			     /* bytes per log file before rotation */
};

struct svc_pods;

/* Reconcile what the last run left (adopt or remove), then start the pods
 * of the model.  The node's pod network is set up on the first pod. */
int pods_open(struct ev_loop *loop, struct svc_state *st, const struct pods_config *cfg,
	      struct svc_pods **out, struct svc_err *e);
/* Stop watching; containers keep running (a restarted svcd adopts them). */
void pods_close(struct svc_pods *p);
/* An image was imported: pods waiting for one try again. */
void pods_images_changed(struct svc_pods *p);
/* Whether a pod's container uses this (normalised) image reference. */
bool pods_image_in_use(struct svc_pods *p, const char *ref);
/* The log file of a container ("" container: the pod's only one), the
 * current run or the previous one.  -ENOENT with e saying what is missing. */
int pods_log_path(struct svc_pods *p, const char *ns, const char *name, const char *container,
		  bool previous, char *buf, size_t n, struct svc_err *e);
/* The pod's recent events, oldest first, as a JSON array (caller frees);
 * NULL when the runtime does not know the pod. */
cJSON *pods_events(struct svc_pods *p, const char *ns, const char *name);
/* Counters for status. */
void pods_stats(const struct svc_pods *p, size_t *pods, size_t *running);
/* `svcd --cleanup`: remove the pod network's node set-up. */
int pods_cleanup(const struct pods_config *cfg, struct svc_err *e);
#endif
