/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* aded's varlink interface, io.ade.DiskEncryption (docs/architecture.md §7): the text of
 * daemon/io.ade.DiskEncryption.varlink, embedded at build time (lib/varlink.am generates
 * lib/ade-disk-encryption-idl.c from it). aded serves it with ade_varlink_server_add_interface(),
 * which validates every call and, on request, every reply against it; the tests check the same
 * text. */

#define ADE_VARLINK_INTERFACE_DISK_ENCRYPTION "io.ade.DiskEncryption"

extern const char ade_varlink_idl_disk_encryption[];
