/* What each hypervisor is given: QEMU -smbios/-fw_cfg files, and
 * cloud-hypervisor's --platform oem_strings on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
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

/* flag, then the option string built from pairs {k1, v1, ...}: every
 * value escaped for QemuOpts, so that no name or path can add options. */
static int qemu_option(struct vi_argv *argv, const char *flag, const char *const *kv, size_t pairs,
		       const char *shown)
{
	char *value = vi_qemu_opts(kv, pairs);
	if (!value)
		return vi_error("out of memory");
	int status = vi_argv_add(argv, flag, NULL);
	if (!status)
		status = vi_argv_add(argv, value, shown);
	free(value);
	return status;
}

static void show_file(const struct vi_launch *l, const char *path, const char *shown)
{
	if (l->dry_run)
		printf("file: %s (0400): %s\n", path, shown);
}

/* Before anything is written: QEMU aborts on an assertion when its fw_cfg
 * file slots run out. */
static int check_fw_cfg_room(const struct vi_launch *l, char *const *args, size_t n)
{
	struct vi_fw_cfg_room room;
	int status = vi_qemu_fw_cfg_room(args, n, &room);
	if (status || l->creds->n <= room.credentials)
		return status;
	return vi_error("%zu fw_cfg credentials do not fit: at most %zu on QEMU's %s machine (%u "
			"fw_cfg file slots, up to %u used by QEMU itself, %u kept for files its "
			"options add, %u taken by -fw_cfg/-option-rom): %s",
			l->creds->n, room.credentials, room.machine, room.slots, room.own,
			room.headroom, room.given,
			strcmp(room.machine, "microvm")
				? "use SMBIOS (no --fw-cfg), or more slots with -global "
				  "fw_cfg_io.x-file-slots=N"
				: "use fewer, or more slots with -global fw_cfg_io.x-file-slots=N");
}

static int qemu_fw_cfg(struct vi_launch *l, struct vi_argv *argv, size_t given)
{
	int status = check_fw_cfg_room(l, argv->v, given);
	for (size_t i = 0; !status && i < l->creds->n; i++) {
		const struct vi_cred *c = &l->creds->items[i];
		const char *why;
		if (!vi_name_valid(c->name, &why))
			return vi_error("credential name '%s': %s", c->name, why);
		if (strlen(c->name) > VF_FWCFG_NAME_MAX)
			return vi_error("credential name '%s' is %zu characters: fw_cfg names allow "
					"%d after '" VF_FWCFG_PREFIX "'",
					c->name, strlen(c->name), VF_FWCFG_NAME_MAX);
		if (c->value.len > VF_CREDENTIAL_MAX)
			return vi_error("credential %s: above systemd's 1 MiB", c->name);
		char file[32], entry[sizeof(VF_FWCFG_PREFIX) + VF_FWCFG_NAME_MAX];
		const char *path;
		snprintf(file, sizeof(file), "fwcfg-%zu", i);
		status = vi_runtime_write(l->rt, file, c->value.data, c->value.len, &path,
					  l->dry_run);
		if (status)
			return status;
		char placeholder[64];
		vi_secret_placeholder(c->value.len, placeholder, sizeof(placeholder));
		show_file(l, path, placeholder);
		snprintf(entry, sizeof(entry), VF_FWCFG_PREFIX "%s", c->name);
		const char *kv[] = {"name", entry, "file", path};
		status = qemu_option(argv, "-fw_cfg", kv, 2, NULL);
	}
	return status ? status : check_total(l->creds);
}

/* QEMU's monitor on a socket varinject holds the other end of: no path
 * anyone else could connect to. Its answer tells that QEMU has read its
 * files (run.c). */
static int qemu_monitor(const struct vi_launch *l, struct vi_argv *argv)
{
	/* Constants and a number: nothing to escape. */
	char chardev[64];
	snprintf(chardev, sizeof(chardev), "socket,id=varinject-qmp,fd=%d", l->qmp_fd);
	int status = vi_argv_add(argv, "-chardev", NULL);
	if (!status)
		status = vi_argv_add(argv, chardev,
				     l->dry_run ? "socket,id=varinject-qmp,fd=<qmp>" : NULL);
	const char *mon[] = {"chardev", "varinject-qmp", "mode", "control"};
	return status ? status : qemu_option(argv, "-mon", mon, 2, NULL);
}

int vi_qemu_args(struct vi_launch *l, struct vi_argv *argv)
{
	/* What the user gave QEMU: argv so far. */
	size_t given = argv->n;
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
			const char *kv[] = {"type", "11", "path", path};
			status = qemu_option(argv, "-smbios", kv, 2, NULL);
		}
	}
	vi_strings_free(&strings);
	if (!status && l->fw_cfg)
		status = qemu_fw_cfg(l, argv, given);
	if (!status && (l->qmp_fd >= 0 || l->dry_run))
		status = qemu_monitor(l, argv);
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
	/* "oem_strings=[]" would read back as one empty string. */
	if (!status && !strings.n) {
		vi_strings_free(&strings);
		return 0;
	}
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
			/* By length: a value from vf_value_set has no terminator. */
			if (i)
				arg[a++] = ',';
			memcpy(arg + a, strings.items[i].data, strings.items[i].len);
			a += strings.items[i].len;
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

/* cloud-hypervisor's option grammar splits on ',' outside [] and "", trims
 * spaces and counts brackets; a value in quotes is taken as it is, less the
 * quotes (OptionParser::get dequotes). A '"' of its own cannot be written. */
char *vi_ch_api_socket_arg(const char *socket_path)
{
	if (strchr(socket_path, '"')) {
		vi_error("%s: a '\"' in the API socket's path cannot pass cloud-hypervisor's option "
			 "grammar (choose another --credentials-dir)",
			 socket_path);
		return NULL;
	}
	bool plain = *socket_path != '\0';
	for (const char *p = socket_path; *p && plain; p++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			       "/._+@%:~=-",
			       *p) != NULL;
	size_t len = strlen(socket_path) + sizeof("path=\"\"");
	char *arg = malloc(len);
	if (!arg) {
		vi_error("out of memory");
		return NULL;
	}
	snprintf(arg, len, plain ? "path=%s" : "path=\"%s\"", socket_path);
	return arg;
}
