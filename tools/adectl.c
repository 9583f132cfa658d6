/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ade-json.h"
#include "ade-restore.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-varlink.h"

/* adectl: aded's command line (docs/architecture.md §8). Everything goes through the varlink socket; adectl
 * holds no state and never touches a device itself. */

#define DEFAULT_SOCKET "/run/ade/io.ade.DiskEncryption"
#define IFACE "io.ade.DiskEncryption."

enum {
        EXIT_DONE = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_REFUSED = 3,
        EXIT_UNREACHABLE = 4,
};

static const char *arg_socket = DEFAULT_SOCKET;
static bool arg_json = false;

static void log_to_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        (void)level;
        (void)userdata;
        fprintf(stderr, "adectl: %s\n", message);
}

static void help(void) {
        printf("adectl [--socket PATH] [--json] COMMAND [OPTIONS]\n\n"
               "Controls aded, the ade disk-encryption daemon.\n\n"
               "Commands:\n"
               "  show [--volume-type OS|DATA|ALL]   Show the encryption state of the volumes\n"
               "  enable --volume-type OS|DATA|ALL [--keyvault-url URL] [--keyvault-resource-id ID]\n"
               "         [--kek-url URL] [--kek-vault-resource-id ID] [--kek-algorithm ALG]\n"
               "         [--format-all --yes] [--skip-snapshot-check] [--dry-run] [--no-wait]\n"
               "                                     Encrypt volumes, with progress\n"
               "  disable --volume-type DATA|ALL [--no-wait]\n"
               "                                     Decrypt the data volumes\n"
               "  unlock [DEVICE]                    Open encrypted volumes with their escrowed keys\n"
               "  rotate [--kek-url URL]             New key files (or re-wrap them with a new KEK)\n"
               "  restore-header DEVICE [--generation N] (--dry-run | --yes)\n"
               "                                     Write a header backup from [backup] url back\n"
               "  adopt [--dry-run]                  Take over the data volumes ADE encrypted\n"
               "  watch                              Print the volumes whenever they change\n\n"
               "Options:\n"
               "  -h --help          Show this help\n"
               "     --version       Show the version\n"
               "     --socket PATH   aded's socket (default " DEFAULT_SOCKET ")\n"
               "     --json          Print JSON (also accepted after the command)\n\n"
               "Exit status: 0 done, 1 failed, 2 usage, 3 precondition refused, 4 aded unreachable.\n");
}

static int usage_error(const char *format, ...) _printf_(1, 2);
static int usage_error(const char *format, ...) {
        va_list ap;

        fprintf(stderr, "adectl: ");
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fprintf(stderr, "\nSee 'adectl --help'.\n");
        return EXIT_USAGE;
}

static int connect_daemon(AdeVarlinkClient **ret) {
        int r;

        r = ade_varlink_client_connect(arg_socket, ret);
        if (r < 0) {
                fprintf(stderr,
                        "adectl: cannot reach aded at %s: %s.\n"
                        "Is aded running? Check with 'systemctl status aded', or pass --socket PATH.\n",
                        arg_socket, strerror(-r));
                return -EXIT_UNREACHABLE;
        }
        return 0;
}

static const char *jstr(json_object *o, const char *key) {
        const char *s = NULL;

        return ade_json_get_string(o, key, &s) >= 0 ? s : NULL;
}

static int64_t jint(json_object *o, const char *key) {
        int64_t v = 0;

        (void)ade_json_get_int64(o, key, &v);
        return v;
}

static double jdouble(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_double(v) : 0.0;
}

static bool jbool(json_object *o, const char *key) {
        bool b = false;

        (void)ade_json_get_bool(o, key, &b);
        return b;
}

static void format_bytes(uint64_t n, char *buf, size_t size) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double d = (double)n;
        size_t u = 0;

        while (d >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                d /= 1024.0;
                u++;
        }
        snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", d, units[u]);
}

