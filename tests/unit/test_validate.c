// SPDX-License-Identifier: MIT
/* Every validation rule has a failing case here, checked for the field path
 * and the offending value in the message. */
#include <stdlib.h>

#include "model.h"
#include "unit.h"
#include "vutil.h"

#define SVC_HEAD "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\"},"
#define POD_HEAD "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
#define DEP_HEAD                                                                                   \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},"

/* Validate a JSON text; returns the error message or "" on success. */
static const char *check(const char *json, struct svc_obj **keep, struct svc_warn *w)
{
	static struct svc_err e;
	struct svc_warn own = {0};
	struct svc_obj *o = NULL;
	cJSON *doc = cJSON_Parse(json);

	svc_err_clear(&e);
	if (!doc) {
		snprintf(e.msg, sizeof(e.msg), "test bug: bad JSON %s", json);
		return e.msg;
	}
	obj_from_doc(doc, &o, w ? w : &own, &e);
	if (keep)
		*keep = o;
	else
		obj_free(o);
	cJSON_Delete(doc);
	svc_warn_free(&own);
	return e.msg;
}

struct bad {
	const char *json, *want;
};

static const struct bad bad_cases[] = {
    /* envelope */
    {"{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}}", "apiVersion: required"},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"a\"}}",
     "kind: unsupported kind \"Secret\""},
    {"{\"apiVersion\":\"apps/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}}",
     "apiVersion: Service is \"v1\", got \"apps/v1\""},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Service\"}", "metadata: required"},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{}}", "metadata.name: required"},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"Web\"},\"spec\":{"
     "\"ports\":[{\"port\":80}]}}",
     "metadata.name: must be a DNS label"},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"w\",\"namespace\":\"A_"
     "b\"},\"spec\":{\"ports\":[{\"port\":80}]}}",
     "metadata.namespace: must be a DNS label"},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"w\",\"labels\":{\"a\":1}"
     "},\"spec\":{\"ports\":[{\"port\":80}]}}",
     "metadata.labels[\"a\"]: must be a string, got 1"},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"w\",\"labels\":{\"-x\":"
     "\"y\"}},\"spec\":{\"ports\":[{\"port\":80}]}}",
     "metadata.labels[\"-x\"]: invalid key"},
    /* service */
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":70000}]}}",
     "spec.ports[0].port: must be 1-65535, got 70000"},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":\"80\"}]}}",
     "spec.ports[0].port: must be an integer, got \"80\""},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80.5}]}}",
     "spec.ports[0].port: must be an integer, got 80.5"},
    {SVC_HEAD "\"spec\":{\"ports\":[{}]}}", "spec.ports[0].port: required"},
    {SVC_HEAD "\"spec\":{}}", "spec.ports: at least one port is required"},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"protocol\":\"ICMP\"}]}}",
     "spec.ports[0].protocol: must be one of TCP, UDP, or SCTP, got \"ICMP\""},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":0}]}}",
     "spec.ports[0].targetPort: must be 1-65535, got 0"},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":\"Not_A_Name\"}]}}",
     "spec.ports[0].targetPort: must be a port number or a port name"},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":81}]}}",
     "spec.ports[1].name: required"},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":80,\"name\":\"b\"}]}}",
     "spec.ports[1]: duplicate port 80/TCP"},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":81,\"name\":\"a\"}]}}",
     "duplicate port name \"a\""},
    {SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"nodePort\":30001}]}}",
     "spec.ports[0].nodePort: may not be set for type ClusterIP"},
    {SVC_HEAD "\"spec\":{\"type\":\"Magic\",\"ports\":[{\"port\":80}]}}",
     "spec.type: must be one of ClusterIP, NodePort, LoadBalancer, or ExternalName, got \"Magic\""},
    {SVC_HEAD "\"spec\":{\"clusterIP\":\"10.96.0.300\",\"ports\":[{\"port\":80}]}}",
     "spec.clusterIP: must be an IP address, \"None\" or empty, got \"10.96.0.300\""},
    {SVC_HEAD "\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"None\",\"ports\":[{\"port\":80}]}}",
     "spec.clusterIP: may not be None for type NodePort"},
    {SVC_HEAD "\"spec\":{\"clusterIP\":\"10.96.0.5\",\"clusterIPs\":[\"10.96.0.6\"],\"ports\":[{"
	      "\"port\":80}]}}",
     "spec.clusterIPs[0]: must be equal to spec.clusterIP"},
    {SVC_HEAD "\"spec\":{\"sessionAffinity\":\"Cookie\",\"ports\":[{\"port\":80}]}}",
     "spec.sessionAffinity: must be one of None, or ClientIP"},
    {SVC_HEAD "\"spec\":{\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":{"
	      "\"timeoutSeconds\":0}},\"ports\":[{\"port\":80}]}}",
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be 1-86400, got 0"},
    {SVC_HEAD "\"spec\":{\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":5}},\"ports\":"
	      "[{\"port\":80}]}}",
     "spec.sessionAffinityConfig: only allowed with sessionAffinity: ClientIP"},
    {SVC_HEAD "\"spec\":{\"externalIPs\":[\"1.2.3\"],\"ports\":[{\"port\":80}]}}",
     "spec.externalIPs[0]: must be an IP address, got \"1.2.3\""},
    {SVC_HEAD "\"spec\":{\"externalTrafficPolicy\":\"Local\",\"ports\":[{\"port\":80}]}}",
     "spec.externalTrafficPolicy: Local is only allowed for type NodePort or LoadBalancer"},
    {SVC_HEAD "\"spec\":{\"internalTrafficPolicy\":\"Nearby\",\"ports\":[{\"port\":80}]}}",
     "spec.internalTrafficPolicy: must be one of Cluster, or Local"},
    {SVC_HEAD "\"spec\":{\"type\":\"ExternalName\"}}", "spec.externalName: required"},
    {SVC_HEAD "\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"Bad_Name\"}}",
     "spec.externalName: must be a lowercase DNS name"},
    {SVC_HEAD
     "\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"a.b\",\"clusterIP\":\"10.96.0.3\"}}",
     "spec.clusterIP: must be empty for type ExternalName"},
    {SVC_HEAD "\"spec\":{\"selector\":{\"app\":[1]},\"ports\":[{\"port\":80}]}}",
     "spec.selector[\"app\"]: must be a string, got sequence"},
    {SVC_HEAD
     "\"spec\":{\"loadBalancerIP\":\"x\",\"type\":\"LoadBalancer\",\"ports\":[{\"port\":80}]}}",
     "spec.loadBalancerIP: must be an IP address"},
    {SVC_HEAD "\"spec\":{\"ports\":80}}", "spec.ports: must be a sequence, got 80"},
    {SVC_HEAD "\"spec\":[]}", "spec: must be a mapping, got sequence"},
    /* endpoints */
    {"{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"e\"},\"subsets\":[{"
     "\"addresses\":[{\"ip\":\"10.0.0.256\"}],\"ports\":[{\"port\":80}]}]}",
     "subsets[0].addresses[0].ip: must be an IP address, got \"10.0.0.256\""},
    {"{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"e\"},\"subsets\":[{"
     "\"addresses\":[{\"ip\":\"10.0.0.1\"}],\"ports\":[{\"port\":0}]}]}",
     "subsets[0].ports[0].port: must be 1-65535, got 0"},
    {"{\"apiVersion\":\"discovery.k8s.io/"
     "v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"e\"},\"addressType\":\"IPv4\"}",
     "metadata.labels[\"kubernetes.io/service-name\"]: required"},
    {"{\"apiVersion\":\"discovery.k8s.io/"
     "v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"e\",\"labels\":{\"kubernetes.io/"
     "service-name\":\"web\"}},\"addressType\":\"IPv5\"}",
     "addressType: must be one of IPv4, IPv6, or FQDN, got \"IPv5\""},
    {"{\"apiVersion\":\"discovery.k8s.io/"
     "v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"e\",\"labels\":{\"kubernetes.io/"
     "service-name\":\"web\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"x\"]}]}",
     "endpoints[0].addresses[0]: must be an IP address, got \"x\""},
    /* pod */
    {POD_HEAD "\"spec\":{}}", "spec.containers: required"},
    {POD_HEAD "\"spec\":{\"containers\":[]}}",
     "spec.containers: at least one container is required"},
    {POD_HEAD "\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
     "spec.containers[0].image: required"},
    {POD_HEAD "\"spec\":{\"containers\":[{\"name\":\"C!\",\"image\":\"x\"}]}}",
     "spec.containers[0].name: must be a DNS label"},
    {POD_HEAD "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"},{\"name\":\"c\","
	      "\"image\":\"y\"}]}}",
     "spec.containers[1]: duplicate container name \"c\""},
    {POD_HEAD "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"ports\":[{"
	      "\"containerPort\":99999}]}]}}",
     "spec.containers[0].ports[0].containerPort: must be 1-65535, got 99999"},
    {POD_HEAD "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"ports\":[{"
	      "\"containerPort\":80,\"name\":\"way-too-long-port-name\"}]}]}}",
     "spec.containers[0].ports[0].name: must be a port name"},
    {POD_HEAD
     "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"command\":[\"sh\",1]}]}}",
     "spec.containers[0].command[1]: must be a string, got 1"},
    {POD_HEAD
     "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"env\":[{\"value\":\"v\"}]}]}}",
     "spec.containers[0].env[0].name: required"},
    {POD_HEAD "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
	      "{\"memory\":\"lots\"}}}]}}",
     "spec.containers[0].resources.limits.memory: must be a quantity"},
    {POD_HEAD "\"spec\":{\"restartPolicy\":\"Sometimes\",\"containers\":[{\"name\":\"c\",\"image\":"
	      "\"x\"}]}}",
     "spec.restartPolicy: must be one of Always, OnFailure, or Never"},
    /* deployment */
    {DEP_HEAD "\"spec\":{\"replicas\":-1,\"selector\":{\"matchLabels\":{\"a\":\"b\"}}}}",
     "spec.replicas: must be 0-1000000, got -1"},
    {DEP_HEAD "\"spec\":{\"template\":{}}}", "spec.selector: required"},
    {DEP_HEAD "\"spec\":{\"selector\":{\"matchLabels\":{}}}}",
     "spec.selector.matchLabels: at least one label is required"},
    {DEP_HEAD
     "\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{"
     "\"labels\":{\"a\":\"c\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}}}",
     "spec.template.metadata.labels: must include every label of spec.selector.matchLabels"},
    {DEP_HEAD "\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{"
	      "\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\"}]}}}}",
     "spec.template.spec.containers[0].image: required"},
};

