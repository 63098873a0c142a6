/* What each hypervisor is given: QEMU -smbios/-fw_cfg files, and
 * cloud-hypervisor's --platform oem_strings on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secmem.h"
#include "varinject.h"

/* systemd imports at most 1 MiB of credentials in all. */
static int check_total(const struct vi_creds *c)
{
	size_t total = 0;
	for (size_t i = 0; i < c->n; i++)
		total += c->items[i].value.len;
	if (total > VF_CREDENTIAL_MAX)
		return vi_error("credentials take %zu bytes together, above systemd's 1 MiB for all "
				"imported credentials",
				total);
	return 0;
}

int vi_build_strings(struct vi_launch *l, enum vf_transport t, struct vi_strings *out)
{
	size_t total = l->static_strings->n + l->creds->n;
	out->items = calloc(total + 1, sizeof(*out->items));
	out->shown = calloc(total + 1, sizeof(*out->shown));
	out->n = 0;
	if (!out->items || !out->shown)
		return vi_error("out of memory");
	struct vf_error err;
	for (size_t i = 0; i < l->static_strings->n; i++, out->n++) {
		const char *s = l->static_strings->items[i];
		if (vf_value_set(&out->items[out->n], s, strlen(s), &err) != VF_OK)
			return vi_fail(&err);
		if (!(out->shown[out->n] = strdup(s)))
			return vi_error("out of memory");
	}
	for (size_t i = 0; i < l->creds->n; i++, out->n++) {
		const struct vi_cred *c = &l->creds->items[i];
		bool binary;
		if (vf_oem_encode(c->name, &c->value, t, &vi_arena, &out->items[out->n], &binary,
				  &err) != VF_OK)
			return vi_fail(&err);
		char placeholder[64], shown[512];
		vi_secret_placeholder(c->value.len, placeholder, sizeof(placeholder));
		snprintf(shown, sizeof(shown), "%s%s=%s",
			 binary ? VF_OEM_BINARY_PREFIX : VF_OEM_PREFIX, c->name, placeholder);
		if (!(out->shown[out->n] = strdup(shown)))
			return vi_error("out of memory");
	}
	if (vf_oem_check_limits(out->items, out->n, &err) != VF_OK)
		return vi_fail(&err);
	return check_total(l->creds);
}

void vi_strings_free(struct vi_strings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		vf_value_free(&s->items[i]);
		free(s->shown[i]);
	}
	free(s->items);
	free(s->shown);
	memset(s, 0, sizeof(*s));
}

/* QEMU's option syntax doubles commas inside a value. */
static int qemu_option(struct vi_argv *argv, const char *flag, const char *fmt_prefix,
		       const char *path)
{
	char value[8192];
	size_t o = (size_t)snprintf(value, sizeof(value), "%s", fmt_prefix);
	for (const char *p = path; *p && o + 3 < sizeof(value); p++) {
		value[o++] = *p;
		if (*p == ',')
			value[o++] = ',';
	}
	value[o] = '\0';
	int status = vi_argv_add(argv, flag, NULL);
	return status ? status : vi_argv_add(argv, value, NULL);
}

static void show_file(const struct vi_launch *l, const char *path, const char *shown)
{
	if (l->dry_run)
		printf("file: %s (0400): %s\n", path, shown);
}

static int qemu_fw_cfg(struct vi_launch *l, struct vi_argv *argv)
{
	for (size_t i = 0; i < l->creds->n; i++) {
		const struct vi_cred *c = &l->creds->items[i];
		const char *why;
		if (!vf_credential_name_valid(c->name, &why))
			return vi_error("credential name '%s': %s", c->name, why);
		if (strlen(c->name) > VF_FWCFG_NAME_MAX)
			return vi_error("credential name '%s' is %zu characters: fw_cfg names allow "
					"%d after '" VF_FWCFG_PREFIX "'",
					c->name, strlen(c->name), VF_FWCFG_NAME_MAX);
		if (c->value.len > VF_CREDENTIAL_MAX)
			return vi_error("credential %s: above systemd's 1 MiB", c->name);
		char file[32], prefix[128];
		const char *path;
		snprintf(file, sizeof(file), "fwcfg-%zu", i);
		int status = vi_runtime_write(l->rt, file, c->value.data, c->value.len, &path,
					      l->dry_run);
		if (status)
			return status;
		char placeholder[64];
		vi_secret_placeholder(c->value.len, placeholder, sizeof(placeholder));
		show_file(l, path, placeholder);
		snprintf(prefix, sizeof(prefix), "name=" VF_FWCFG_PREFIX "%s,file=", c->name);
		if ((status = qemu_option(argv, "-fw_cfg", prefix, path)))
			return status;
	}
	return check_total(l->creds);
}