/* Prints what aded's error means for a person, and returns the exit code. */
static int print_error(const char *verb, const char *error, json_object *p) {
        const char *name = startswith(error, IFACE) ?: error;

        if (arg_json) {
                _cleanup_free_ char *s = NULL;
                json_object *o = json_object_new_object();

                json_object_object_add(o, "error", json_object_new_string(error));
                json_object_object_add(o, "parameters", p ? json_object_get(p) : NULL);
                s = ade_json_to_string(o);
                printf("%s\n", strna(s));
                json_object_put(o);
        }

        if (streq(name, "PreconditionFailed")) {
                fprintf(stderr, "adectl: %s refused: %s: %s\n", verb, strna(jstr(p, "check")),
                        strna(jstr(p, "reason")));
                return EXIT_REFUSED;
        }
        if (streq(name, "RegionMismatch")) {
                fprintf(stderr,
                        "adectl: %s refused: the VM is in %s but the vault in %s; use a vault in the VM's region\n",
                        verb, strna(jstr(p, "vmLocation")), strna(jstr(p, "vaultLocation")));
                return EXIT_REFUSED;
        }
        if (streq(name, "SnapshotMissing")) {
                fprintf(stderr,
                        "adectl: %s refused: disk %s has no recent snapshot or restore point; take one, or pass "
                        "--skip-snapshot-check\n",
                        verb, strna(jstr(p, "disk")));
                return EXIT_REFUSED;
        }
        if (streq(name, "BackupNotFound") || streq(name, "RestoreRefused")) {
                fprintf(stderr, "adectl: %s refused: %s\n", verb, strna(jstr(p, "reason")));
                return EXIT_REFUSED;
        }
        if (streq(name, "AdoptFailed")) {
                fprintf(stderr, "adectl: %s failed: %s\n", verb, strna(jstr(p, "reason")));
                return EXIT_FAILED;
        }
        if (streq(name, "RestoreFailed")) {
                fprintf(stderr, "adectl: %s failed: %s\n", verb, strna(jstr(p, "reason")));
                return EXIT_FAILED;
        }
        if (streq(name, "OperationInProgress")) {
                const char *device = jstr(p, "device");

                fprintf(stderr, "adectl: %s refused: another job is running%s%s; see 'adectl show' or 'adectl watch'\n",
                        verb, device ? " on " : "", strempty(device));
                return EXIT_REFUSED;
        }
        if (streq(name, "KeyVaultError")) {
                const char *device = jstr(p, "device"), *url = jstr(p, "url");

                fprintf(stderr, "adectl: %s%s%s failed: Key Vault%s%s ", verb, device ? " of " : "", strempty(device),
                        url ? " at " : "", strempty(url));
                if (jint(p, "status") == 0)
                        fprintf(stderr, "could not be reached (%s): %s\n", strna(jstr(p, "code")),
                                strna(jstr(p, "message")));
                else
                        fprintf(stderr, "answered %" PRIi64 " %s: %s\n", jint(p, "status"), strna(jstr(p, "code")),
                                strna(jstr(p, "message")));
        } else if (streq(name, "NoSuchVolume"))
                fprintf(stderr, "adectl: %s failed: %s is not a volume aded manages (see 'adectl show')\n", verb,
                        strna(jstr(p, "device")));
        else if (streq(name, "PermissionDenied") || streq(error, ADE_VARLINK_ERROR_PERMISSION_DENIED))
                fprintf(stderr, "adectl: %s: permission denied: this needs root\n", verb);
        else if (streq(error, ADE_VARLINK_ERROR_SYSTEM))
                fprintf(stderr, "adectl: %s failed: %s\n", verb, strna(jstr(p, "message")));
        else {
                _cleanup_free_ char *s = p ? ade_json_to_string(p) : NULL;
                fprintf(stderr, "adectl: %s failed: %s %s\n", verb, error, strempty(s));
        }
        return EXIT_FAILED;
}

/* The running job's rate and what is left at it, as aded measures them ("rate", "etaSeconds"):
 * empty strings when aded does not know them (yet). */
static void format_rate_eta(json_object *v, char *srate, size_t n_rate, char *eta, size_t n_eta) {
        int64_t rate = jint(v, "rate"), left = jint(v, "etaSeconds");

        srate[0] = eta[0] = 0;
        if (rate <= 0 || left < 0)
                return;
        format_bytes((uint64_t)rate, srate, n_rate);
        strncat(srate, "/s", n_rate - strlen(srate) - 1);
        if (left >= 3600)
                snprintf(
                        eta, n_eta, "ETA %" PRId64 ":%02" PRId64 ":%02" PRId64, left / 3600, left / 60 % 60, left % 60);
        else
                snprintf(eta, n_eta, "ETA %" PRId64 ":%02" PRId64, left / 60, left % 60);
}

/* The "backup" object: one line a person reads (docs/architecture.md §11). */
static void print_backup(json_object *v) {
        json_object *b = NULL;
        const char *state;
        int64_t generation;

        if (!json_object_object_get_ex(v, "backup", &b) || !json_object_is_type(b, json_type_object))
                return;
        state = strna(jstr(b, "state"));
        generation = jint(b, "generation");
        if (streq(state, "Pending"))
                printf("    backup:  Pending since %s%s\n", jstr(b, "pendingSince") ?: "an older aded's encryption",
                        generation > 0 ? " (an older generation is uploaded)" : "");
        else if (streq(state, "Current"))
                printf("    backup:  Current, generation %" PRId64 "\n", generation);
        else if (streq(state, "NoKek"))
                printf("    backup:  no KEK: no backup\n");
        else
                printf("    backup:  %s\n", state);
}

