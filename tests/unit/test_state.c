// SPDX-License-Identifier: MIT
/* The desired state end to end in one process: apply is all-or-nothing,
 * allocations survive a reload, files on disk are validated on load. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "unit.h"

static char dir[64];

static void open_state(struct svc_state *st, const char *cidr)
{
	struct state_config cfg = {
	    .state_dir = dir, .service_cidr = cidr, .node_port_lo = 30000, .node_port_hi = 32767};
	struct svc_err e = {0};

	CHECK(state_open(st, &cfg, &e) == 0);
	CHECK(state_load(st, &e) == 0);
}

static int count_files(void)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/objects", dir);
	if (!(d = opendir(path)))
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static int apply(struct svc_state *st, const char *text, struct svc_err *e, const char **action)
{
	struct state_results res;
	struct svc_warn w = {0};
	static char last[32];
	int r = state_apply(st, "t.yaml", text, strlen(text), &res, &w, e);

	if (!r && res.n && action) {
		snprintf(last, sizeof(last), "%s", res.v[0].action);
		*action = last;
	}
	state_results_free(&res);
	svc_warn_free(&w);
	return r;
}

static const char *cluster_ip(struct svc_state *st, const char *name, char buf[static 46])
{
	struct svc_obj *o = model_get(st->model, KIND_SERVICE, "default", name);
	return o ? addr_fmt(&o->u.svc->cluster_ip, buf) : "(missing)";
}

#define SVC(name, port)                                                                            \
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: " name                                  \
	"\nspec:\n  ports:\n  - port: " port "\n"

static void test_all_or_nothing(void)
{
	struct svc_state st;
	struct svc_err e = {0};

	open_state(&st, "10.96.0.0/16");
	CHECK(apply(&st, SVC("good", "80") "---\n" SVC("bad", "70000"), &e, NULL) == -EINVAL);
	CHECK_STR(e.msg, "t.yaml: document 2 (Service default/bad): spec.ports[0].port: must be "
			 "1-65535, got 70000");
	CHECK(model_count(st.model, KIND_SERVICE) == 0);
	CHECK(count_files() == 0);
	CHECK(st.alloc.ips.used == 2); /* nothing taken but network and broadcast */
	CHECK(apply(&st, "a: [", &e, NULL) < 0);
	CHECK_HAS(e.msg, "t.yaml: line ");
	state_close(&st);
}

static void test_restart_keeps_allocations(void)
{
	struct svc_state st;
	struct svc_err e = {0};
	const char *action = NULL;
	char ip1[46], ip2[46], b[46];
	struct svc_obj *o;
	uint16_t np;

	open_state(&st, "10.96.0.0/16");
	CHECK(apply(&st, SVC("one", "80") "---\n" SVC("two", "81") "  type: NodePort\n", &e,
		    &action) == 0);
	CHECK_STR(action, "created");
	snprintf(ip1, sizeof(ip1), "%s", cluster_ip(&st, "one", b));
	snprintf(ip2, sizeof(ip2), "%s", cluster_ip(&st, "two", b));
	o = model_get(st.model, KIND_SERVICE, "default", "two");
	np = o ? o->u.svc->ports[0].node_port : 0;
	CHECK(np >= 30000);
	CHECK(apply(&st, SVC("one", "80"), &e, &action) == 0);
	CHECK_STR(action, "unchanged");
	CHECK(apply(&st, SVC("one", "8080"), &e, &action) == 0);
	CHECK_STR(action, "configured");
	CHECK_STR(cluster_ip(&st, "one", b), ip1);
	state_close(&st);

	open_state(&st, "10.96.0.0/16");
	CHECK(model_count(st.model, KIND_SERVICE) == 2);
	CHECK_STR(cluster_ip(&st, "one", b), ip1);
	CHECK_STR(cluster_ip(&st, "two", b), ip2);
	o = model_get(st.model, KIND_SERVICE, "default", "two");
	CHECK(o && o->u.svc->ports[0].node_port == np);
	CHECK(o && o->generation == 1);
	/* A new service does not get an address the reloaded ones hold. */
	CHECK(apply(&st, SVC("three", "80"), &e, NULL) == 0);
	CHECK(strcmp(cluster_ip(&st, "three", b), ip1) && strcmp(cluster_ip(&st, "three", b), ip2));
	/* The ClusterIP is immutable. */
	CHECK(apply(&st, SVC("one", "80") "  clusterIP: 10.96.9.9\n", &e, NULL) == -EINVAL);
	CHECK_HAS(e.msg, "spec.clusterIP: field is immutable");
	state_results_free(&(struct state_results){0});
	struct state_results res;
	CHECK(state_delete(&st, KIND_SERVICE, "default", "three", &res, &e) == 0);
	state_results_free(&res);
	CHECK(state_delete(&st, KIND_SERVICE, "default", "three", &res, &e) == -ENOENT);
	CHECK_STR(e.msg, "services \"three\" not found");
	state_close(&st);
}

