/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Manager Manager;

/* Binds the methods of io.ade.DiskEncryption (Show, Watch, Enable, Disable, Unlock, RotateKey) on
 * the manager's varlink server: each checks its parameters and the manager's state, then answers
 * from Show, or starts Enable's preparation or the jobs and answers when they are done. */
int methods_bind(Manager *m);
