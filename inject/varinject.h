/* varinject: from sealed store to credentials in a running guest. */
#ifndef VARINJECT_H
#define VARINJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/help.h"
#include "age/keys.h"
#include "vars/oem.h"
#include "vars/spec.h"
#include "vars/values.h"
#include "vars/vars.h"

/* Messages: to the journal when systemd runs us, to stderr otherwise. */
void vi_log_init(void);
void vi_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vi_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vi_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "varinject: error: <reason>"; returns vf_exit_status(err->code). */
int vi_fail(const struct vf_error *err);
/* sd_notify, a no-op outside systemd. */
void vi_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A credential on its way to the guest. */
struct vi_cred {
	char *name;
	struct vf_value value; /* guarded */
};
struct vi_creds {
	struct vi_cred *items;
	size_t n;
};
/* systemd's rules for credential names, and no '=': systemd splits an
 * OEM string "io.systemd.credential:NAME=VALUE" at the first '='. */
bool vi_name_valid(const char *name, const char **why);
int vi_creds_add(struct vi_creds *c, const char *name, struct vf_value *value);
/* Credentials and their encodings share one guarded arena. */
extern struct vf_arena vi_arena;
void vi_creds_wipe(struct vi_creds *c);

enum vi_style { VI_STYLE_DEFAULT, VI_STYLE_SPEC, VI_STYLE_SEED, VI_STYLE_VERBATIM };

/* Sources (sources.c). */
struct vi_store_source {
	const char *spec_path, *store_opt, *machine;
	const char *identity_file, *identity_credential;
	const char *passphrase_file; /* for a passphrase-protected identity */
	bool insecure;
	enum vi_style style;
};
int vi_load_from_store(const struct vi_store_source *src, struct vi_creds *out);
int vi_identity_from(const struct vi_store_source *src, struct vf_identities *ids);
/* One stored var, decrypted when secret. */
int vi_read_var(const char *root, const char *owner, const struct vf_spec_generator *g,
		const struct vf_spec_file *f, const struct vf_identities *ids, struct vf_value *out);
int vi_load_from_dir(const char *dir, const struct vf_strings *pick, enum vi_style style,
		     struct vi_creds *out);

/* The private runtime directory (runtime.c): PARENT/varinject.PID.XXXXXX,
 * locked (flock) while in use. Opening it first removes those that killed
 * runs left behind (ours, unlocked, their pid gone). */
struct vi_runtime {
	char *dir;
	bool opened, created; /* created: not in --dry-run, where dir is only a name */
	int fd, parent_fd; /* the directory (holding the lock) and its parent */
	struct vf_strings files; /* full paths, as the hypervisor is given them */
	struct vf_strings names; /* the same files, by name in fd */
};
int vi_runtime_open(struct vi_runtime *rt, const char *parent, bool allow_persistent,
		    bool dry_run);
/* Writes a 0400 file; returns its path in *path (owned by rt). */
int vi_runtime_write(struct vi_runtime *rt, const char *name, const uint8_t *data, size_t len,
		     const char **path, bool dry_run);
/* Removes the files written so far (the hypervisor has read them). */
void vi_runtime_remove_files(struct vi_runtime *rt);
void vi_runtime_close(struct vi_runtime *rt);
bool vi_on_ram_fd(int fd, const char *shown);

/* A command line being built, with a redacted twin for --dry-run. */
struct vi_argv {
	char **v, **shown;
	size_t n, cap;
};
int vi_argv_add(struct vi_argv *a, const char *arg, const char *shown);
void vi_argv_free(struct vi_argv *a);
void vi_argv_print(const struct vi_argv *a);
/* "<secret: N bytes>" */
void vi_secret_placeholder(size_t len, char *out, size_t cap);

/* Launchers. Each appends to argv what the hypervisor needs. */
struct vi_launch {
	struct vi_creds *creds;
	const struct vf_strings *static_strings;
	struct vi_runtime *rt;
	bool dry_run, fw_cfg;
	int qmp_fd; /* QEMU: its end of the monitor socket (-1 in --dry-run) */
	const char *vm_config; /* cloud-hypervisor API mode */
	double api_timeout, stop_timeout;
};
int vi_qemu_args(struct vi_launch *l, struct vi_argv *argv);
int vi_ch_argv_args(struct vi_launch *l, struct vi_argv *argv);
/* "path=SOCKET" for --api-socket, quoted where cloud-hypervisor's option
 * grammar would split it; refused (NULL, reported) if it holds a '"'. */
char *vi_ch_api_socket_arg(const char *socket_path);

/* QEMU (qemu.c). Its option syntax: "k=v,k=v", with a ',' inside a value
 * written ",,". vi_qemu_opts builds it from pairs {k1, v1, k2, v2, ...}. */
char *vi_qemu_opts(const char *const *kv, size_t pairs);
struct vi_qemu_opt {
	char *name, *value;
};
struct vi_qemu_opts {
	struct vi_qemu_opt *items;
	size_t n;
};
/* As QEMU reads it (implied: the name of a first part without '='). */
int vi_qemu_opts_parse(const char *s, const char *implied, struct vi_qemu_opts *out);
const char *vi_qemu_opts_get(const struct vi_qemu_opts *o, const char *name);
void vi_qemu_opts_free(struct vi_qemu_opts *o);
bool vi_qemu_is_microvm(char *const *args, size_t n);
/* fw_cfg file slots: QEMU asserts (aborts) when they run out. Free slots
 * are counted as slots - QEMU's own (measured per machine type) - a
 * headroom for files its options add (-boot menu=on, a TPM, KVM's MSR
 * file, ...) - the -fw_cfg/-option-rom the command line gives. */
