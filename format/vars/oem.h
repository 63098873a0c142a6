/* systemd credentials as SMBIOS type 11 OEM strings (and QEMU fw_cfg
 * entries): names, encodings per transport, and the limits that
 * cloud-hypervisor, QEMU and systemd impose. Facts: systemd imports
 * "io.systemd.credential:NAME=VALUE" and "io.systemd.credential.binary:
 * NAME=BASE64" (systemd 252+), fw_cfg "opt/io.systemd.credentials/NAME". */
#ifndef VF_OEM_H
#define VF_OEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct vf_value; /* vars/values.h */

#define VF_OEM_PREFIX "io.systemd.credential:"
#define VF_OEM_BINARY_PREFIX "io.systemd.credential.binary:"
#define VF_FWCFG_PREFIX "opt/io.systemd.credentials/"

/* The SMBIOS type 11 count is one byte: more strings wrap silently. */
#define VF_OEM_MAX_STRINGS 255
/* cloud-hypervisor has no size check and its tables must fit below 1 MiB
 * of guest memory with everything else; QEMU's default SMBIOS 2.1 entry
 * point caps tables at 64 KiB. All strings together stay under this. */
#define VF_OEM_BUDGET (60u * 1024)
/* systemd: per credential and for all imported credentials together. */
#define VF_CREDENTIAL_MAX (1u << 20)
/* fw_cfg file names are at most 55 characters: 27 of prefix + NAME. */
#define VF_FWCFG_NAME_MAX 28

enum vf_transport {
	VF_TRANSPORT_QEMU_SMBIOS, /* -smbios type=11,path=FILE: no NUL */
	VF_TRANSPORT_QEMU_FWCFG,  /* -fw_cfg name=...,file=FILE: raw bytes */
	VF_TRANSPORT_CH_ARGV,	  /* --platform oem_strings=[...] */
	VF_TRANSPORT_CH_API,	  /* JSON over the API socket */
};

/* systemd's rules: non-empty, not "." or "..", no '/', no ':', bytes
 * 0x20..0x7e, at most 255 bytes; and no '=', which systemd would take for
 * the end of the name in "io.systemd.credential:NAME=VALUE". why gets the
 * reason when invalid. */
bool vf_credential_name_valid(const char *name, const char **why);

/* Whether the text form can carry value over the transport unchanged.
 * When not, the .binary form (base64) is used. */
bool vf_oem_text_safe(const uint8_t *value, size_t len, enum vf_transport t);

/* The OEM string for a credential, in guarded memory: from arena when
 * given, else its own allocation. NUL-terminated; out->len excludes it. */
struct vf_arena;
enum vf_code vf_oem_encode(const char *name, const struct vf_value *value, enum vf_transport t,
			   struct vf_arena *arena, struct vf_value *out, bool *binary,
			   struct vf_error *err);

/* Checks one set of OEM strings (static ones and encoded credentials)
 * before launch: count, no empty string, the SMBIOS budget. */
enum vf_code vf_oem_check_limits(const struct vf_value *strings, size_t n, struct vf_error *err);

#endif
