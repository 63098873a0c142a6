/* varinject [options] -- HYPERVISOR ARGS...: gathers the credentials,
 * hands them to the hypervisor in the chosen transport, and supervises it
 * (docs/varinject.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/secmem.h"
#include "varinject.h"

bool vi_ch_api_up(const char *socket_path);

static const char usage[] =
	"varinject [-f SPEC] [--store DIR] --machine M (-i IDENTITY | --identity-credential NAME)\n"
	"                 [--from-credentials-dir[=DIR] [--credential NAME]...]\n"
	"                 [--name-style spec|seed|verbatim] [--oem-string STR]...\n"
	"                 [--credentials-dir DIR] [--allow-persistent]\n"
	"                 [--hypervisor qemu|cloud-hypervisor] [--argv] [--vm-config FILE]\n"
	"                 [--fw-cfg] [--api-timeout SECONDS] [--stop-timeout SECONDS] [--dry-run]\n"
	"                 -- HYPERVISOR [ARGS...]\n"
	"       varinject install [-f SPEC] [--store DIR] --machine M -i IDENTITY DIR\n"
	"       varinject help [install]";
static const struct vf_help_row help_rows[] = {
	{NULL, "HYPERVISOR [ARGS...]", "the command line of qemu-system-* or cloud-hypervisor"},
	VI_STORE_HELP,
	{"--from-credentials-dir", "[=DIR]", "the files of DIR or $CREDENTIALS_DIRECTORY, not "
					     "the store"},
	{"--credential", "NAME", "with --from-credentials-dir: only file NAME; repeatable"},
	{"--name-style", "spec|seed|verbatim", "names: the spec's, HOST-FILE-NAME, or the file "
					       "name"},
	{"--oem-string", "STR", "a static OEM string, given before the credentials; repeatable"},
	{"--credentials-dir", "DIR", "where the private runtime directory goes (see below)"},
	{"--allow-persistent", NULL, "allow that directory on a file system not in RAM"},
	{"--hypervisor", "qemu|cloud-hypervisor", "which it is, when its file name does not say"},
	{"--argv", NULL, "cloud-hypervisor: strings on its command line (the seed's way)"},
	{"--vm-config", "FILE", "cloud-hypervisor API mode: the VmConfig JSON of the VM"},
	{"--fw-cfg", NULL, "QEMU: fw_cfg files instead of SMBIOS (implied by -M microvm)"},
	{"--api-timeout", "SECONDS", "wait this long for the API or monitor (default 10)"},
	{"--stop-timeout", "SECONDS", "on stop, give the VM this long to shut down (default 30)"},
	{"--dry-run", NULL, "print what would run, each secret as its size; launch nothing"},
	VF_HELP_OPTION,
	{"--version", NULL, "print the version and exit"},
};
static const struct vf_help help = {
	usage,
	"Decrypts machine M's secrets (or takes the files of a credentials directory) and\n"
	"launches HYPERVISOR with them as systemd credentials in SMBIOS OEM strings or\n"
	"fw_cfg, staying its parent. 'varinject help install' shows install's options.",
	VF_HELP_ROWS(help_rows),
	"The runtime directory goes under --credentials-dir, else $RUNTIME_DIRECTORY,\n"
	"$XDG_RUNTIME_DIR or /run. '--from-credentials-dir DIR' with a space is\n"
	"--from-credentials-dir=DIR when a -- follows; without one, the word after it is\n"
	"the hypervisor.",
};

enum vi_hv { VI_HV_UNKNOWN, VI_HV_QEMU, VI_HV_CH };

struct run {
	struct vi_store_source store;
	bool from_dir, allow_persistent, argv_mode, fw_cfg, dry_run;
	const char *dir, *credentials_dir, *vm_config;
	/* The word right after a bare --from-credentials-dir, when it was
	 * taken for the hypervisor: named in the error if it is none. */
	const char *maybe_dir;
	struct vf_strings pick, static_strings;
	enum vi_hv hv;
	double api_timeout, stop_timeout;
	char **hv_argv;
	int hv_argc;
	struct vi_creds creds;
	struct vi_runtime rt;
	struct vi_argv argv;
	/* QEMU: varinject's end of its monitor socket, and QEMU's */
	int qmp[2];
	/* API mode */
	uint8_t *vm_text; /* the --vm-config file */
	size_t vm_len;
	char *socket;
	struct vf_value body;
	char *body_shown;
};

static int parse_seconds(const char *arg, double *out)
{
	char *end;
	double v = strtod(arg, &end);
	if (*end || v <= 0 || v > 3600)
		return vi_error("%s: expected a number of seconds (0..3600]", arg);
	*out = v;
	return 0;
}