static void test_bad_cases(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *msg = check(bad_cases[i].json, NULL, NULL);
		CHECK_HAS(msg, bad_cases[i].want);
	}
}

static void test_service_defaults(void)
{
	struct svc_obj *o;
	const char *msg =
	    check(SVC_HEAD "\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":[{\"name\":\"http\","
			   "\"port\":80,\"targetPort\":\"http\"},{\"name\":\"dns\",\"port\":53,"
			   "\"protocol\":\"UDP\"}]}}",
		  &o, NULL);

	CHECK_STR(msg, "");
	if (!o)
		return;
	CHECK_STR(o->ns, "default");
	CHECK_STR(o->key, "Service/default/web");
	CHECK(o->u.svc->type == SVC_CLUSTER_IP);
	CHECK(o->u.svc->nports == 2);
	CHECK_STR(o->u.svc->ports[0].target_name, "http");
	CHECK(o->u.svc->ports[1].target_port == 53); /* targetPort defaults to port */
	CHECK(o->u.svc->ports[1].proto == 17);
	CHECK(o->u.svc->has_selector);
	CHECK(o->u.svc->affinity_timeout == 10800);
	obj_free(o);
}

static void test_unknown_fields_warn(void)
{
	struct svc_warn w = {0};
	const char *msg = check(
	    SVC_HEAD "\"spec\":{\"portz\":1,\"ports\":[{\"port\":80,\"bogus\":2}]}}", NULL, &w);

	CHECK_STR(msg, "");
	CHECK(w.n == 2);
	if (w.n == 2) {
		CHECK_STR(w.v[0], "unknown field \"spec.portz\"");
		CHECK_STR(w.v[1], "unknown field \"spec.ports[0].bogus\"");
	}
	svc_warn_free(&w);
}

static void test_headless_and_external(void)
{
	struct svc_obj *o;

	CHECK_STR(check(SVC_HEAD "\"spec\":{\"clusterIP\":\"None\",\"selector\":{\"a\":\"b\"}}}",
			&o, NULL),
		  "");
	CHECK(o && o->u.svc->headless);
	obj_free(o);
	CHECK_STR(check(SVC_HEAD
			"\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"example.com\"}}",
			&o, NULL),
		  "");
	CHECK(o && o->u.svc->type == SVC_EXTERNAL_NAME);
	CHECK_STR(o ? o->u.svc->external_name : NULL, "example.com");
	obj_free(o);
}

static void test_endpoints_objects(void)
{
	struct svc_obj *o;

	CHECK_STR(check("{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":"
			"\"web\"},\"subsets\":["
			"{\"addresses\":[{\"ip\":\"10.0.0.1\"},{\"ip\":\"10.0.0.2\"}],"
			"\"notReadyAddresses\":[{\"ip\":\"10.0.0.3\"}],"
			"\"ports\":[{\"port\":8080,\"name\":\"http\"}]}]}",
			&o, NULL),
		  "");
	CHECK(o && o->u.eps->n == 3);
	if (o && o->u.eps->n == 3) {
		CHECK(o->u.eps->v[0].ready && !o->u.eps->v[2].ready);
		CHECK(o->u.eps->v[1].nports == 1 && o->u.eps->v[1].ports[0].port == 8080);
		CHECK_STR(o->u.eps->service, "web");
	}
	obj_free(o);
}

static void test_names(void)
{
	CHECK(is_dns_label("a-b0"));
	CHECK(!is_dns_label("a_b"));
	CHECK(!is_dns_label("-a"));
	CHECK(is_dns_subdomain("a.b-c.d"));
	CHECK(!is_dns_subdomain("a..b"));
	CHECK(!is_dns_subdomain("a."));
	CHECK(is_port_name("http-2"));
	CHECK(!is_port_name("1234"));
	CHECK(!is_port_name("a--b"));
	CHECK(is_quantity("500m"));
	CHECK(is_quantity("1.5Gi"));
	CHECK(is_quantity("1e3"));
	CHECK(!is_quantity("Gi"));
	CHECK(!is_quantity("5 Mi"));
}

int main(void)
{
	test_bad_cases();
	test_service_defaults();
	test_unknown_fields_warn();
	test_headless_and_external();
	test_endpoints_objects();
	test_names();
	return UNIT_DONE("validate");
}