int vi_qemu_args(struct vi_launch *l, struct vi_argv *argv)
{
	struct vi_strings strings = {0};
	/* In fw_cfg mode only the static strings go through SMBIOS. */
	struct vi_creds none = {0}, *creds = l->creds;
	if (l->fw_cfg)
		l->creds = &none;
	int status = vi_build_strings(l, VF_TRANSPORT_QEMU_SMBIOS, &strings);
	l->creds = creds;
	for (size_t i = 0; !status && i < strings.n; i++) {
		char file[32];
		const char *path;
		snprintf(file, sizeof(file), "smbios-%zu", i);
		status = vi_runtime_write(l->rt, file, strings.items[i].data, strings.items[i].len,
					  &path, l->dry_run);
		if (!status) {
			show_file(l, path, strings.shown[i]);
			status = qemu_option(argv, "-smbios", "type=11,path=", path);
		}
	}
	vi_strings_free(&strings);
	if (!status && l->fw_cfg)
		status = qemu_fw_cfg(l, argv);
	return status;
}

/* A name must survive cloud-hypervisor's option grammar too. */
static bool plain_for_argv(const char *s)
{
	return vf_oem_text_safe((const uint8_t *)s, strlen(s), VF_TRANSPORT_CH_ARGV);
}

int vi_ch_argv_args(struct vi_launch *l, struct vi_argv *argv)
{
	for (size_t i = 0; i < l->static_strings->n; i++)
		if (!plain_for_argv(l->static_strings->items[i]))
			return vi_error("--oem-string '%s' cannot pass cloud-hypervisor's option "
					"grammar unchanged (no spaces, ',', '\"', '[', ']'): use API "
					"mode",
					l->static_strings->items[i]);
	for (size_t i = 0; i < l->creds->n; i++)
		if (!plain_for_argv(l->creds->items[i].name))
			return vi_error("credential name '%s' cannot pass cloud-hypervisor's option "
					"grammar unchanged: use API mode",
					l->creds->items[i].name);
	struct vi_strings strings = {0};
	int status = vi_build_strings(l, VF_TRANSPORT_CH_ARGV, &strings);
	size_t cap = 32;
	for (size_t i = 0; i < strings.n; i++)
		cap += strings.items[i].len + strlen(strings.shown[i]) + 2;
	char *arg = status ? NULL : vf_secure_alloc(cap);
	char *shown = status ? NULL : malloc(cap);
	if (!status && (!arg || !shown))
		status = vi_error("out of memory");
	if (!status) {
		size_t a = (size_t)snprintf(arg, cap, "oem_strings=[");
		size_t s = (size_t)snprintf(shown, cap, "oem_strings=[");
		for (size_t i = 0; i < strings.n; i++) {
			a += (size_t)snprintf(arg + a, cap - a, "%s%s", i ? "," : "",
					      (const char *)strings.items[i].data);
			s += (size_t)snprintf(shown + s, cap - s, "%s%s", i ? "," : "",
					      strings.shown[i]);
		}
		snprintf(arg + a, cap - a, "]");
		snprintf(shown + s, cap - s, "]");
		status = vi_argv_add(argv, "--platform", NULL);
		if (!status)
			status = vi_argv_add(argv, arg, shown);
		if (!status && !l->dry_run)
			vi_warn("--argv: the credentials are visible in the process table "
				"(/proc/PID/cmdline) while the VM runs; API mode keeps them off "
				"every command line");
	}
	if (arg)
		vf_secure_free(arg);
	free(shown);
	vi_strings_free(&strings);
	return status;
}
