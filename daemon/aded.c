/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <systemd/sd-journal.h>

#include "ade-config.h"
#include "ade-log.h"

/* The daemon's log sink: the journal when started by systemd, stderr on a terminal. */
static void log_to_journal_or_stderr(int level, const char *message, void *userdata) {
        if (getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID"))
                sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", level, "SYSLOG_IDENTIFIER=aded", NULL);
        else
                fprintf(stderr, "aded: %s\n", message);
}

static void help(void) {
        printf("aded [OPTIONS]\n\n"
               "The ade disk-encryption daemon.\n\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "  -c --config FILE     Read FILE instead of " ADE_CONFIG_PATH_DEFAULT "\n"
               "     --check-config    Parse the configuration, report the first error, and exit\n"
               "     --log-level LEVEL err, warning, info or debug\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CHECK_CONFIG, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        _cleanup_(ade_config_freep) AdeConfig *config = NULL;
        _cleanup_free_ char *error = NULL;
        const char *config_path = NULL;
        bool check_only = false;
        int c, r;

        ade_log_set_callback(log_to_journal_or_stderr, NULL);

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("aded %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        check_only = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = ade_log_level_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "aded: unknown log level '%s' (err, warning, info, debug)\n", optarg);
                                return 2;
                        }
                        ade_log_set_max_level(r);
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "aded: unexpected argument '%s'; see aded --help\n", argv[optind]);
                return 2;
        }

        r = ade_config_load(config_path, &config, &error);
        if (r < 0) {
                ade_log_error("%s", error ?: "cannot load the configuration");
                return 1;
        }
        if (check_only) {
                printf("%s: configuration is valid\n", config->path);
                return 0;
        }

        ade_log_error("the service loop is not built yet (see README: the daemon issue); only --check-config works");
        return 1;
}
