// SPDX-License-Identifier: MIT
#include "kinds.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const struct ctl_kind kinds[] = {
    {"Service", "service", "services", {"service", "services", "svc"}},
    {"Pod", "pod", "pods", {"pod", "pods", "po"}},
    {"Endpoints", "endpoints", "endpoints", {"endpoints", "ep"}},
    {"EndpointSlice",
     "endpointslice.discovery.k8s.io",
     "endpointslices.discovery.k8s.io",
     {"endpointslice", "endpointslices", "endpointslice.discovery.k8s.io",
      "endpointslices.discovery.k8s.io"}},
    {"Deployment",
     "deployment.apps",
     "deployments.apps",
     {"deployment", "deployments", "deploy", "deployment.apps", "deployments.apps", "deploy.apps"}},
};

const struct ctl_kind *ctl_kind_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		for (size_t j = 0; j < ARRAY_SIZE(kinds[i].names) && kinds[i].names[j]; j++)
			if (!strcasecmp(name, kinds[i].names[j]))
				return &kinds[i];
	return NULL;
}

const struct ctl_kind *ctl_kind_find(const char *kind)
{
	for (size_t i = 0; kind && i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kind, kinds[i].kind))
			return &kinds[i];
	return NULL;
}

int ctl_kind_resource(struct sbuf *b, const char *kind)
{
	const struct ctl_kind *k = ctl_kind_find(kind);
	size_t off = b->len;

	if (k)
		return sbuf_adds(b, k->resource);
	if (!kind || !*kind)
		return sbuf_adds(b, "unknown");
	if (sbuf_adds(b, kind))
		return -1;
	for (char *p = b->p + off; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}
