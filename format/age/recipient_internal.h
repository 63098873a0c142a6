/* The parsers of each recipient and identity type, which keys.c
 * dispatches to (private to format/age/: the tools go through keys.h). */
#ifndef VF_RECIPIENT_INTERNAL_H
#define VF_RECIPIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "age/recipient.h"

/* X25519 (x25519.c). */
/* Parses "age1..."; VF_E_KEY when malformed. */
enum vf_code vf_x25519_recipient_parse(const char *s, struct vf_recipient **out,
				       struct vf_error *err);

/* SSH keys (ssh.c): a public key line as in authorized_keys or a .pub
 * file (options and comment allowed), ssh-ed25519 or ssh-rsa (2048 bits or
 * more); an unencrypted OpenSSH private key file. */
enum vf_code vf_ssh_recipient_parse(const char *line, struct vf_recipient **out,
				    struct vf_error *err);
bool vf_ssh_is_private_key(const char *text, size_t len);
enum vf_code vf_ssh_identity_parse(const char *text, size_t len, struct vf_identity **out,
				   struct vf_error *err);

#endif
