// SPDX-License-Identifier: MIT
/* libFuzzer harness for the manifest reader and the validator behind it:
 * any bytes must give documents or an error, never a crash or a leak, and
 * whatever parses must survive a YAML round trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svc_docs docs = {0};
	struct svc_err e = {0};

	if (manifest_parse("fuzz", (const char *)data, size, &docs, &e))
		return 0;
	for (size_t i = 0; i < docs.n; i++) {
		struct svc_warn w = {0};
		struct svc_obj *o = NULL;
		char *yaml = manifest_yaml_emit(docs.v[i].json, &e);
		struct svc_docs again = {0};

		if (yaml && manifest_parse("again", yaml, strlen(yaml), &again, &e) == 0) {
			if (again.n != 1 || !cJSON_Compare(again.v[0].json, docs.v[i].json, 1))
				abort(); /* emit and parse disagree */
			manifest_docs_free(&again);
		}
		free(yaml);
		obj_from_doc(docs.v[i].json, &o, &w, &e);
		obj_free(o);
		svc_warn_free(&w);
	}
	manifest_docs_free(&docs);
	return 0;
}