static void print_volumes_table(json_object *volumes) {
        printf("%-24s %-5s %-21s %8s %-8s %s\n", "DEVICE", "TYPE", "STATE", "PROGRESS", "UNLOCKED", "MOUNTPOINT");
        for (size_t i = 0; volumes && i < json_object_array_length(volumes); i++) {
                json_object *v = json_object_array_get_idx(volumes, i);
                char pct[16], srate[32], eta[32];

                snprintf(pct, sizeof(pct), "%.0f%%", floor(jdouble(v, "progress") * 100.0));
                printf("%-24s %-5s %-21s %8s %-8s %s\n", strna(jstr(v, "device")), strna(jstr(v, "type")),
                        strna(jstr(v, "state")), pct, jbool(v, "unlocked") ? "yes" : "no",
                        jstr(v, "mountpoint") ?: "-");
                format_rate_eta(v, srate, sizeof(srate), eta, sizeof(eta));
                if (srate[0])
                        printf("    rate:    %s, %s\n", srate, eta);
                if (jstr(v, "mapper"))
                        printf("    mapper:  %s\n", jstr(v, "mapper"));
                if (jstr(v, "secretUrl"))
                        printf("    secret:  %s\n", jstr(v, "secretUrl"));
                if (jstr(v, "kekUrl"))
                        printf("    kek:     %s\n", jstr(v, "kekUrl"));
                if (jstr(v, "header"))
                        printf("    header:  %s\n", jstr(v, "header"));
                print_backup(v);
                if (jstr(v, "message"))
                        printf("    note:    %s\n", jstr(v, "message"));
        }
}

static void print_json(json_object *o) {
        _cleanup_free_ char *s = ade_json_to_string(o);

        printf("%s\n", strna(s));
        fflush(stdout);
}

/* ---- Progress -------------------------------------------------------------------------------- */

typedef struct Progress {
        const char *verb;
        bool tty;
        bool drawn;
        int last_pct[16];
        char last_state[16][32];
        char last_msg[16][64];
        json_object *final;
        char *error;
        json_object *error_params;
} Progress;

static void draw_volume(Progress *pr, size_t idx, json_object *v, bool last) {
        uint64_t done = (uint64_t)jint(v, "bytesDone"), total = (uint64_t)jint(v, "bytesTotal");
        const char *state = strna(jstr(v, "state")), *device = strna(jstr(v, "device"));
        int pct = (int)floor(jdouble(v, "progress") * 100.0);
        char sdone[32], stotal[32], srate[32], eta[32];

        if (idx >= ELEMENTSOF(pr->last_pct))
                return;
        format_bytes(done, sdone, sizeof(sdone));
        format_bytes(total, stotal, sizeof(stotal));
        format_rate_eta(v, srate, sizeof(srate), eta, sizeof(eta));

        if (pr->tty) {
                char bar[31];
                int filled = pct * 30 / 100;

                for (int i = 0; i < 30; i++)
                        bar[i] = i < filled ? '#' : '.';
                bar[30] = 0;
                if (total == 0) /* no bytes yet: say what it is doing (escrow, checks) */
                        printf("\r\033[K%s %s: %s%s", device, state, jstr(v, "message") ?: "starting",
                                last ? "\n" : "");
                else
                        printf("\r\033[K%s [%s] %3d%% %s / %s %s %s%s", device, bar, pct, sdone, stotal, srate, eta,
                                last ? "\n" : "");
                fflush(stdout);
                pr->drawn = !last;
                return;
        }

        /* Plain lines: on every state change, every step before the data moves, and every 10%. */
        const char *msg = total == 0 ? jstr(v, "message") ?: "starting" : "";
        if (strncmp(pr->last_state[idx], state, sizeof(pr->last_state[idx]) - 1) != 0 ||
                strncmp(pr->last_msg[idx], msg, sizeof(pr->last_msg[idx]) - 1) != 0 ||
                pct / 10 != pr->last_pct[idx] / 10 || last) {
                snprintf(pr->last_msg[idx], sizeof(pr->last_msg[idx]), "%s", msg);
                if (total == 0)
                        printf("%s: %s: %s\n", device, state, jstr(v, "message") ?: "starting");
                else
                        printf("%s: %s %d%% (%s of %s)%s%s%s%s\n", device, state, pct, sdone, stotal,
                                srate[0] ? ", " : "", srate, eta[0] ? ", " : "", eta);
                fflush(stdout);
                snprintf(pr->last_state[idx], sizeof(pr->last_state[idx]), "%s", state);
                pr->last_pct[idx] = pct;
        }
}

static int on_progress(json_object *p, const char *error, unsigned flags, void *userdata) {
        Progress *pr = userdata;
        json_object *volumes = NULL;
        bool queued = false;

        if (error) {
                /* The caller prints it once the call is over. */
                pr->error = strdup(error);
                pr->error_params = p ? json_object_get(p) : NULL;
                return pr->error ? 0 : -ENOMEM;
        }
        if (arg_json)
                print_json(p);
        else if (ade_json_get_bool(p, "queued", &queued) >= 0 && queued) {
                /* Said now, not when the call ends: it may wait for hours. */
                printf("Queued: another job or call is running; this starts once it is done.\n");
                fflush(stdout);
        } else if (ade_json_get_array(p, "volumes", &volumes) >= 0) {
                size_t n = json_object_array_length(volumes);
                for (size_t i = 0; i < n; i++)
                        draw_volume(
                                pr, i, json_object_array_get_idx(volumes, i), !(flags & ADE_VARLINK_REPLY_CONTINUES));
        }
        if (!(flags & ADE_VARLINK_REPLY_CONTINUES)) {
                json_object_put(pr->final);
                pr->final = json_object_get(p);
        }
        return 0;
}

