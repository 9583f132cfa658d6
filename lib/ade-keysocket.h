/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ade-secret.h"

/* systemd-cryptsetup's AF_UNIX key files (crypttab(5), "AF_UNIX KEY FILES"; docs/architecture.md
 * §9): when the key file column names a stream socket, systemd-cryptsetup binds its end to the
 * abstract address "\0<random hex>/cryptsetup/<volume>", connects, and reads the key to EOF. The
 * server learns the volume from getpeername(), writes the key file and closes. A server that
 * closes without writing makes systemd-cryptsetup treat the key as wrong and go on to its next
 * try. The "/cryptsetup-pkcs11/", "-fido2/" and "-tpm2/" forms ask for a key that is itself
 * encrypted for a token: ade has none, so they are refused.
 *
 * This module is the protocol only; which volume gets which key is the daemon's decision. */

/* Largest key file a client reads (ours are 172 bytes; a LUKS key file may be larger). */
#define ADE_KEYSOCKET_KEY_MAX (64U * 1024U)

/* The volume that the peer address @sa of @len bytes names. Returns 0 and a new string;
 * -EPROTONOSUPPORT for the encrypted-key forms; -EINVAL for anything else that is not a plain
 * "\0<hex>/cryptsetup/<volume>" with a volume of printable ASCII without '/': an unnamed or
 * path-bound peer, an empty name, ".", "..", control bytes. The name is as long as sun_path lets
 * it be (79 bytes after a 16-digit random part; "ade-<uuid>" takes 40). */
int ade_keysocket_volume_from_address(const struct sockaddr_un *sa, socklen_t len, char **ret_volume);

/* For an accepted connection @fd: the peer's uid (SO_PEERCRED) must be 0, else -EPERM; then the
 * volume from its address as above. */
int ade_keysocket_peer_volume(int fd, char **ret_volume);

/* Writes @key to @fd in full and shuts the connection down for writing, so the peer sees EOF
 * after the last byte. A peer that went away gives -EPIPE (never SIGPIPE). */
int ade_keysocket_send_key(int fd, const AdeSecret *key);

/* The client side, as systemd-cryptsetup does it (for tests and benchmarks): binds to a fresh
 * abstract "\0<random hex>/cryptsetup/<volume>", connects to the socket at @path and reads the key
 * to EOF (at most ADE_KEYSOCKET_KEY_MAX bytes, else -EFBIG). -ENOENT/-ECONNREFUSED when nobody listens; -ENOKEY
 * when the server closed without a byte (systemd-cryptsetup's "wrong key"). */
int ade_keysocket_request(const char *path, const char *volume, AdeSecret **ret_key);
