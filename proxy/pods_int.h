/* SPDX-License-Identifier: MIT */
/* The pod runtime's private structures, shared by pods.c (pod lifecycle,
 * status, crash recovery) and pods_ctr.c (containers through svcrun). */
#ifndef SVCD_PODS_INT_H
#define SVCD_PODS_INT_H
#include <ev.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "model.h"
#include "pods.h"
#include "smap.h"
#include "util.h"

struct podnet;
struct ipam;

#define POD_EVENTS 16

struct pod_event {
	time_t first, last;
	int count;
	bool warning;
	char reason[32];
	char msg[256];
};

enum ctr_state { CS_WAITING, CS_RUNNING, CS_TERMINATED };

/* One terminated run, for status.containerStatuses[].lastState. */
struct ctr_run {
	bool set;
	char reason[32]; /* Completed, Error, StartError */
	char msg[256];
	int exit_code, signal;
	double started, finished; /* unix time */
};

struct ctr_rt {
	struct pod_rt *pod;
	char *name;
	enum ctr_state state;
	char reason[32]; /* waiting: ContainerCreating, CrashLoopBackOff... */
	char msg[512];
	double started;	    /* running since (unix time) */
	struct ctr_run cur; /* terminated state while CS_TERMINATED */
	struct ctr_run last;
	int restarts;
	bool done;	/* will not run again (restartPolicy, deletion) */
	double backoff; /* the next restart's delay */
	char start_error[512];
	/* the launcher: the shim's pid (svcrun), the container's init */
	pid_t shim, init;
	unsigned long long shim_start;
	int sync_fd, pidfd;
	ev_io sync_io, pid_io;
	struct sbuf sync_buf;
	ev_timer restart_timer, kill_timer;
};

struct pod_rt {
	struct svc_pods *pods;
	int refs;
	char uid[37];
	char *key, *ns, *name;
	char id[48];	    /* "svcd-<uid>": network namespace and IPAM owner */
	char dir[PATH_MAX]; /* <state>/pods/<uid> */
	int64_t generation; /* of the spec the containers run */
	struct in_addr ip;
	bool has_ip, net_up;
	bool deleting, respec, gone;
	time_t start_time;
	struct ctr_rt *c;
	uint32_t nc;
	char reason[32];
	char msg[512];
	struct pod_event ev[POD_EVENTS];
	int nev;
	ev_timer retry; /* network or image not ready: try again */
};

struct svc_pods {
	struct ev_loop *loop;
	struct svc_state *st;
	struct pods_config cfg;
	char svcrun[PATH_MAX];
	char images[PATH_MAX], podsdir[PATH_MAX];
	struct in_addr pod_net, cluster_net;
	int pod_prefix, cluster_prefix;
	struct podnet *net;
	struct ipam *ipam;
	struct smap by_uid; /* uid (owned by the pod_rt) -> pod_rt */
	bool closing;
};

void pod_ref(struct pod_rt *p);
void pod_unref(struct pod_rt *p);
void pod_event(struct pod_rt *p, bool warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Recompute phase and container statuses and publish them. */
void pod_publish(struct pod_rt *p);
/* A container has ended for good or the pod is going away: see whether the
 * pod has nothing left running and finish its deletion or re-spec. */
void pod_check_stopped(struct pod_rt *p);
/* The pod's object in the model, or NULL once deleted. */
struct svc_obj *pod_obj(struct pod_rt *p);

/* pods_ctr.c */
int ctr_start(struct ctr_rt *c);
void ctr_stop(struct ctr_rt *c, double grace);
bool ctr_alive(const struct ctr_rt *c);
void ctr_adopt(struct ctr_rt *c);
void ctr_init(struct ctr_rt *c, struct pod_rt *p, const char *name);
void ctr_free(struct ctr_rt *c);
int ctr_save(struct ctr_rt *c);
void ctr_load(struct ctr_rt *c);
/* Kill whatever a launcher state file names (orphan clean-up). */
void ctr_kill_state_file(const char *path);
const char *ctr_dir(const struct ctr_rt *c, char *buf, size_t n);
#endif