/* A call with "more": progress as it comes; the final reply (or error) decides the exit code. */
static int call_with_progress(const char *verb, const char *method, json_object *params, json_object **ret_final) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        Progress pr = {.verb = verb, .tty = isatty(STDOUT_FILENO)};
        int r, ret = EXIT_DONE;

        r = connect_daemon(&c);
        if (r < 0)
                return -r;
        /* Jobs take as long as the disk does; aded sends progress as it goes. */
        ade_varlink_client_set_timeout(c, 0);

        r = ade_varlink_client_call_more(c, method, params, on_progress, &pr);
        if (pr.drawn)
                printf("\n");
        if (r < 0) {
                fprintf(stderr, "adectl: %s: the connection to aded at %s failed: %s\n", verb, arg_socket,
                        strerror(-r));
                ret = EXIT_FAILED;
        } else if (pr.error)
                ret = print_error(verb, pr.error, pr.error_params);
        else if (ret_final)
                *ret_final = TAKE_PTR(pr.final);
        free(pr.error);
        json_object_put(pr.error_params);
        json_object_put(pr.final);
        return ret;
}

/* A call with one reply. */
static int call_once(const char *verb, const char *method, json_object *params, json_object **ret) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = connect_daemon(&c);
        if (r < 0)
                return -r;
        r = ade_varlink_client_call(c, method, params, &reply, &error);
        if (r < 0) {
                fprintf(stderr, "adectl: %s: the connection to aded at %s failed: %s\n", verb, arg_socket,
                        strerror(-r));
                return EXIT_FAILED;
        }
        if (error)
                return print_error(verb, error, reply);
        *ret = TAKE_PTR(reply);
        return EXIT_DONE;
}

static const char *volume_type_arg(const char *s) {
        if (strcaseeq(s, "OS"))
                return "OS";
        if (strcaseeq(s, "DATA"))
                return "Data";
        if (strcaseeq(s, "ALL"))
                return "All";
        return NULL;
}

enum {
        ARG_JSON = 0x100,
        ARG_VOLUME_TYPE,
        ARG_KEYVAULT_URL,
        ARG_KEYVAULT_RESOURCE_ID,
        ARG_KEK_URL,
        ARG_KEK_VAULT_RESOURCE_ID,
        ARG_KEK_ALGORITHM,
        ARG_FORMAT_ALL,
        ARG_YES,
        ARG_SKIP_SNAPSHOT_CHECK,
        ARG_DRY_RUN,
        ARG_NO_WAIT,
        ARG_DEVICE,
        ARG_GENERATION,
};

static const struct option verb_options[] = {{"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, ARG_JSON},
        {"volume-type", required_argument, NULL, ARG_VOLUME_TYPE},
        {"keyvault-url", required_argument, NULL, ARG_KEYVAULT_URL},
        {"keyvault-resource-id", required_argument, NULL, ARG_KEYVAULT_RESOURCE_ID},
        {"kek-url", required_argument, NULL, ARG_KEK_URL},
        {"kek-vault-resource-id", required_argument, NULL, ARG_KEK_VAULT_RESOURCE_ID},
        {"kek-algorithm", required_argument, NULL, ARG_KEK_ALGORITHM},
        {"format-all", no_argument, NULL, ARG_FORMAT_ALL}, {"yes", no_argument, NULL, ARG_YES},
        {"skip-snapshot-check", no_argument, NULL, ARG_SKIP_SNAPSHOT_CHECK},
        {"dry-run", no_argument, NULL, ARG_DRY_RUN}, {"no-wait", no_argument, NULL, ARG_NO_WAIT},
        {"device", required_argument, NULL, ARG_DEVICE}, {"generation", required_argument, NULL, ARG_GENERATION}, {}};

typedef struct VerbArgs {
        const char *volume_type;
        const char *keyvault_url, *keyvault_resource_id, *kek_url, *kek_vault_resource_id, *kek_algorithm;
        bool format_all, yes, skip_snapshot_check, dry_run, no_wait;
        const char *device;
        unsigned generation; /* 0: none given */
        unsigned given;      /* bit per option, to refuse options a verb does not take */
} VerbArgs;

/* Parses the options after the verb; @allowed is a bit mask of (1 << (ARG_x - ARG_JSON)). */
static int parse_verb_args(const char *verb, int argc, char *argv[], unsigned allowed, VerbArgs *a) {
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", verb_options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        exit(EXIT_DONE);
                }
                if (c == '?')
                        return EXIT_USAGE;
                if (c != ARG_JSON && !(allowed & (1U << (c - ARG_JSON)))) {
                        for (const struct option *o = verb_options; o->name; o++)
                                if (o->val == c)
                                        fprintf(stderr, "adectl: %s does not take --%s\n", verb, o->name);
                        return EXIT_USAGE;
                }
                switch (c) {
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_VOLUME_TYPE:
                        a->volume_type = volume_type_arg(optarg);
                        if (!a->volume_type)
                                return usage_error("--volume-type must be OS, DATA or ALL, not '%s'", optarg);
                        break;
                case ARG_KEYVAULT_URL:
                        a->keyvault_url = optarg;
                        break;
                case ARG_KEYVAULT_RESOURCE_ID:
                        a->keyvault_resource_id = optarg;
                        break;
                case ARG_KEK_URL:
                        a->kek_url = optarg;
                        break;
                case ARG_KEK_VAULT_RESOURCE_ID:
                        a->kek_vault_resource_id = optarg;
                        break;
                case ARG_KEK_ALGORITHM:
                        a->kek_algorithm = optarg;
                        break;
                case ARG_FORMAT_ALL:
                        a->format_all = true;
                        break;
                case ARG_YES:
                        a->yes = true;
                        break;
                case ARG_SKIP_SNAPSHOT_CHECK:
                        a->skip_snapshot_check = true;
                        break;
                case ARG_DRY_RUN:
                        a->dry_run = true;
                        break;
                case ARG_NO_WAIT:
                        a->no_wait = true;
                        break;
                case ARG_DEVICE:
                        a->device = optarg;
                        break;
                case ARG_GENERATION:
                        if (!ade_restore_parse_generation(optarg, &a->generation))
                                return usage_error("--generation must be 1 to 999999, not '%s'", optarg);
                        break;
                }
        }
        return 0;
}

