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

/* Static strings first (they identify the environment), then one per
 * credential, encoded for the transport. secret[i] marks credentials. */
static int build_strings(struct vi_launch *l, enum vf_transport t, struct vf_value **out,
			 bool **secret, size_t *n)
{
	size_t total = l->static_strings->n + l->creds->n;
	*out = calloc(total + 1, sizeof(**out));
	*secret = calloc(total + 1, sizeof(**secret));
	*n = 0;
	if (!*out || !*secret)
		return vi_error("out of memory");
	struct vf_error err;
	for (size_t i = 0; i < l->static_strings->n; i++, (*n)++) {
		const char *s = l->static_strings->items[i];
		if (vf_value_set(&(*out)[*n], s, strlen(s), &err) != VF_OK)
			return vi_fail(&err);
	}
	for (size_t i = 0; i < l->creds->n; i++, (*n)++) {
		bool binary;
		if (vf_oem_encode(l->creds->items[i].name, &l->creds->items[i].value, t, &vi_arena, &(*out)[*n],
				  &binary, &err) != VF_OK)
			return vi_fail(&err);
		(*secret)[*n] = true;
	}
	if (vf_oem_check_limits(*out, *n, &err) != VF_OK)
		return vi_fail(&err);
	return check_total(l->creds);
}

static void free_strings(struct vf_value *s, bool *secret, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		vf_value_free(&s[i]);
	free(s);
	free(secret);
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

static void show_file(const struct vi_launch *l, const char *path, size_t len, bool secret)
{
	if (!l->dry_run)
		return;
	char shown[64];
	vi_secret_placeholder(len, shown, sizeof(shown));
	printf("file: %s (0400) %s\n", path, secret ? shown : "<static OEM string>");
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
		show_file(l, path, c->value.len, true);
		snprintf(prefix, sizeof(prefix), "name=" VF_FWCFG_PREFIX "%s,file=", c->name);
		if ((status = qemu_option(argv, "-fw_cfg", prefix, path)))
			return status;
	}
	return check_total(l->creds);
}

int vi_qemu_args(struct vi_launch *l, struct vi_argv *argv)
{
	struct vf_value *strings = NULL;
	bool *secret = NULL;
	size_t n = 0;
	/* In fw_cfg mode only the static strings go through SMBIOS. */
	struct vi_creds none = {0}, *creds = l->creds;
	if (l->fw_cfg)
		l->creds = &none;
	int status = build_strings(l, VF_TRANSPORT_QEMU_SMBIOS, &strings, &secret, &n);
	l->creds = creds;
	for (size_t i = 0; !status && i < n; i++) {
		char file[32];
		const char *path;
		snprintf(file, sizeof(file), "smbios-%zu", i);
		status = vi_runtime_write(l->rt, file, strings[i].data, strings[i].len, &path,
					  l->dry_run);
		if (!status) {
			show_file(l, path, strings[i].len, secret[i]);
			status = qemu_option(argv, "-smbios", "type=11,path=", path);
		}
	}
	free_strings(strings, secret, n);
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
	struct vf_value *strings = NULL;
	bool *secret = NULL;
	size_t n = 0;
	int status = build_strings(l, VF_TRANSPORT_CH_ARGV, &strings, &secret, &n);
	size_t cap = 32;
	for (size_t i = 0; i < n; i++)
		cap += strings[i].len + 48;
	char *arg = status ? NULL : vf_secure_alloc(cap);
	char *shown = status ? NULL : malloc(cap);
	if (!status && (!arg || !shown))
		status = vi_error("out of memory");
	if (!status) {
		size_t a = (size_t)snprintf(arg, cap, "oem_strings=[");
		size_t s = (size_t)snprintf(shown, cap, "oem_strings=[");
		for (size_t i = 0; i < n; i++) {
			char placeholder[64];
			vi_secret_placeholder(strings[i].len, placeholder, sizeof(placeholder));
			a += (size_t)snprintf(arg + a, cap - a, "%s%s", i ? "," : "",
					      (const char *)strings[i].data);
			s += (size_t)snprintf(shown + s, cap - s, "%s%s", i ? "," : "",
					      secret[i] ? placeholder : (const char *)strings[i].data);
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
	free_strings(strings, secret, n);
	return status;
}
