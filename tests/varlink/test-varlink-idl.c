/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-disk-encryption-idl.h"
#include "ade-json.h"
#include "ade-test.h"
#include "ade-varlink-idl.h"
#include "ade-varlink.h"

static const char certification_like[] =
        "# comment\n"
        "interface org.varlink.certification\n"
        "type Interface (\n  foo: ?[]?[string](foo, bar, baz),\n  anon: (foo: bool, bar: bool)\n)\n"
        "type MyType (object: object, enum: (one, two, three), struct: (first: int, second: string),\n"
        "  array: []string, dictionary: [string]string, stringset: [string](), nullable: ?string,\n"
        "  nullable_array_struct: ?[](first: int, second: string), interface: Interface)\n"
        "method Test09(client_id: string, set: [string]()) -> (mytype: MyType)\n"
        "method Test11(client_id: string, last_more_replies: []string) -> ()\n"
        "error CertificationError (wants: object, got: object)\n";

static AdeVarlinkInterface *parse_ok(const char *text) {
        AdeVarlinkInterface *iface = NULL;

        ck_assert_int_eq(ade_varlink_interface_parse(text, &iface), 0);
        return iface;
}

static int validate_out(AdeVarlinkInterface *iface, const char *method, const char *json, char **ret_field) {
        _cleanup_json_ json_object *o = NULL;

        ck_assert_int_eq(ade_json_parse(json, strlen(json), &o), 0);
        return ade_varlink_interface_validate_output(iface, method, o, ret_field);
}

START_TEST(test_parse_disk_encryption) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(ade_varlink_idl_disk_encryption);
        const char *const *m = ade_varlink_interface_get_methods(iface);

        ck_assert_str_eq(ade_varlink_interface_get_name(iface), "io.ade.DiskEncryption");
        ck_assert_str_eq(m[0], "Show");
        ck_assert_str_eq(m[1], "Enable");
        ck_assert_str_eq(m[2], "Disable");
        ck_assert_str_eq(m[3], "Unlock");
        ck_assert_str_eq(m[4], "RotateKey");
        ck_assert_str_eq(m[5], "Watch");
        ck_assert_str_eq(m[6], "RestoreHeader");
        ck_assert_str_eq(m[7], "Adopt");
        ck_assert_ptr_null(m[8]);
        ck_assert(ade_varlink_interface_has_error(iface, "PermissionDenied"));
        ck_assert(ade_varlink_interface_has_error(iface, "KeyVaultError"));
        ck_assert(ade_varlink_interface_has_error(iface, "BackupNotFound"));
        ck_assert(ade_varlink_interface_has_error(iface, "RestoreRefused"));
        ck_assert(ade_varlink_interface_has_error(iface, "RestoreFailed"));
        ck_assert(ade_varlink_interface_has_error(iface, "AdoptFailed"));
        ck_assert(!ade_varlink_interface_has_error(iface, "Show"));
}
END_TEST

START_TEST(test_embedded_text_equals_file) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *top = getenv("top_srcdir");
        size_t size = 0;
        FILE *f;

        ck_assert_int_gt(asprintf(&path, "%s/daemon/io.ade.DiskEncryption.varlink", top ?: ".."), 0);
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        ck_assert_int_gt(getdelim(&text, &size, '\0', f), 0);
        fclose(f);
        ck_assert_str_eq(ade_varlink_idl_disk_encryption, text);
}
END_TEST

START_TEST(test_show_reply_validates) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(ade_varlink_idl_disk_encryption);

        ck_assert_int_eq(
                validate_out(iface, "Show",
                        "{\"os\":\"NotEncrypted\",\"data\":\"EncryptionInProgress\",\"volumes\":[{"
                        "\"device\":\"/dev/loop0\",\"uuid\":null,\"type\":\"Data\",\"mountpoint\":\"/mnt\","
                        "\"state\":\"EncryptionInProgress\",\"progress\":0.42,\"bytesDone\":42,"
                        "\"bytesTotal\":100,\"mode\":\"InPlace\",\"header\":\"Attached\",\"unlocked\":true,"
                        "\"mapper\":\"/dev/mapper/ade-x\",\"secretUrl\":null,\"kekUrl\":null,\"message\":null}]}",
                        NULL),
                0);
}
END_TEST

START_TEST(test_show_reply_bad_state) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(ade_varlink_idl_disk_encryption);
        _cleanup_free_ char *field = NULL;

        ck_assert_int_eq(
                validate_out(iface, "Show", "{\"os\":\"Encrypting\",\"data\":\"Encrypted\",\"volumes\":[]}", &field),
                -EBADMSG);
        ck_assert_str_eq(field, "os");
}
END_TEST