#define VI_FWCFG_HEADROOM 4
struct vi_fw_cfg_room {
	char machine[64];
	unsigned slots, own, headroom, given;
	size_t credentials; /* how many fw_cfg credentials fit */
};
int vi_qemu_fw_cfg_room(char *const *args, size_t n, struct vi_fw_cfg_room *room);
/* Waits (up to timeout seconds) until QEMU answers a command on its
 * monitor: it has built the machine, and so read its -smbios and -fw_cfg
 * files. Returns early when a stop signal is pending. */
enum vi_qmp_result { VI_QMP_READY, VI_QMP_TIMEOUT, VI_QMP_GONE, VI_QMP_STOP };
enum vi_qmp_result vi_qmp_wait_ready(int fd, double timeout);

/* cloud-hypervisor's REST API over its UNIX socket (chapi.c). */
int vi_ch_api_request(const char *socket, const char *method, const char *path,
		      const char *body, size_t body_len, int *status, char *reply, size_t reply_cap);
/* The VmConfig file (--vm-config), read whole (NUL-terminated, free()). */
int vi_vm_config_read(const char *path, uint8_t **text, size_t *len);
/* The vm.create body: the user's VmConfig (text, read from path) with
 * platform.oem_strings merged in (json.c); the redacted twin for
 * --dry-run. Guarded memory. */
int vi_vm_config(const char *path, const uint8_t *text, size_t len, const struct vf_value *strings,
		 char *const *shown, size_t n, struct vf_value *body, char **shown_body);

/* The OEM strings for a launch: static ones first, then the encoded
 * credentials; shown[i] is what --dry-run prints in their place
 * ("io.systemd.credential:NAME=<secret: N bytes>"). */
struct vi_strings {
	struct vf_value *items;
	char **shown;
	size_t n;
};
int vi_build_strings(struct vi_launch *l, enum vf_transport t, struct vi_strings *out);
void vi_strings_free(struct vi_strings *s);

/* Supervision (supervise.c): runs argv as a child and stays its parent. */
struct vi_child_hooks {
	/* After the child is up (API mode: create and boot). 0 = ready. */
	int (*started)(void *ctx, pid_t child);
	/* On SIGTERM/SIGINT, before the signal is forwarded (API mode:
	 * vm.shutdown). Returns true if the child was asked to stop. */
	bool (*stopping)(void *ctx, pid_t child);
	void *ctx;
	double stop_timeout;
	int pass_fd; /* a descriptor the child keeps (-1: none) */
};
int vi_supervise(const struct vi_argv *argv, const struct vi_child_hooks *hooks);

/* Codes of the long options that have no short form: above every char,
 * so no letter can collide with them, and none needs a trick such as
 * 'n' + 256 to stay apart from another. */
enum vi_long_option {
	OPT_STORE = 256,
	OPT_IDENTITY_CREDENTIAL,
	OPT_INSECURE_PERMISSIONS,
	OPT_PASSPHRASE_FILE,
	OPT_FROM_CREDENTIALS_DIR,
	OPT_CREDENTIAL,
	OPT_NAME_STYLE,
	OPT_OEM_STRING,
	OPT_CREDENTIALS_DIR,
	OPT_ALLOW_PERSISTENT,
	OPT_HYPERVISOR,
	OPT_ARGV,
	OPT_VM_CONFIG,
	OPT_FW_CFG,
	OPT_API_TIMEOUT,
	OPT_STOP_TIMEOUT,
	OPT_DRY_RUN,
};

int vi_run(int argc, char **argv);
int vi_install(int argc, char **argv);

/* Where the secrets come from: the options the launch and install share,
 * which main also reads before the verb (install's, given before it). */
#define VI_STORE_OPTIONS                                                                  \
	{"file", required_argument, NULL, 'f'}, {"store", required_argument, NULL, OPT_STORE},  \
		{"machine", required_argument, NULL, 'm'},                                \
		{"identity", required_argument, NULL, 'i'},                               \
		{"identity-credential", required_argument, NULL, OPT_IDENTITY_CREDENTIAL}, \
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},    \
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},        \
		{"allow-persistent", no_argument, NULL, OPT_ALLOW_PERSISTENT}
/* Their help rows. */
#define VI_STORE_HELP                                                                     \
	{"-f, --file", "SPEC", "the spec (default: $VARS_SPEC, else vars.yaml here or above)"},                   \
		{"--store", "DIR", "the store root, holding vars/ (default: the spec's "    \
				   "directory)"},                                         \
		{"-m, --machine", "M", "the machine whose secrets these are"},            \
		{"-i, --identity", "FILE", "the machine's identity: an age key, or its SSH " \
					   "host key"},                           \
		{"--identity-credential", "NAME", "the identity in "                      \
						  "$CREDENTIALS_DIRECTORY/NAME (systemd)"}, \
		{"--insecure-permissions", NULL, "read an identity file that group or "      \
						 "others may read"},                 \
		{"--passphrase-file", "FILE", "a passphrase-protected identity's "          \
					      "passphrase, read from FILE"}

#endif