static int parse_style(const char *arg, enum vi_style *out)
{
	if (!strcmp(arg, "spec"))
		*out = VI_STYLE_SPEC;
	else if (!strcmp(arg, "seed"))
		*out = VI_STYLE_SEED;
	else if (!strcmp(arg, "verbatim"))
		*out = VI_STYLE_VERBATIM;
	else
		return vi_error("--name-style %s: expected spec, seed or verbatim", arg);
	return 0;
}

static int parse_hypervisor(const char *arg, enum vi_hv *out)
{
	if (!strcmp(arg, "qemu"))
		*out = VI_HV_QEMU;
	else if (!strcmp(arg, "cloud-hypervisor") || !strcmp(arg, "ch"))
		*out = VI_HV_CH;
	else
		return vi_error("--hypervisor %s: expected qemu or cloud-hypervisor", arg);
	return 0;
}

/* A name in $CREDENTIALS_DIRECTORY, never a path out of it. */
static int identity_name(const char *name)
{
	const char *why;
	if (!vf_credential_name_valid(name, &why))
		return vi_error("--identity-credential %s: not a credential name: %s", name, why);
	return 0;
}

/* "--from-credentials-dir DIR -- HYPERVISOR": getopt gives an optional
 * argument only as "=DIR" and stops at DIR as at a hypervisor. The
 * hypervisor follows "--": a word right after the bare option (at
 * bare_at) with a "--" still to come can only be the directory. Without a
 * later "--" the word stays the hypervisor, as it always was. */
static bool take_directory_word(int argc, char **argv, struct run *r, int *bare_at)
{
	if (!*bare_at || *bare_at != optind || optind >= argc)
		return false;
	for (int i = optind + 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			r->dir = argv[optind++];
			*bare_at = 0;
			return true; /* and the options after it are read */
		}
	return false;
}

