/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-luks.h"

typedef struct Manager Manager;

/* After a volume's header changed for good (an encryption finished): uploads one new generation of
 * the header to [backup] url, encrypted in client-side encryption v2 with the volume's KEK
 * (docs/architecture.md §11). Does nothing without [backup] url; logs "no KEK: no backup" for a
 * volume without a KEK. Never fails the caller: every failure is logged as a warning naming the
 * device and the container, and the volume stays as it is. Blocks the calling job's thread for the
 * upload (a few requests with short timeouts and two retries). */
void aded_backup_upload(
        Manager *m, const char *device, const char *header, const char *device_id, const AdeLuksToken *token);
