/* libFuzzer target: varinject's VmConfig JSON scanner (inject/json.c,
 * vi_vm_config), which merges the OEM strings into the user's
 * --vm-config file for cloud-hypervisor's vm.create. The input is the
 * file's bytes, taken as they are; nothing is written anywhere.
 *
 * Besides the sanitizers, for every input the scanner accepts:
 *   - the input holds no NUL byte (never valid JSON; the scanner once
 *     took one for an escape, a \u digit or part of a number);
 *   - the body and its --dry-run twin are accepted again, and merging
 *     nothing into the body gives the body back byte for byte (the file's
 *     members are copied verbatim, platform and oem_strings go last), so
 *     what cloud-hypervisor receives is something the scanner itself
 *     calls a VmConfig;
 *   - the body ends with our strings, escaped for JSON.
 * Run with scripts/fuzz.sh, seeded with fuzz/corpus/vmconfig/. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "base/secmem.h"
#include "varinject.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* stderr as it was at start: refusals are printed on stderr, which the
 * fuzzer is run without (-close_fd_mask=2), but a failed check must show. */
static int report_fd = 2;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			dprintf(report_fd, "fuzz_vmconfig: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* Two OEM strings, the second with every byte class json_string escapes. */
static const char oem0[] = "io.systemd.credential:A=plain";
static const char oem1[] = "io.systemd.credential.binary:B=\"\\\x01\x1f\x7f\xff,]}";
/* Their JSON form, then the ends of oem_strings, platform and the body. */
static const char tail[] = "\"io.systemd.credential:A=plain\","
			   "\"io.systemd.credential.binary:B=\\\"\\\\\\u0001\\u001f\\u007f\xff,]}\""
			   "]}}";

static struct vf_value strings[2];
static char *shown[2] = {"io.systemd.credential:A=<secret: 5 bytes>",
			 "io.systemd.credential.binary:B=<secret: 8 bytes>"};

static bool merge(const uint8_t *text, size_t len, size_t n, struct vf_value *body,
		  char **shown_body)
{
	*body = (struct vf_value){0};
	*shown_body = NULL;
	return vi_vm_config("fuzz", text, len, strings, shown, n, body, shown_body) == 0;
}

/* A body with more than MAX_MEMBERS (256, json.c) members in the top
 * object or in platform is refused when scanned again: that happens only
 * when the input had 256 members there and no platform (or no
 * oem_strings), which takes at least 255 commas. */
static bool could_overflow(const uint8_t *data, size_t size)
{
	size_t commas = 0;
	for (size_t i = 0; i < size; i++)
		commas += data[i] == ',';
	return commas >= 255;
}

static void check_fixed_point(const uint8_t *data, size_t size, const struct vf_value *body)
{
	struct vf_value again;
	char *shown_again;
	if (!merge(body->data, body->len, 0, &again, &shown_again)) {
		CHECK(could_overflow(data, size));
		return;
	}
	CHECK(again.len == body->len && !memcmp(again.data, body->data, body->len));
	vf_value_free(&again);
	free(shown_again);
}

static void check_shown(const uint8_t *data, size_t size, const char *shown_body)
{
	struct vf_value again;
	char *shown_again;
	if (!merge((const uint8_t *)shown_body, strlen(shown_body), 0, &again, &shown_again)) {
		CHECK(could_overflow(data, size));
		return;
	}
	CHECK(!strcmp(shown_again, shown_body));
	vf_value_free(&again);
	free(shown_again);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	int fd = dup(2);
	if (fd >= 0)
		report_fd = fd;
	if (sodium_init() < 0 ||
	    vf_value_set(&strings[0], oem0, sizeof(oem0) - 1, NULL) != VF_OK ||
	    vf_value_set(&strings[1], oem1, sizeof(oem1) - 1, NULL) != VF_OK)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vf_value body;
	char *shown_body;
	if (!merge(data, size, 2, &body, &shown_body))
		return 0;
	CHECK(!memchr(data, '\0', size));
	CHECK(!memchr(body.data, '\0', body.len));
	CHECK(body.len >= sizeof(tail) - 1 &&
	      !memcmp(body.data + body.len - (sizeof(tail) - 1), tail, sizeof(tail) - 1));
	check_fixed_point(data, size, &body);
	check_shown(data, size, shown_body);
	vf_value_free(&body);
	free(shown_body);
	return 0;
}
