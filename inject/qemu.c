/* QEMU's side of things: its option syntax (QemuOpts, util/qemu-option.c),
 * what its command line says about fw_cfg file slots, and the monitor
 * handshake that tells when it has read its files. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "varinject.h"

/* ---- QemuOpts --------------------------------------------------------- */

char *vi_qemu_opts(const char *const *kv, size_t pairs)
{
	size_t cap = 1;
	for (size_t i = 0; i < pairs; i++)
		cap += strlen(kv[2 * i]) + 2 * strlen(kv[2 * i + 1]) + 2;
	char *out = malloc(cap), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < pairs; i++) {
		if (i)
			*o++ = ',';
		size_t k = strlen(kv[2 * i]);
		memcpy(o, kv[2 * i], k);
		o += k;
		*o++ = '=';
		/* A ',' inside a value is written ",,"; nothing else is special
		 * there ('=' included: get_opt_value ends only at a single ','). */
		for (const char *v = kv[2 * i + 1]; *v; v++) {
			*o++ = *v;
			if (*v == ',')
				*o++ = ',';
		}
	}
	*o = '\0';
	return out;
}

/* get_opt_value: up to the first single ','; ",," is one ','. */
static char *opt_value(const char *p, const char **end)
{
	char *v = malloc(strlen(p) + 1), *o = v;
	if (!v)
		return NULL;
	for (; *p; p++) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		*o++ = *p;
	}
	*o = '\0';
	*end = p;
	return v;
}

static int opts_add(struct vi_qemu_opts *o, char *name, char *value)
{
	struct vi_qemu_opt *grown = name && value ? realloc(o->items, (o->n + 1) * sizeof(*grown))
						  : NULL;
	if (!grown) {
		free(name);
		free(value);
		return -1;
	}
	o->items = grown;
	o->items[o->n].name = name;
	o->items[o->n].value = value;
	o->n++;
	return 0;
}