#define ALLOW(x) (1U << ((x)-ARG_JSON))

/* What the last Enable asked for: new disks get the same. */
static void print_enrollment(json_object *reply) {
        json_object *e = NULL;

        if (!json_object_object_get_ex(reply, "enrollment", &e) || !json_object_is_type(e, json_type_object)) {
                printf("Enrolled:     no ('adectl enable' enrolls this machine)\n");
                return;
        }
        printf("Enrolled:     %s since %s; vault %s", strna(jstr(e, "volumeType")), strna(jstr(e, "since")),
                strna(jstr(e, "keyVaultUrl")));
        if (jstr(e, "kekUrl"))
                printf("; KEK %s (%s)", jstr(e, "kekUrl"), strna(jstr(e, "kekAlgorithm")));
        if (jbool(e, "skipSnapshotCheck"))
                printf("; snapshot check skipped");
        if (jbool(e, "formatAll"))
                printf("; format-all");
        printf("\n");
}

static int verb_show(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        VerbArgs a = {};
        json_object *volumes = NULL;
        int r;

        r = parse_verb_args("show", argc, argv, ALLOW(ARG_VOLUME_TYPE), &a);
        if (r != 0)
                return r;
        if (optind < argc)
                return usage_error("show: unexpected argument '%s'", argv[optind]);
        if (a.volume_type)
                ade_json_add_string(params, "volumeType", a.volume_type);
        r = call_once("show", IFACE "Show", params, &reply);
        if (r != EXIT_DONE)
                return r;
        if (arg_json) {
                print_json(reply);
                return EXIT_DONE;
        }
        if (jstr(reply, "message"))
                printf("aded: %s\n\n", jstr(reply, "message"));
        printf("OS volume:    %s\nData volumes: %s\n", strna(jstr(reply, "os")), strna(jstr(reply, "data")));
        print_enrollment(reply);
        printf("\n");
        (void)ade_json_get_array(reply, "volumes", &volumes);
        print_volumes_table(volumes);
        return EXIT_DONE;
}

static void print_plan(json_object *plan) {
        json_object *checks = NULL, *steps = NULL;

        if (!plan)
                return;
        (void)ade_json_get_array(plan, "checks", &checks);
        (void)ade_json_get_array(plan, "steps", &steps);
        printf("Checks:\n");
        for (size_t i = 0; checks && i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                printf("  %-4s %s%s%s: %s\n",
                        jbool(c, "passed")  ? "ok"
                        : jbool(c, "fatal") ? "FAIL"
                                            : "warn",
                        strna(jstr(c, "name")), jstr(c, "device") ? " " : "", strempty(jstr(c, "device")),
                        strempty(jstr(c, "message")));
        }
        printf("Steps:\n");
        for (size_t i = 0; steps && i < json_object_array_length(steps); i++)
                printf("  %zu. %s\n", i + 1, json_object_get_string(json_object_array_get_idx(steps, i)));
}

/* True when a fatal check of the plan failed: the real run would be refused. */
static bool plan_refused(json_object *plan) {
        json_object *checks = NULL;

        (void)ade_json_get_array(plan, "checks", &checks);
        for (size_t i = 0; checks && i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                if (!jbool(c, "passed") && jbool(c, "fatal"))
                        return true;
        }
        return false;
}

