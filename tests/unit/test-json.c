/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-json.h"
#include "ade-test.h"

static json_object *parse(const char *s) {
        json_object *o = NULL;
        ck_assert_int_eq(ade_json_parse(s, strlen(s), &o), 0);
        return o;
}

START_TEST(test_parse_object) {
        _cleanup_json_ json_object *o = parse("{\"a\": 1, \"b\": \"x\"}\n");
        ck_assert(json_object_is_type(o, json_type_object));
}
END_TEST

START_TEST(test_parse_truncated_refused) {
        json_object *o = NULL;
        const char *s = "{\"access_token\": \"eyJ0";
        ck_assert_int_eq(ade_json_parse(s, strlen(s), &o), -EBADMSG);
        ck_assert_ptr_null(o);
}
END_TEST

START_TEST(test_parse_trailing_garbage_refused) {
        json_object *o = NULL;
        const char *s = "{\"a\":1} {\"b\":2}";
        ck_assert_int_eq(ade_json_parse(s, strlen(s), &o), -EBADMSG);
        ck_assert_int_eq(ade_json_parse("{}x", 3, &o), -EBADMSG);
}
END_TEST

START_TEST(test_parse_nul_and_empty_refused) {
        json_object *o = NULL;
        ck_assert_int_eq(ade_json_parse("{\"a\":\0\"b\"}", 10, &o), -EBADMSG);
        ck_assert_int_eq(ade_json_parse("", 0, &o), -EBADMSG);
        ck_assert_int_eq(ade_json_parse("null", 4, &o), -EBADMSG);
        ck_assert_int_eq(ade_json_parse("[1,]", 4, &o), -EBADMSG);
}
END_TEST

START_TEST(test_parse_too_deep_refused) {
        char buf[300];
        json_object *o = NULL;
        size_t n = 0;

        for (int i = 0; i < 100; i++)
                buf[n++] = '[';
        for (int i = 0; i < 100; i++)
                buf[n++] = ']';
        ck_assert_int_eq(ade_json_parse(buf, n, &o), -EBADMSG);
}
END_TEST

START_TEST(test_typed_getters) {
        _cleanup_json_ json_object *o = parse("{\"s\":\"v\",\"i\":42,\"b\":true,\"o\":{},\"a\":[1]}");
        const char *s;
        int64_t i;
        bool b;
        json_object *x;

        ck_assert_int_eq(ade_json_get_string(o, "s", &s), 0);
        ck_assert_str_eq(s, "v");
        ck_assert_int_eq(ade_json_get_int64(o, "i", &i), 0);
        ck_assert_int_eq(i, 42);
        ck_assert_int_eq(ade_json_get_bool(o, "b", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(ade_json_get_object(o, "o", &x), 0);
        ck_assert_int_eq(ade_json_get_array(o, "a", &x), 0);
}
END_TEST

START_TEST(test_getters_missing_and_mistyped) {
        _cleanup_json_ json_object *o = parse("{\"s\":\"v\",\"i\":42,\"n\":null}");
        const char *s = "untouched";
        int64_t i = 7;
        bool b = false;

        ck_assert_int_eq(ade_json_get_string(o, "missing", &s), -ENOENT);
        ck_assert_int_eq(ade_json_get_string(o, "n", &s), -ENOENT);
        ck_assert_int_eq(ade_json_get_string(o, "i", &s), -EBADMSG);
        ck_assert_int_eq(ade_json_get_int64(o, "s", &i), -EBADMSG);
        ck_assert_int_eq(ade_json_get_bool(o, "s", &b), -EBADMSG);
        ck_assert_str_eq(s, "untouched");
        ck_assert_int_eq(i, 7);
}
END_TEST

START_TEST(test_getter_on_non_object) {
        _cleanup_json_ json_object *a = parse("[1,2]");
        const char *s;
        ck_assert_int_eq(ade_json_get_string(a, "x", &s), -EINVAL);
        ck_assert_int_eq(ade_json_get_string(NULL, "x", &s), -EINVAL);
}
END_TEST

START_TEST(test_lenient_accepts_imds_strings) {
        _cleanup_json_ json_object *o = parse("{\"expires_in\":\"3599\",\"n\":3599,\"t\":\"true\",\"f\":false}");
        int64_t v;
        bool b;

        ck_assert_int_eq(ade_json_get_int64_lenient(o, "expires_in", &v), 0);
        ck_assert_int_eq(v, 3599);
        ck_assert_int_eq(ade_json_get_int64_lenient(o, "n", &v), 0);
        ck_assert_int_eq(v, 3599);
        ck_assert_int_eq(ade_json_get_bool_lenient(o, "t", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(ade_json_get_bool_lenient(o, "f", &b), 0);
        ck_assert(!b);
}
END_TEST

START_TEST(test_lenient_refuses_garbage) {
        _cleanup_json_ json_object *o =
                parse("{\"a\":\"12abc\",\"b\":\"\",\"c\":\"yes\",\"d\":[],\"e\":\"99999999999999999999\"}");
        int64_t v = 1;
        bool b;

        ck_assert_int_eq(ade_json_get_int64_lenient(o, "a", &v), -EBADMSG);
        ck_assert_int_eq(ade_json_get_int64_lenient(o, "b", &v), -EBADMSG);
        ck_assert_int_eq(ade_json_get_int64_lenient(o, "d", &v), -EBADMSG);
        ck_assert_int_eq(ade_json_get_int64_lenient(o, "e", &v), -EBADMSG);
        ck_assert_int_eq(ade_json_get_bool_lenient(o, "c", &b), -EBADMSG);
        ck_assert_int_eq(v, 1);
}
END_TEST

START_TEST(test_path_string) {
        _cleanup_json_ json_object *o = parse("{\"compute\":{\"location\":\"westeurope\",\"n\":1}}");
        const char *s;

        ck_assert_int_eq(ade_json_get_path_string(o, &s, "compute", "location", NULL), 0);
        ck_assert_str_eq(s, "westeurope");
        ck_assert_int_eq(ade_json_get_path_string(o, &s, "compute", "zone", NULL), -ENOENT);
        ck_assert_int_eq(ade_json_get_path_string(o, &s, "compute", "n", NULL), -EBADMSG);
        ck_assert_int_eq(ade_json_get_path_string(o, &s, "network", "x", NULL), -ENOENT);
}
END_TEST

START_TEST(test_to_string_keeps_slashes) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ char *s = NULL;

        ck_assert_int_eq(ade_json_add_string(o, "url", "https://x/keys/k"), 0);
        ck_assert_int_eq(ade_json_add_string(o, "skip", NULL), 0);
        s = ade_json_to_string(o);
        ck_assert_str_eq(s, "{\"url\":\"https://x/keys/k\"}");
}
END_TEST

int main(void) {
        Suite *s = suite_create("json");
        TCase *tc = ade_test_case("json");

        tcase_add_test(tc, test_parse_object);
        tcase_add_test(tc, test_parse_truncated_refused);
        tcase_add_test(tc, test_parse_trailing_garbage_refused);
        tcase_add_test(tc, test_parse_nul_and_empty_refused);
        tcase_add_test(tc, test_parse_too_deep_refused);
        tcase_add_test(tc, test_typed_getters);
        tcase_add_test(tc, test_getters_missing_and_mistyped);
        tcase_add_test(tc, test_getter_on_non_object);
        tcase_add_test(tc, test_lenient_accepts_imds_strings);
        tcase_add_test(tc, test_lenient_refuses_garbage);
        tcase_add_test(tc, test_path_string);
        tcase_add_test(tc, test_to_string_keeps_slashes);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