int vi_qemu_opts_parse(const char *s, const char *implied, struct vi_qemu_opts *out)
{
	memset(out, 0, sizeof(*out));
	for (const char *p = s; *p;) {
		size_t len = strcspn(p, "=,");
		char *name, *value;
		const char *end;
		if (p[len] != '=' && implied && p == s) {
			/* "foo,more" first: the implied option's value */
			name = strdup(implied);
			value = opt_value(p, &end);
		} else if (p[len] != '=') {
			/* a flag: "foo" is foo=on, "nofoo" foo=off */
			bool off = !strncmp(p, "no", 2);
			name = strndup(p + (off ? 2 : 0), len - (off ? 2 : 0));
			value = strdup(off ? "off" : "on");
			end = p + len;
		} else {
			name = strndup(p, len);
			value = opt_value(p + len + 1, &end);
		}
		if (opts_add(out, name, value) != 0) {
			vi_qemu_opts_free(out);
			return -1;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

const char *vi_qemu_opts_get(const struct vi_qemu_opts *o, const char *name)
{
	/* qemu_opt_get: the last one given wins. */
	for (size_t i = o->n; i-- > 0;)
		if (!strcmp(o->items[i].name, name))
			return o->items[i].value;
	return NULL;
}

void vi_qemu_opts_free(struct vi_qemu_opts *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->items[i].name);
		free(o->items[i].value);
	}
	free(o->items);
	memset(o, 0, sizeof(*o));
}

/* ---- what the command line says ---------------------------------------- */

/* "-foo" and "--foo" are the same option to QEMU. */
static bool is_flag(const char *arg, const char *flag)
{
	if (arg[0] == '-' && arg[1] == '-')
		arg++;
	return !strcmp(arg, flag);
}

/* The machine type: the last "type" of every -machine/-M (QEMU merges
 * them), "pc" when none is given (qemu-system-x86_64's default). */
static char *machine_type(char *const *args, size_t n)
{
	char *type = NULL;
	for (size_t i = 1; i + 1 < n; i++) {
		if (!is_flag(args[i], "-M") && !is_flag(args[i], "-machine"))
			continue;
		struct vi_qemu_opts o;
		if (vi_qemu_opts_parse(args[i + 1], "type", &o) != 0)
			return free(type), NULL;
		const char *t = vi_qemu_opts_get(&o, "type");
		if (t) {
			free(type);
			type = strdup(t);
		}
		vi_qemu_opts_free(&o);
	}
	return type ? type : strdup("pc");
}

bool vi_qemu_is_microvm(char *const *args, size_t n)
{
	char *type = machine_type(args, n);
	bool microvm = type && !strcmp(type, "microvm");
	free(type);
	return microvm;
}

/* QEMU's own fw_cfg files, measured with `-trace fw_cfg_add_file` on
 * qemu-system-x86_64 7.2 with -kernel under TCG (tests/inject_attack_test.py
 * checks the numbers): q35 16 (boot-fail-wait, e820, kvmvapic.bin,
 * linuxboot_dma.bin, system-states, three SMI feature files, acpi/tables,
 * table-loader, tpm/log, acpi/rsdp, smbios tables and anchor, bootorder,
 * bios-geometry), pc 13 (no SMI files), microvm 9. A machine not measured
 * counts as the largest. */
static unsigned qemu_own_files(const char *type)
{
	if (!strcmp(type, "microvm"))
		return 9;
	if (!strcmp(type, "pc") || !strncmp(type, "pc-i440fx-", 10))
		return 13;
	return 16;
}

/* 32 slots (x-file-slots) since the 2.9 machine types, 16 before. */
static unsigned default_slots(const char *type)
{
	const char *v = !strncmp(type, "pc-i440fx-", 10) ? type + 10
			: !strncmp(type, "pc-q35-", 7)	  ? type + 7
							  : NULL;
	unsigned major, minor;
	if (v && sscanf(v, "%u.%u", &major, &minor) == 2 && (major < 2 || (major == 2 && minor < 9)))
		return 16;
	return 32;
}

/* -global fw_cfg_io.x-file-slots=N, or driver=...,property=...,value=N
 * (qemu_global_option's two forms); the abstract fw_cfg type matches too. */
static bool global_slots(const char *arg, unsigned *slots)
{
	static const char *const drivers[] = {"fw_cfg", "fw_cfg_io", "fw_cfg_mem"};
	const char *driver = NULL, *value = NULL;
	struct vi_qemu_opts o = {0};
	const char *dot = strchr(arg, '.'), *eq = strchr(arg, '=');
	char short_driver[64];
	if (dot && eq && dot < eq && !strncmp(dot + 1, "x-file-slots=", 13) &&
	    (size_t)(dot - arg) < sizeof(short_driver)) {
		memcpy(short_driver, arg, (size_t)(dot - arg));
		short_driver[dot - arg] = '\0';
		driver = short_driver;
		value = dot + 14;
	} else if (vi_qemu_opts_parse(arg, NULL, &o) == 0) {
		const char *property = vi_qemu_opts_get(&o, "property");
		if (property && !strcmp(property, "x-file-slots")) {
			driver = vi_qemu_opts_get(&o, "driver");
			value = vi_qemu_opts_get(&o, "value");
		}
	}
	bool found = false;
	for (size_t i = 0; driver && value && i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(value, &end, 0);
		if (!strcmp(driver, drivers[i]) && !*end && *value && !errno && v <= 0xffff) {
			*slots = (unsigned)v;
			found = true;
		}
	}
	vi_qemu_opts_free(&o);
	return found;
}

int vi_qemu_fw_cfg_room(char *const *args, size_t n, struct vi_fw_cfg_room *room)
{
	memset(room, 0, sizeof(*room));
	char *type = machine_type(args, n);
	if (!type)
		return vi_error("out of memory");
	snprintf(room->machine, sizeof(room->machine), "%s", type);
	room->slots = default_slots(type);
	room->own = qemu_own_files(type);
	room->headroom = VI_FWCFG_HEADROOM;
	free(type);
	for (size_t i = 1; i < n; i++) {
		/* Each -fw_cfg and -option-rom takes a file slot of its own. */
		if (is_flag(args[i], "-fw_cfg") || is_flag(args[i], "-option-rom"))
			room->given++;
		else if (is_flag(args[i], "-global") && i + 1 < n)
			global_slots(args[i + 1], &room->slots);
	}
	long left = (long)room->slots - room->own - room->headroom - room->given;
	room->credentials = left > 0 ? (size_t)left : 0;
	return 0;
}

/* ---- the monitor handshake -------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool stop_pending(void)
{
	sigset_t pending;
	return sigpending(&pending) == 0 &&
	       (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1 ||
		sigismember(&pending, SIGHUP) == 1);
}

enum reply { REPLY_RETURN, REPLY_ERROR, REPLY_GONE, REPLY_TIMEOUT, REPLY_STOP };

struct qmp {
	int fd;
	char buf[8192];
	size_t len;
	bool overlong; /* dropping the rest of a line too long to keep */
	double deadline;
};