/* "All" went on with the data volumes while the plan refused the OS volume (docs/architecture.md
 * §9): says so, and the exit code is 3 as for a refusal. */
static int enable_left_plain(json_object *plan) {
        json_object *checks = NULL;
        bool said = false;

        (void)ade_json_get_array(plan, "checks", &checks);
        for (size_t i = 0; checks && i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);

                if (jbool(c, "passed") || !jbool(c, "fatal") || !startswith(strempty(jstr(c, "name")), "os-"))
                        continue;
                if (!said && !arg_json)
                        fprintf(stderr, "adectl: enable: the OS volume %s is left plain: %s: %s\n",
                                strna(jstr(c, "device")), strna(jstr(c, "name")), strna(jstr(c, "message")));
                said = true;
        }
        return said ? EXIT_REFUSED : EXIT_DONE;
}

static int verb_enable(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        json_object *plan = NULL, *volumes = NULL;
        VerbArgs a = {};
        int r;

        r = parse_verb_args("enable", argc, argv,
                ALLOW(ARG_VOLUME_TYPE) | ALLOW(ARG_KEYVAULT_URL) | ALLOW(ARG_KEYVAULT_RESOURCE_ID) |
                        ALLOW(ARG_KEK_URL) | ALLOW(ARG_KEK_VAULT_RESOURCE_ID) | ALLOW(ARG_KEK_ALGORITHM) |
                        ALLOW(ARG_FORMAT_ALL) | ALLOW(ARG_YES) | ALLOW(ARG_SKIP_SNAPSHOT_CHECK) | ALLOW(ARG_DRY_RUN) |
                        ALLOW(ARG_NO_WAIT),
                &a);
        if (r != 0)
                return r;
        if (optind < argc)
                return usage_error("enable: unexpected argument '%s'", argv[optind]);
        if (!a.volume_type)
                return usage_error("%s", "enable needs --volume-type OS, DATA or ALL");
        if (a.format_all && !a.yes)
                return usage_error("%s", "--format-all destroys every byte on the volumes; confirm with --yes");
        if (a.yes && !a.format_all)
                return usage_error("%s", "--yes only confirms --format-all");

        ade_json_add_string(params, "volumeType", a.volume_type);
        ade_json_add_string(params, "keyVaultUrl", a.keyvault_url);
        ade_json_add_string(params, "keyVaultResourceId", a.keyvault_resource_id);
        ade_json_add_string(params, "kekUrl", a.kek_url);
        ade_json_add_string(params, "kekVaultResourceId", a.kek_vault_resource_id);
        ade_json_add_string(params, "kekAlgorithm", a.kek_algorithm);
        if (a.format_all)
                json_object_object_add(params, "formatAll", json_object_new_boolean(true));
        if (a.skip_snapshot_check)
                json_object_object_add(params, "skipSnapshotCheck", json_object_new_boolean(true));
        if (a.dry_run)
                json_object_object_add(params, "dryRun", json_object_new_boolean(true));

        if (a.dry_run || a.no_wait)
                r = call_once("enable", IFACE "Enable", params, &reply);
        else
                r = call_with_progress("enable", IFACE "Enable", params, &reply);
        if (r != EXIT_DONE)
                return r;
        (void)ade_json_get_object(reply, "plan", &plan);
        if (arg_json) {
                if (a.dry_run || a.no_wait)
                        print_json(reply);
                return plan_refused(plan) ? EXIT_REFUSED : EXIT_DONE;
        }
        (void)ade_json_get_array(reply, "volumes", &volumes);
        if (a.dry_run) {
                print_plan(plan);
                printf("\nDry run: nothing was changed.\n");
                return plan_refused(plan) ? EXIT_REFUSED : EXIT_DONE;
        }
        if (a.no_wait) {
                bool queued = false;

                if (ade_json_get_bool(reply, "queued", &queued) >= 0 && queued)
                        printf("Queued: another job or call is running; this Enable starts once it is done (its "
                               "checks first). Follow it with 'adectl watch' or 'adectl show', or aded's log.\n");
                else
                        printf("Started; follow it with 'adectl watch' or 'adectl show'.\n");
                return enable_left_plain(plan);
        }
        printf("\n");
        print_volumes_table(volumes);
        return enable_left_plain(plan);
}