static int parse(int argc, char **argv, struct run *r)
{
	static const struct option opts[] = {
		VI_STORE_OPTIONS,
		{"from-credentials-dir", optional_argument, NULL, OPT_FROM_CREDENTIALS_DIR},
		{"credential", required_argument, NULL, OPT_CREDENTIAL},
		{"name-style", required_argument, NULL, OPT_NAME_STYLE},
		{"oem-string", required_argument, NULL, OPT_OEM_STRING},
		{"credentials-dir", required_argument, NULL, OPT_CREDENTIALS_DIR},
		{"hypervisor", required_argument, NULL, OPT_HYPERVISOR},
		{"argv", no_argument, NULL, OPT_ARGV},
		{"vm-config", required_argument, NULL, OPT_VM_CONFIG},
		{"fw-cfg", no_argument, NULL, OPT_FW_CFG},
		{"api-timeout", required_argument, NULL, OPT_API_TIMEOUT},
		{"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct vf_error err;
	int c, status = 0, bare_at = 0;
	if (argc < 2)
		return 2; /* the usage, not "no hypervisor" */
	/* "+": stop at the first non-option, so the hypervisor's own flags
	 * after "--" are never taken for ours; and once more after the
	 * directory of a "--from-credentials-dir DIR". */
	do {
		while (!status && (c = getopt_long(argc, argv, "+f:m:i:h", opts, NULL)) != -1) {
			switch (c) {
			case 'f': r->store.spec_path = optarg; break;
			case OPT_STORE: r->store.store_opt = optarg; break;
			case 'm': r->store.machine = optarg; break;
			case 'i': r->store.identity_file = optarg; break;
			case OPT_IDENTITY_CREDENTIAL:
				r->store.identity_credential = optarg;
				status = identity_name(optarg);
				break;
			case OPT_INSECURE_PERMISSIONS: r->store.insecure = true; break;
			case OPT_PASSPHRASE_FILE: r->store.passphrase_file = optarg; break;
			case OPT_FROM_CREDENTIALS_DIR:
				r->from_dir = true;
				r->dir = optarg;
				bare_at = optarg ? 0 : optind;
				break;
			case OPT_CREDENTIAL:
				if (vf_strings_add(&r->pick, optarg, &err) != VF_OK)
					status = vi_fail(&err);
				break;
			case OPT_NAME_STYLE: status = parse_style(optarg, &r->store.style); break;
			case OPT_OEM_STRING:
				if (vf_strings_add(&r->static_strings, optarg, &err) != VF_OK)
					status = vi_fail(&err);
				break;
			case OPT_CREDENTIALS_DIR: r->credentials_dir = optarg; break;
			case OPT_ALLOW_PERSISTENT: r->allow_persistent = true; break;
			case OPT_HYPERVISOR: status = parse_hypervisor(optarg, &r->hv); break;
			case OPT_ARGV: r->argv_mode = true; break;
			case OPT_VM_CONFIG: r->vm_config = optarg; break;
			case OPT_FW_CFG: r->fw_cfg = true; break;
			case OPT_API_TIMEOUT: status = parse_seconds(optarg, &r->api_timeout); break;
			case OPT_STOP_TIMEOUT: status = parse_seconds(optarg, &r->stop_timeout); break;
			case OPT_DRY_RUN: r->dry_run = true; break;
			case 'h': vf_help_print(stdout, &help); return -1;
			default: return 2;
			}
		}
	} while (!status && take_directory_word(argc, argv, r, &bare_at));
	if (status)
		return status;
	if (bare_at && bare_at == optind && optind < argc)
		r->maybe_dir = argv[optind];
	if (optind >= argc)
		return vi_error("no hypervisor: varinject [options] -- HYPERVISOR [ARGS...]");
	r->hv_argv = argv + optind;
	r->hv_argc = argc - optind;
	if (r->pick.n && !r->from_dir)
		return vi_error("--credential picks from --from-credentials-dir");
	return 0;
}

/* By file name, unless told. */
static int detect(struct run *r)
{
	const char *base = strrchr(r->hv_argv[0], '/');
	base = base ? base + 1 : r->hv_argv[0];
	if (r->hv == VI_HV_UNKNOWN)
		r->hv = strstr(base, "qemu") ? VI_HV_QEMU
			: strstr(base, "cloud-hypervisor") ? VI_HV_CH
							   : VI_HV_UNKNOWN;
	if (r->hv == VI_HV_UNKNOWN && r->maybe_dir)
		return vi_error("%s: cannot tell which hypervisor this is (a directory is given as "
				"--from-credentials-dir=%s, or before a --)",
				r->hv_argv[0], r->maybe_dir);
	if (r->hv == VI_HV_UNKNOWN)
		return vi_error("%s: cannot tell which hypervisor this is: --hypervisor qemu or "
				"cloud-hypervisor",
				r->hv_argv[0]);
	if (r->hv == VI_HV_QEMU) {
		if (r->argv_mode || r->vm_config)
			return vi_error("--argv and --vm-config are for cloud-hypervisor");
		/* microvm has no SMBIOS: fw_cfg is the only way in. */
		if (vi_qemu_is_microvm(r->hv_argv, (size_t)r->hv_argc))
			r->fw_cfg = true;
		/* QEMU's daemon would be no child of ours: unsupervised, and
		 * beyond the reach of PR_SET_PDEATHSIG. */
		for (int i = 1; i < r->hv_argc; i++)
			if (!strcmp(r->hv_argv[i], "-daemonize") ||
			    !strcmp(r->hv_argv[i], "--daemonize"))
				return vi_error("%s: varinject supervises QEMU: it cannot daemonize",
						r->hv_argv[i]);
	} else {
		if (r->fw_cfg)
			return vi_error("--fw-cfg is for QEMU (cloud-hypervisor's fw_cfg is off in "
					"release builds)");
		if (!r->argv_mode && !r->vm_config)
			return vi_error("cloud-hypervisor API mode needs --vm-config FILE (the VmConfig "
					"JSON ch-remote takes), or --argv for the command-line way");
		/* Given a payload on its command line, cloud-hypervisor creates and
		 * boots the VM itself, without the credentials. */
		static const char *const vm_flags[] = {"--kernel", "--firmware", "--platform",
						       "--initramfs", "--cmdline"};
		for (int i = 1; !r->argv_mode && i < r->hv_argc; i++)
			for (size_t k = 0; k < sizeof(vm_flags) / sizeof(vm_flags[0]); k++)
				if (!strncmp(r->hv_argv[i], vm_flags[k], strlen(vm_flags[k])))
					return vi_error("%s: in API mode the VM's configuration comes "
							"from --vm-config (or use --argv)",
							r->hv_argv[i]);
	}
	return 0;
}

/* Everything read from files the user names: any of them may block (a
 * FIFO, a hung network file system), so while stop signals still end us. */
static int gather(struct run *r)
{
	if (r->vm_config && !r->argv_mode) {
		int status = vi_vm_config_read(r->vm_config, &r->vm_text, &r->vm_len);
		if (status)
			return status;
	}
	if (r->from_dir)
		return vi_load_from_dir(r->dir, &r->pick, r->store.style, &r->creds);
	return vi_load_from_store(&r->store, &r->creds);
}

static int base_argv(struct run *r)
{
	int status = 0;
	for (int i = 0; !status && i < r->hv_argc; i++)
		status = vi_argv_add(&r->argv, r->hv_argv[i], NULL);
	return status;
}

/* cloud-hypervisor takes one --platform: if the user gave one, ours joins
 * it, otherwise it is added. */
static int merge_platform(struct run *r, size_t ours)
{
	for (size_t i = 1; i + 1 < ours; i++) {
		if (strcmp(r->argv.v[i], "--platform"))
			continue;
		if (strstr(r->argv.v[i + 1], "oem_strings"))
			return vi_error("--platform %s already sets oem_strings: pass them with "
					"--oem-string instead",
					r->argv.v[i + 1]);
		for (int k = 0; k < 2; k++) {
			char **slot = k ? &r->argv.shown[i + 1] : &r->argv.v[i + 1];
			const char *add = k ? r->argv.shown[ours + 1] : r->argv.v[ours + 1];
			size_t len = strlen(*slot) + strlen(add) + 2;
			char *joined = malloc(len);
			if (!joined)
				return vi_error("out of memory");
			snprintf(joined, len, "%s,%s", *slot, add);
			explicit_bzero(*slot, strlen(*slot));
			free(*slot);
			*slot = joined;
		}
		for (size_t k = ours; k < ours + 2; k++) {
			explicit_bzero(r->argv.v[k], strlen(r->argv.v[k]));
			free(r->argv.v[k]);
			free(r->argv.shown[k]);
		}
		r->argv.n = ours;
		r->argv.v[ours] = r->argv.shown[ours] = NULL;
		return 0;
	}
	return 0;
}

/* API mode: wait for the socket, create with our VmConfig, boot. */
static int api_started(void *ctx, pid_t child)
{
	struct run *r = ctx;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!vi_ch_api_up(r->socket)) {
		siginfo_t info = {0};
		if (waitid(P_PID, (id_t)child, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    info.si_pid == child)
			return vi_error("cloud-hypervisor exited before its API socket came up");
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) > r->api_timeout)
			return vi_error("%s: no API after %.0f s (--api-timeout)", r->socket,
					r->api_timeout);
		struct timespec pause = {.tv_nsec = 5 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	char reply[1024];
	int code = 0;
	if (vi_ch_api_request(r->socket, "PUT", "vm.create", (const char *)r->body.data,
			      r->body.len, &code, reply, sizeof(reply)))
		return 1;
	/* Handed over: the VMM holds the values now. */
	vf_value_free(&r->body);
	vi_creds_wipe(&r->creds);
	if (code / 100 != 2)
		return vi_error("vm.create: HTTP %d: %s", code, reply);
	if (vi_ch_api_request(r->socket, "PUT", "vm.boot", NULL, 0, &code, reply, sizeof(reply)))
		return 1;
	if (code / 100 != 2)
		return vi_error("vm.boot: HTTP %d: %s", code, reply);
	vi_info("VM booted through %s", r->socket);
	return 0;
}

/* A graceful stop: the guest shuts down (vm.shutdown), then the VMM,
 * which otherwise stays up waiting for another VM (vmm.shutdown). */
static bool api_stopping(void *ctx, pid_t child)
{
	(void)child;
	struct run *r = ctx;
	int code = 0;
	char reply[256];
	if (vi_ch_api_request(r->socket, "PUT", "vm.shutdown", NULL, 0, &code, reply,
			      sizeof(reply)) != 0 ||
	    code / 100 != 2)
		return false;
	return vi_ch_api_request(r->socket, "PUT", "vmm.shutdown", NULL, 0, &code, reply,
				 sizeof(reply)) == 0;
}

static int prepare_api(struct run *r, struct vi_launch *l)
{
	struct vi_strings strings = {0};
	int status = vi_build_strings(l, VF_TRANSPORT_CH_API, &strings);
	if (!status)
		status = vi_vm_config(r->vm_config, r->vm_text, r->vm_len, strings.items,
				      strings.shown, strings.n, &r->body, &r->body_shown);
	vi_strings_free(&strings);
	size_t len = strlen(r->rt.dir) + sizeof("/api.sock");
	if (!status && !(r->socket = malloc(len)))
		status = vi_error("out of memory");
	if (!status) {
		snprintf(r->socket, len, "%s/api.sock", r->rt.dir);
		char *path = vi_ch_api_socket_arg(r->socket);
		status = path ? vi_argv_add(&r->argv, "--api-socket", NULL) : 1;
		if (!status)
			status = vi_argv_add(&r->argv, path, NULL);
		free(path);
	}
	return status;
}

/* QEMU is up once its monitor answers: it has read its files, which go
 * at once instead of staying on the RAM disk while the VM runs. */
static int qemu_started(void *ctx, pid_t child)
{
	(void)child;
	struct run *r = ctx;
	close(r->qmp[1]);
	r->qmp[1] = -1;
	switch (vi_qmp_wait_ready(r->qmp[0], r->api_timeout)) {
	case VI_QMP_READY:
		vi_runtime_remove_files(&r->rt);
		break;
	case VI_QMP_TIMEOUT:
		vi_warn("QEMU did not answer on its monitor within %.0f s (--api-timeout): the "
			"credential files stay until it exits",
			r->api_timeout);
		break;
	case VI_QMP_GONE:
	case VI_QMP_STOP:
		break; /* the supervisor sees to it */
	}
	close(r->qmp[0]);
	r->qmp[0] = -1;
	return 0;
}

static int launch(struct run *r)
{
	struct vi_launch l = {
		.creds = &r->creds,
		.static_strings = &r->static_strings,
		.rt = &r->rt,
		.dry_run = r->dry_run,
		.fw_cfg = r->fw_cfg,
		.qmp_fd = -1,
		.vm_config = r->vm_config,
	};
	int status = base_argv(r);
	bool api = r->hv == VI_HV_CH && !r->argv_mode;
	bool qemu = r->hv == VI_HV_QEMU;
	if (!status && qemu && !r->dry_run) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->qmp) != 0)
			status = vi_error("socketpair: %s", strerror(errno));
		l.qmp_fd = r->qmp[1];
	}
	if (!status && qemu)
		status = vi_qemu_args(&l, &r->argv);
	if (!status && r->hv == VI_HV_CH && r->argv_mode) {
		size_t ours = r->argv.n;
		status = vi_ch_argv_args(&l, &r->argv);
		if (!status && r->argv.n > ours)
			status = merge_platform(r, ours);
	}
	if (!status && api)
		status = prepare_api(r, &l);
	if (status)
		return status;
	if (r->dry_run) {
		vi_argv_print(&r->argv);
		if (api) {
			printf("request: PUT /api/v1/vm.create (on %s)\n%s\n", r->socket, r->body_shown);
			printf("request: PUT /api/v1/vm.boot (on %s)\n", r->socket);
		}
		return 0;
	}
	/* QEMU reads its files at start; API mode wipes after vm.create. */
	if (!api) {
		vi_creds_wipe(&r->creds);
		vf_arena_free(&vi_arena);
	}
	struct vi_child_hooks hooks = {
		.started = api ? api_started : qemu ? qemu_started : NULL,
		.stopping = api ? api_stopping : NULL,
		.ctx = r,
		.stop_timeout = r->stop_timeout,
		.pass_fd = qemu ? r->qmp[1] : -1,
	};
	return vi_supervise(&r->argv, &hooks);
}