/* The next reply to a command: events (and the greeting) are skipped. The
 * key order in QEMU's JSON is not fixed, so a reply is recognised by its
 * "return" or "error" member. */
static enum reply next_reply(struct qmp *q, bool greeting)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			*nl = '\0';
			bool skip = q->overlong;
			q->overlong = false;
			enum reply r = REPLY_GONE;
			bool is_reply = false;
			if (!skip && greeting && strstr(q->buf, "\"QMP\"")) {
				r = REPLY_RETURN;
				is_reply = true;
			} else if (!skip && !greeting && !strstr(q->buf, "\"event\"")) {
				if (strstr(q->buf, "\"error\"")) {
					r = REPLY_ERROR;
					is_reply = true;
				} else if (strstr(q->buf, "\"return\"")) {
					r = REPLY_RETURN;
					is_reply = true;
				}
			}
			size_t used = (size_t)(nl + 1 - q->buf);
			memmove(q->buf, nl + 1, q->len - used);
			q->len -= used;
			if (is_reply)
				return r;
			continue;
		}
		if (q->len == sizeof(q->buf)) {
			q->overlong = true;
			q->len = 0;
		}
		if (stop_pending())
			return REPLY_STOP;
		double left = q->deadline - now();
		if (left <= 0)
			return REPLY_TIMEOUT;
		struct pollfd p = {.fd = q->fd, .events = POLLIN};
		int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
		if (poll(&p, 1, ms) <= 0)
			continue;
		ssize_t got = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return REPLY_GONE;
		q->len += (size_t)got;
	}
}

static enum reply command(struct qmp *q, const char *cmd)
{
	size_t len = strlen(cmd);
	/* MSG_NOSIGNAL: a QEMU gone meanwhile must not kill us with SIGPIPE. */
	if (send(q->fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len)
		return REPLY_GONE;
	return next_reply(q, false);
}

enum vi_qmp_result vi_qmp_wait_ready(int fd, double timeout)
{
	struct qmp q = {.fd = fd, .deadline = now() + timeout};
	enum reply r = next_reply(&q, true);
	if (r == REPLY_RETURN)
		r = command(&q, "{\"execute\": \"qmp_capabilities\"}\n");
	/* The greeting comes from the monitor's own thread, before QEMU has
	 * built the machine (and read -fw_cfg files). A command runs in the
	 * main loop, and query-status only once the machine is ready (before
	 * that, in --preconfig, it fails: ask again). */
	while (r == REPLY_RETURN || r == REPLY_ERROR) {
		r = command(&q, "{\"execute\": \"query-status\"}\n");
		if (r == REPLY_RETURN)
			return VI_QMP_READY;
		if (r == REPLY_ERROR) {
			struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};
			nanosleep(&pause, NULL);
		}
	}
	return r == REPLY_TIMEOUT ? VI_QMP_TIMEOUT : r == REPLY_STOP ? VI_QMP_STOP : VI_QMP_GONE;
}