static int verb_disable(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        json_object *volumes = NULL;
        VerbArgs a = {};
        int r;

        r = parse_verb_args("disable", argc, argv, ALLOW(ARG_VOLUME_TYPE) | ALLOW(ARG_NO_WAIT) | ALLOW(ARG_DEVICE), &a);
        if (r != 0)
                return r;
        if (optind < argc && !a.device)
                a.device = argv[optind++];
        if (optind < argc)
                return usage_error("disable: unexpected argument '%s'", argv[optind]);
        if (!a.volume_type)
                return usage_error("%s", "disable needs --volume-type DATA or ALL");
        ade_json_add_string(params, "volumeType", a.volume_type);
        if (a.device)
                ade_json_add_string(params, "device", a.device);
        if (a.no_wait) {
                /* Without "more" aded still answers when the job ends; send it oneway instead. */
                _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;

                r = connect_daemon(&c);
                if (r < 0)
                        return -r;
                r = ade_varlink_client_send_oneway(c, IFACE "Disable", params);
                if (r < 0) {
                        fprintf(stderr, "adectl: disable: cannot send to aded at %s: %s\n", arg_socket, strerror(-r));
                        return EXIT_FAILED;
                }
                printf("Requested; follow it with 'adectl watch' or 'adectl show'.\n");
                return EXIT_DONE;
        }
        r = call_with_progress("disable", IFACE "Disable", params, &reply);
        if (r != EXIT_DONE || arg_json)
                return r;
        (void)ade_json_get_array(reply, "volumes", &volumes);
        print_volumes_table(volumes);
        return EXIT_DONE;
}

static int verb_unlock(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        json_object *volumes = NULL;
        VerbArgs a = {};
        int r;

        r = parse_verb_args("unlock", argc, argv, ALLOW(ARG_DEVICE), &a);
        if (r != 0)
                return r;
        if (optind < argc && !a.device)
                a.device = argv[optind++];
        if (optind < argc)
                return usage_error("unlock: unexpected argument '%s'", argv[optind]);
        ade_json_add_string(params, "device", a.device);
        r = call_with_progress("unlock", IFACE "Unlock", params, &reply);
        if (r != EXIT_DONE || arg_json)
                return r;
        (void)ade_json_get_array(reply, "volumes", &volumes);
        if (json_object_array_length(volumes) == 0)
                printf("No locked volume to open.\n");
        else
                print_volumes_table(volumes);
        return EXIT_DONE;
}

static int verb_rotate(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        json_object *volumes = NULL;
        VerbArgs a = {};
        int r;

        r = parse_verb_args("rotate", argc, argv, ALLOW(ARG_KEK_URL), &a);
        if (r != 0)
                return r;
        if (optind < argc)
                return usage_error("rotate: unexpected argument '%s'", argv[optind]);
        ade_json_add_string(params, "kekUrl", a.kek_url);
        r = call_with_progress("rotate", IFACE "RotateKey", params, &reply);
        if (r != EXIT_DONE || arg_json)
                return r;
        (void)ade_json_get_array(reply, "volumes", &volumes);
        if (json_object_array_length(volumes) == 0)
                printf("No encrypted volume: nothing to rotate.\n");
        else
                print_volumes_table(volumes);
        return EXIT_DONE;
}

static int verb_restore_header(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        const char *kept;
        bool dry_run = false;
        VerbArgs a = {};
        int r;

        r = parse_verb_args("restore-header", argc, argv,
                ALLOW(ARG_DEVICE) | ALLOW(ARG_GENERATION) | ALLOW(ARG_DRY_RUN) | ALLOW(ARG_YES), &a);
        if (r != 0)
                return r;
        if (optind < argc && !a.device)
                a.device = argv[optind++];
        if (optind < argc)
                return usage_error("restore-header: unexpected argument '%s'", argv[optind]);
        if (!a.device)
                return usage_error("%s", "restore-header needs a DEVICE");
        if (!a.dry_run && !a.yes)
                return usage_error("%s",
                        "restore-header writes the device's header: confirm with --yes (or check first "
                        "with --dry-run)");
        ade_json_add_string(params, "device", a.device);
        if (a.generation)
                json_object_object_add(params, "generation", json_object_new_int((int)a.generation));
        if (a.dry_run)
                json_object_object_add(params, "dryRun", json_object_new_boolean(true));
        r = call_once("restore-header", IFACE "RestoreHeader", params, &reply);
        if (r != EXIT_DONE)
                return r;
        if (arg_json) {
                print_json(reply);
                return EXIT_DONE;
        }
        (void)ade_json_get_bool(reply, "dryRun", &dry_run);
        kept = jstr(reply, "kept");
        if (dry_run)
                printf("%s: generation %" PRIi64 " (%s) of volume %s checks out and opens with the escrowed key; "
                       "nothing was written (dry run)\n",
                        a.device, jint(reply, "generation"), strna(jstr(reply, "blob")), strna(jstr(reply, "volume")));
        else
                printf("%s: header restored from generation %" PRIi64
                       " (%s) of volume %s; the escrowed key opens it%s%s\n",
                        a.device, jint(reply, "generation"), strna(jstr(reply, "blob")), strna(jstr(reply, "volume")),
                        kept ? "; what it held before is in " : "", strempty(kept));
        return EXIT_DONE;
}