START_TEST(test_parse_certification_types) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(certification_like);

        ck_assert_int_eq(
                validate_out(iface, "Test09",
                        "{\"mytype\":{\"object\":{\"a\":1},\"enum\":\"two\",\"struct\":{\"first\":1,\"second\":\"2\"},"
                        "\"array\":[\"one\"],\"dictionary\":{\"foo\":\"Foo\"},\"stringset\":{\"one\":{}},"
                        "\"interface\":{\"foo\":[null,{\"Foo\":\"foo\"}],\"anon\":{\"foo\":true,\"bar\":false}}}}",
                        NULL),
                0);
}
END_TEST

START_TEST(test_set_value_must_be_empty_object) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(certification_like);
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *field = NULL;
        static const char in[] = "{\"client_id\":\"x\",\"set\":{\"one\":{},\"two\":1}}";

        ck_assert_int_eq(ade_json_parse(in, strlen(in), &o), 0);
        ck_assert_int_eq(ade_varlink_interface_validate_input(iface, "Test09", o, &field), -EBADMSG);
        ck_assert_str_eq(field, "set.two");
}
END_TEST

START_TEST(test_nested_enum_in_map_refused) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(certification_like);
        _cleanup_free_ char *field = NULL;

        ck_assert_int_eq(
                validate_out(iface, "Test09",
                        "{\"mytype\":{\"object\":{},\"enum\":\"two\",\"struct\":{\"first\":1,\"second\":\"2\"},"
                        "\"array\":[],\"dictionary\":{},\"stringset\":{},"
                        "\"interface\":{\"foo\":[{\"Foo\":\"qux\"}],\"anon\":{\"foo\":true,\"bar\":false}}}}",
                        &field),
                -EBADMSG);
        ck_assert_str_eq(field, "mytype.interface.foo[0].Foo");
}
END_TEST

START_TEST(test_validate_undeclared_method) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(certification_like);

        ck_assert_int_eq(ade_varlink_interface_validate_input(iface, "Test99", NULL, NULL), -ENOENT);
}
END_TEST

START_TEST(test_parameters_not_object) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = parse_ok(certification_like);
        _cleanup_json_ json_object *a = json_object_new_array();
        _cleanup_free_ char *field = NULL;

        ck_assert_int_eq(ade_varlink_interface_validate_input(iface, "Test11", a, &field), -EBADMSG);
        ck_assert_str_eq(field, "");
}
END_TEST

static const char *const bad_idl[] = {
        "method Foo() -> ()\n",                                              /* no interface line */
        "interface nodots\nmethod Foo() -> ()\n",                            /* not reverse-domain */
        "interface org.example.x\nmethod foo() -> ()\n",                     /* member name lowercase */
        "interface org.example.x\nmethod Foo() -> ()\nmethod Foo() -> ()\n", /* declared twice */
        "interface org.example.x\nmethod Foo(a: Missing) -> ()\n",           /* undeclared type */
        "interface org.example.x\nmethod Foo(a: string -> ()\n",             /* unterminated struct */
        "interface org.example.x\nmethod Foo(a: string, a: int) -> ()\n",    /* duplicate field */
        "interface org.example.x\nmethod Foo(a: ??string) -> ()\n",          /* nullable twice */
        "interface org.example.x\nmethod Foo() ()\n",                        /* no arrow */
        "interface org.example.x\nthing Foo ()\n",                           /* unknown keyword */
        "interface org.example.x\nmethod Foo(a: [int]string) -> ()\n",       /* map keys are strings */
        "interface org.example.x\nmethod Foo(a, b) -> ()\n",                 /* method input is an enum */
        "interface org.example.x\nerror Foo (a, b)\n",                       /* error carries an enum */
        "",
};

START_TEST(test_parse_refuses_bad_idl) {
        AdeVarlinkInterface *iface = NULL;

        ck_assert_int_eq(ade_varlink_interface_parse(bad_idl[_i], &iface), -EBADMSG);
        ck_assert_ptr_null(iface);
}
END_TEST

static Suite *idl_suite(void) {
        Suite *s = suite_create("varlink-idl");
        TCase *tc = ade_test_case("idl");

        tcase_add_test(tc, test_parse_disk_encryption);
        tcase_add_test(tc, test_embedded_text_equals_file);
        tcase_add_test(tc, test_show_reply_validates);
        tcase_add_test(tc, test_show_reply_bad_state);
        tcase_add_test(tc, test_parse_certification_types);
        tcase_add_test(tc, test_set_value_must_be_empty_object);
        tcase_add_test(tc, test_nested_enum_in_map_refused);
        tcase_add_test(tc, test_validate_undeclared_method);
        tcase_add_test(tc, test_parameters_not_object);
        tcase_add_loop_test(tc, test_parse_refuses_bad_idl, 0, ELEMENTSOF(bad_idl));
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(idl_suite());
}