static void test_bad_files_skipped(void)
{
	struct svc_state st;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/objects/broken.json", dir);
	f = fopen(path, "w");
	fputs("{\"apiVersion\": \"v1\", \"kind\": \"Service\",", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/objects/dup.yaml", dir);
	f = fopen(path, "w");
	fputs(SVC("one", "80"), f);
	fclose(f);
	open_state(&st, "10.96.0.0/16");
	CHECK(model_count(st.model, KIND_SERVICE) == 2);
	CHECK(st.bad_files.n == 2);
	CHECK(smap_get(&st.bad_files, "broken.json") != NULL);
	CHECK_HAS(smap_get(&st.bad_files, "dup.yaml"), "already defined by");
	state_close(&st);
	CHECK(access(path, F_OK) == 0); /* never deleted */
}

static void test_exhaustion_message(void)
{
	struct svc_state st;
	struct svc_err e = {0};

	open_state(&st, "10.96.0.0/30");
	CHECK(apply(&st, SVC("a", "80") "---\n" SVC("b", "80") "---\n" SVC("c", "80"), &e, NULL) ==
	      -ENOSPC);
	CHECK_HAS(e.msg, "document 3 (Service default/c): spec.clusterIP: no free address in the "
			 "service CIDR 10.96.0.0/30");
	CHECK(model_count(st.model, KIND_SERVICE) == 0);
	state_close(&st);
}

static void test_write_failure_is_atomic(void)
{
	struct svc_state st;
	struct svc_err e = {0};
	struct rlimit old, small = {.rlim_cur = 300, .rlim_max = RLIM_INFINITY};
	char big[2048];
	int before;
	size_t nsvc, used;

	open_state(&st, "10.96.0.0/16");
	CHECK(apply(&st, SVC("keep", "80"), &e, NULL) == 0);
	before = count_files();
	nsvc = model_count(st.model, KIND_SERVICE);
	used = st.alloc.ips.used;
	/* The second object cannot be written: neither may land. */
	snprintf(
	    big, sizeof(big),
	    SVC("new1", "80") "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: new2\n"
			      "  annotations:\n    x: '%0900d'\nspec:\n  ports:\n  - port: 80\n",
	    0);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	small.rlim_max = old.rlim_max;
	setrlimit(RLIMIT_FSIZE, &small);
	CHECK(apply(&st, big, &e, NULL) < 0);
	setrlimit(RLIMIT_FSIZE, &old);
	CHECK_HAS(e.msg, "writing");
	CHECK(count_files() == before);
	CHECK(model_count(st.model, KIND_SERVICE) == nsvc);
	CHECK(st.alloc.ips.used == used);
	state_close(&st);
}

static void touched(void *ctx, struct svc_obj *svc)
{
	(*(int *)ctx)++;
	(void)svc;
}

static void run_pod(struct svc_state *st, const char *name, const char *ip, int *n)
{
	struct svc_obj *p = model_get(st->model, KIND_POD, "default", name);

	CHECK(p != NULL);
	if (!p)
		return;
	p->u.pod->phase = POD_RUNNING;
	p->u.pod->ready = true;
	addr_parse(ip, &p->u.pod->ip);
	endpoints_source_changed(st, p, touched, n);
}

#define POD(name, app, port)                                                                       \
	"apiVersion: v1\nkind: Pod\nmetadata:\n  name: " name "\n  labels:\n    app: " app         \
	"\nspec:\n  containers:\n  - name: c\n    image: x\n    ports:\n    - name: web\n"         \
	"      containerPort: " port "\n"

static void test_endpoints_controller(void)
{
	struct svc_state st;
	struct svc_err e = {0};
	struct svc_obj *svc;
	char ip[46];
	int n = 0;

	open_state(&st, "10.96.0.0/16");
	CHECK(apply(&st,
		    "apiVersion: v1\nkind: Service\nmetadata:\n  name: sel\nspec:\n  selector:\n"
		    "    app: a\n  ports:\n  - name: http\n    port: 80\n    targetPort: web\n"
		    "  - name: raw\n    port: 81\n    targetPort: 9000\n---\n" POD(
			"p1", "a", "8080") "---\n" POD("p2", "a", "8081") "---\n" POD("other", "b",
										      "8082"),
		    &e, NULL) == 0);
	svc = model_get(st.model, KIND_SERVICE, "default", "sel");
	CHECK(svc && svc->u.svc->ready_addrs == 0); /* pods exist but do not run */
	run_pod(&st, "p1", "10.244.0.5", &n);
	run_pod(&st, "p2", "10.244.0.6", &n);
	run_pod(&st, "other", "10.244.0.7", &n);
	CHECK(n == 2); /* "other" does not match the selector */
	if (svc && svc->u.svc->targets) {
		const struct svc_port_targets *web = &svc->u.svc->targets[0],
					      *raw = &svc->u.svc->targets[1];
		CHECK(svc->u.svc->ready_addrs == 2);
		CHECK(web->n == 2 && raw->n == 2);
		if (web->n == 2 && raw->n == 2) {
			/* The named targetPort resolves per pod; the number is used as is. */
			CHECK((web->v[0].port == 8080 && web->v[1].port == 8081) ||
			      (web->v[0].port == 8081 && web->v[1].port == 8080));
			CHECK(raw->v[0].port == 9000 && raw->v[1].port == 9000);
			CHECK_STR(addr_fmt(&raw->v[0].addr, ip),
				  web->v[0].port == 8080 ? "10.244.0.5" : "10.244.0.6");
		}
	}
	/* A selector-less service takes its endpoints from an Endpoints object. */
	CHECK(
	    apply(&st,
		  "apiVersion: v1\nkind: Service\nmetadata:\n  name: manual\nspec:\n  ports:\n"
		  "  - port: 80\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: manual\n"
		  "subsets:\n- addresses:\n  - ip: 192.0.2.1\n  notReadyAddresses:\n  - ip: "
		  "192.0.2.2\n"
		  "  ports:\n  - port: 8443\n",
		  &e, NULL) == 0);
	svc = model_get(st.model, KIND_SERVICE, "default", "manual");
	CHECK(svc && svc->u.svc->targets && svc->u.svc->targets[0].n == 2);
	CHECK(svc && svc->u.svc->ready_addrs == 1);
	if (svc && svc->u.svc->targets && svc->u.svc->targets[0].n)
		CHECK(svc->u.svc->targets[0].v[0].port == 8443);
	/* Deleting the Endpoints object empties the service. */
	struct state_results res;
	CHECK(state_delete(&st, KIND_ENDPOINTS, "default", "manual", &res, &e) == 0);
	state_results_free(&res);
	CHECK(svc && svc->u.svc->targets && svc->u.svc->targets[0].n == 0);
	cJSON *synth = endpoints_synthesize(model_get(st.model, KIND_SERVICE, "default", "sel"));
	char *text = cJSON_PrintUnformatted(synth);
	CHECK_HAS(text, "\"ip\":\"10.244.0.5\"");
	CHECK_HAS(text, "\"name\":\"http\",\"port\":808");
	free(text);
	cJSON_Delete(synth);
	state_close(&st);
}

/* A crash after the journal was written but before every rename: the next
 * start finishes the change, so an apply is all or nothing across crashes. */
static void test_journal_replay(void)
{
	static const char obj[] =
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
	    "\"late\"},\"spec\":{\"clusterIP\":\"10.96.7.7\",\"ports\":[{\"port\":80}]}}";
	static const char journal[] =
	    "R\0.tmp-1-service.default.late.json\0service.default.late.json\0"
	    "U\0service.default.gone.json\0";
	struct svc_state st;
	char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/objects", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/objects/.tmp-1-service.default.late.json", dir);
	f = fopen(path, "w");
	fputs(obj, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/objects/service.default.gone.json", dir);
	f = fopen(path, "w");
	fputs(SVC("gone", "80"), f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/objects/.journal", dir);
	f = fopen(path, "w");
	fwrite(journal, 1, sizeof(journal) - 1, f);
	fclose(f);
	open_state(&st, "10.96.0.0/16");
	CHECK(model_get(st.model, KIND_SERVICE, "default", "late") != NULL);
	CHECK(model_get(st.model, KIND_SERVICE, "default", "gone") == NULL);
	CHECK(access(path, F_OK) != 0); /* the journal is done with */
	state_close(&st);
}

#define EXT(name, port) SVC(name, port) "  externalIPs: [192.0.2.50]\n"

/* One external address and port, one service: a second is refused. */
static void test_external_conflict(void)
{
	struct svc_state st;
	struct svc_err e = {0};
	struct state_results res;

	open_state(&st, "10.96.0.0/16");
	CHECK(apply(&st, EXT("a", "80"), &e, NULL) == 0);
	CHECK(apply(&st, EXT("b", "80"), &e, NULL) == -EEXIST);
	CHECK_HAS(e.msg, "document 1 (Service default/b): spec.externalIPs: 192.0.2.50/TCP/80 is "
			 "already served by Service/default/a");
	CHECK(apply(&st, EXT("b", "81"), &e, NULL) == 0); /* another port is fine */
	CHECK(apply(&st, EXT("a", "80"), &e, NULL) == 0); /* re-applying the owner is fine */
	/* Within one apply too. */
	CHECK(apply(&st, EXT("c", "82") "---\n" EXT("d", "82"), &e, NULL) == -EEXIST);
	CHECK_HAS(e.msg, "already served by Service/default/c");
	CHECK(state_delete(&st, KIND_SERVICE, "default", "a", &res, &e) == 0);
	state_results_free(&res);
	CHECK(apply(&st, EXT("b", "80"), &e, NULL) == 0); /* free once a is gone */
	state_close(&st);
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	dir[0] = '\0';
}

static int fresh_dir(void)
{
	remove_dir();
	snprintf(dir, sizeof(dir), "/tmp/svcd-unit-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

/* addr_fmt formats IPv4 by hand: it must agree with inet_ntop, for every
 * octet value in every position. */
static void test_addr_fmt_v4(void)
{
	char ours[SVC_ADDR_STRLEN], libc[INET_ADDRSTRLEN];
	struct svc_addr a = {.family = AF_INET};
	int bad = 0;

	for (unsigned v = 0; v < 256; v++) {
		for (int pos = 0; pos < 4; pos++) {
			memset(a.a, pos == 0 ? 7 : 200, 4);
			a.a[pos] = (uint8_t)v;
			inet_ntop(AF_INET, a.a, libc, sizeof(libc));
			if (strcmp(addr_fmt(&a, ours), libc) && bad++ < 3)
				CHECK_STR(ours, libc);
		}
	}
	CHECK(bad == 0);
}

int main(void)
{
	atexit(remove_dir);
	test_addr_fmt_v4();
	if (fresh_dir())
		return 1;
	test_all_or_nothing();
	test_restart_keeps_allocations();
	test_bad_files_skipped();
	test_write_failure_is_atomic();
	if (fresh_dir())
		return 1;
	test_exhaustion_message();
	if (fresh_dir())
		return 1;
	test_endpoints_controller();
	if (fresh_dir())
		return 1;
	test_journal_replay();
	if (fresh_dir())
		return 1;
	test_external_conflict();
	return UNIT_DONE("state");
}