int vi_run(int argc, char **argv)
{
	struct run r = {.api_timeout = 10, .stop_timeout = 30, .qmp = {-1, -1}};
	int status = parse(argc, argv, &r);
	if (status == 2)
		fprintf(stderr, "Usage: %s\n", usage);
	if (!status)
		status = detect(&r);
	/* A stop signal ends us at once while we gather: reading may block (a
	 * FIFO, a slow disk), and nothing of ours is on disk yet. */
	if (!status)
		status = gather(&r);
	/* From here on stop requests are taken with sigwaitinfo, so that a
	 * signal at any moment still ends with the files removed and the VM
	 * stopped. Nothing below waits without a bound before supervising. */
	if (!status) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_BLOCK, &set, NULL);
		status = vi_runtime_open(&r.rt, r.credentials_dir, r.allow_persistent, r.dry_run);
	}
	if (!status)
		status = launch(&r);
	for (int i = 0; i < 2; i++)
		if (r.qmp[i] >= 0)
			close(r.qmp[i]);
	vi_runtime_close(&r.rt);
	vi_creds_wipe(&r.creds);
	vf_arena_free(&vi_arena);
	vf_value_free(&r.body);
	free(r.body_shown);
	free(r.vm_text);
	free(r.socket);
	vi_argv_free(&r.argv);
	vf_strings_free(&r.pick);
	vf_strings_free(&r.static_strings);
	return status < 0 ? 0 : status;
}