static int verb_adopt(int argc, char *argv[]) {
        _cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
        json_object *volumes = NULL;
        bool dry_run = false;
        size_t refused = 0, n;
        VerbArgs a = {};
        int r;

        r = parse_verb_args("adopt", argc, argv, ALLOW(ARG_DRY_RUN), &a);
        if (r != 0)
                return r;
        if (optind < argc)
                return usage_error("adopt: unexpected argument '%s'", argv[optind]);
        if (a.dry_run)
                json_object_object_add(params, "dryRun", json_object_new_boolean(true));
        r = call_once("adopt", IFACE "Adopt", params, &reply);
        if (r != EXIT_DONE)
                return r;
        (void)ade_json_get_bool(reply, "dryRun", &dry_run);
        (void)ade_json_get_array(reply, "volumes", &volumes);
        n = volumes ? json_object_array_length(volumes) : 0;
        for (size_t i = 0; i < n; i++)
                refused += streq_ptr(jstr(json_object_array_get_idx(volumes, i), "action"), "refused");
        if (arg_json)
                print_json(reply);
        else {
                if (n == 0)
                        printf("no crypttab line uses ADE's key file or keyscript, and ADE's azure_crypt_mount "
                               "names no other volume: nothing to adopt\n");
                for (size_t i = 0; i < n; i++) {
                        json_object *v = json_object_array_get_idx(volumes, i);

                        printf("%s (%s, LUKS%" PRIi64 "): %s: %s\n", strna(jstr(v, "name")), strna(jstr(v, "device")),
                                jint(v, "luksVersion"), strna(jstr(v, "action")), strna(jstr(v, "reason")));
                }
                if (!dry_run && n > refused)
                        printf("remove ADE's extension now (it rewrites crypttab from its own backups): "
                               "az vm extension delete -g GROUP --vm-name VM -n AzureDiskEncryptionForLinux\n");
        }
        return refused > 0 ? EXIT_REFUSED : EXIT_DONE;
}

static int on_watch(json_object *p, const char *error, unsigned flags, void *userdata) {
        json_object *volumes = NULL;
        time_t t = time(NULL);
        char when[32];

        (void)flags;
        if (error) {
                *(int *)userdata = print_error("watch", error, p);
                return 0;
        }
        if (arg_json) {
                print_json(p);
                return 0;
        }
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
        (void)ade_json_get_array(p, "volumes", &volumes);
        for (size_t i = 0; volumes && i < json_object_array_length(volumes); i++) {
                json_object *v = json_object_array_get_idx(volumes, i);
                char sdone[32], stotal[32];

                format_bytes((uint64_t)jint(v, "bytesDone"), sdone, sizeof(sdone));
                format_bytes((uint64_t)jint(v, "bytesTotal"), stotal, sizeof(stotal));
                printf("%s %s: %s %.0f%% (%s of %s)%s%s\n", when, strna(jstr(v, "device")), strna(jstr(v, "state")),
                        floor(jdouble(v, "progress") * 100.0), sdone, stotal, jstr(v, "message") ? " - " : "",
                        strempty(jstr(v, "message")));
        }
        fflush(stdout);
        return 0;
}

static int verb_watch(int argc, char *argv[]) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        VerbArgs a = {};
        int r, ret = EXIT_DONE;

        r = parse_verb_args("watch", argc, argv, 0, &a);
        if (r != 0)
                return r;
        if (optind < argc)
                return usage_error("watch: unexpected argument '%s'", argv[optind]);
        r = connect_daemon(&c);
        if (r < 0)
                return -r;
        ade_varlink_client_set_timeout(c, 0);
        r = ade_varlink_client_call_more(c, IFACE "Watch", NULL, on_watch, &ret);
        if (r < 0) {
                fprintf(stderr, "adectl: watch: the connection to aded at %s ended: %s\n", arg_socket, strerror(-r));
                return EXIT_FAILED;
        }
        return ret;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x200, ARG_SOCKET, ARG_GJSON };
        static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION}, {"socket", required_argument, NULL, ARG_SOCKET},
                {"json", no_argument, NULL, ARG_GJSON}, {}};
        static const struct {
                const char *name;
                int (*run)(int argc, char *argv[]);
        } verbs[] = {
                {"show", verb_show},
                {"enable", verb_enable},
                {"disable", verb_disable},
                {"unlock", verb_unlock},
                {"rotate", verb_rotate},
                {"restore-header", verb_restore_header},
                {"adopt", verb_adopt},
                {"watch", verb_watch},
        };
        int c;

        ade_log_set_callback(log_to_stderr, NULL);
        if (getenv("ADE_SOCKET"))
                arg_socket = getenv("ADE_SOCKET");

        /* "+": stop at the verb; its options are parsed by the verb. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_DONE;
                case ARG_VERSION:
                        printf("adectl %s\n", PACKAGE_VERSION);
                        return EXIT_DONE;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_GJSON:
                        arg_json = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc)
                return usage_error(
                        "%s", "missing command (show, enable, disable, unlock, rotate, restore-header, adopt, watch)");

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].run(argc - optind, argv + optind);
        return usage_error("unknown command '%s'", argv[optind]);
}
