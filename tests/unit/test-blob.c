/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Blob Storage client's pure parts: the XML reader for Storage's answers (lib/ade-xml.h), blob
 * names and metadata it sends, and the refusal to build a client for anything but a container. The
 * requests themselves run against Azurite in tests/integration/blob-azurite.sh. */
#include <errno.h>
#include <string.h>

#include "ade-blob.h"
#include "ade-test.h"
#include "ade-xml.h"

typedef struct Seen {
        char *lines[64];
        size_t n;
} Seen;

static int record(const char *const *path, size_t depth, const char *text, void *userdata) {
        Seen *s = userdata;
        char buf[512] = "";

        ck_assert_uint_lt(s->n, ELEMENTSOF(s->lines));
        for (size_t i = 0; i < depth; i++) {
                strcat(buf, "/");
                strcat(buf, path[i]);
        }
        strcat(buf, "=");
        strcat(buf, text ? text : "(children)");
        s->lines[s->n++] = strdup(buf);
        return 0;
}

static void seen_done(Seen *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->lines[i]);
        s->n = 0;
}

static int walk(const char *xml, Seen *s) {
        seen_done(s);
        return ade_xml_walk(xml, strlen(xml), record, s);
}

START_TEST(test_xml_list_blobs_answer) {
        static const char xml[] =
                "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                "<EnumerationResults ServiceEndpoint=\"https://a.blob.core.windows.net/\" ContainerName=\"c\">"
                "<Prefix>h/</Prefix><MaxResults>2</MaxResults>"
                "<Blobs><Blob><Name>h/a&amp;b &lt;1&gt; &#x263A;&#65;</Name>"
                "<Properties><Content-Length>84</Content-Length></Properties>"
                "<Metadata><AdeVolume>v&quot;1&apos;</AdeVolume><encryptiondata>{\"a\":1}</encryptiondata></Metadata>"
                "</Blob></Blobs><NextMarker /><!-- a comment --></EnumerationResults>\r\n";
        Seen s = {};

        ck_assert_int_eq(walk(xml, &s), 0);
        ck_assert_uint_eq(s.n, 12);
        ck_assert_str_eq(s.lines[0], "/EnumerationResults/Prefix=h/");
        ck_assert_str_eq(s.lines[2], "/EnumerationResults/Blobs/Blob/Name=h/a&b <1> \xE2\x98\xBA"
                                     "A");
        ck_assert_str_eq(s.lines[3], "/EnumerationResults/Blobs/Blob/Properties/Content-Length=84");
        ck_assert_str_eq(s.lines[4], "/EnumerationResults/Blobs/Blob/Properties=(children)");
        ck_assert_str_eq(s.lines[5], "/EnumerationResults/Blobs/Blob/Metadata/AdeVolume=v\"1'");
        ck_assert_str_eq(s.lines[6], "/EnumerationResults/Blobs/Blob/Metadata/encryptiondata={\"a\":1}");
        ck_assert_str_eq(s.lines[10], "/EnumerationResults/NextMarker=");
        ck_assert_str_eq(s.lines[11], "/EnumerationResults=(children)");
        seen_done(&s);
}
END_TEST

START_TEST(test_xml_refused) {
        static const char *const bad[] = {
                "",
                "   ",
                "<a>",
                "<a></b>",
                "<a><b></a></b>",
                "<a></a><b></b>",
                "text<a></a>",
                "<a>&unknown;</a>",
                "<a>&#0;</a>",
                "<a>&#xD800;</a>",
                "<a>&#x110000;</a>",
                "<a>&#;</a>",
                "<a>& b</a>",
                "<a><![CDATA[x]]></a>",
                "<!DOCTYPE a><a></a>",
                "<a><?pi x?></a>",
                "<a><!-- open</a>",
                "<a b=\"x></a>",
                "</a>",
                "<>x</>",
                "<a><b><c><d><e><f><g><h><i><j><k><l><m><n><o><p><q></q></p></o></n></m></l></k></j></i></h></g></f>"
                "</e></d></c></b></a>",
        };
        Seen s = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(walk(bad[i], &s) == -EBADMSG, "accepted: %s", bad[i]);
        /* An embedded NUL. */
        ck_assert_int_eq(ade_xml_walk("<a>\0</a>", 8, record, &s), -EBADMSG);
        seen_done(&s);
}
END_TEST

static int stop_at_second(const char *const *path, size_t depth, const char *text, void *userdata) {
        unsigned *n = userdata;
        (void)path;
        (void)depth;
        (void)text;
        return ++*n == 2 ? -ECANCELED : 0;
}

START_TEST(test_xml_callback_error_returned) {
        unsigned n = 0;
        ck_assert_int_eq(ade_xml_walk("<a><b/><c/><d/></a>", 19, stop_at_second, &n), -ECANCELED);
        ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(test_blob_names) {
        ck_assert(ade_blob_name_is_valid("headers/vm-1/0b8e2c4a-1111-2222-3333-444455556666/000001.20261207T1800Z"));
        ck_assert(ade_blob_name_is_valid("a"));
        ck_assert(ade_blob_name_is_valid("a.b_c-d"));
        ck_assert(!ade_blob_name_is_valid(NULL));
        ck_assert(!ade_blob_name_is_valid(""));
        ck_assert(!ade_blob_name_is_valid("/a"));
        ck_assert(!ade_blob_name_is_valid("a/"));
        ck_assert(!ade_blob_name_is_valid("a//b"));
        ck_assert(!ade_blob_name_is_valid("a/../b"));
        ck_assert(!ade_blob_name_is_valid("./a"));
        ck_assert(!ade_blob_name_is_valid(".."));
        ck_assert(!ade_blob_name_is_valid("a b"));
        ck_assert(!ade_blob_name_is_valid("a%2fb"));
        ck_assert(!ade_blob_name_is_valid("a?b"));
        ck_assert(!ade_blob_name_is_valid("a#b"));
        ck_assert(!ade_blob_name_is_valid("a\\b"));
        ck_assert(!ade_blob_name_is_valid("@evil.example"));
}
END_TEST

START_TEST(test_blob_metadata) {
        char *pairs[] = {"AdeVolume", "v1", "encryptiondata", "{\"a\": 1}", NULL};

        ck_assert(ade_blob_metadata_is_valid("AdeVolume", "0b8e2c4a"));
        ck_assert(ade_blob_metadata_is_valid("_x1", ""));
        ck_assert(ade_blob_metadata_is_valid("encryptiondata", "{\"a\": 1, \"b\": \"c d\"}"));
        ck_assert(!ade_blob_metadata_is_valid("1x", "v"));
        ck_assert(!ade_blob_metadata_is_valid("a-b", "v"));
        ck_assert(!ade_blob_metadata_is_valid("", "v"));
        ck_assert(!ade_blob_metadata_is_valid("a", " v"));
        ck_assert(!ade_blob_metadata_is_valid("a", "v "));
        ck_assert(!ade_blob_metadata_is_valid("a", "v\r\nx-ms-meta-b: c"));
        ck_assert(!ade_blob_metadata_is_valid("a", "caf\xC3\xA9"));
        ck_assert_str_eq(ade_blob_metadata_get(pairs, "adevolume"), "v1");
        ck_assert_str_eq(ade_blob_metadata_get(pairs, "EncryptionData"), "{\"a\": 1}");
        ck_assert_ptr_null(ade_blob_metadata_get(pairs, "other"));
        ck_assert_ptr_null(ade_blob_metadata_get(NULL, "other"));
}
END_TEST

static int no_token(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        (void)userdata;
        (void)resource;
        (void)tenant;
        (void)ret_token;
        (void)ret_expires_on;
        (void)ret_error;
        ck_abort_msg("no token may be asked for");
        return -EIO;
}

START_TEST(test_client_only_for_containers) {
        _cleanup_(ade_credential_freep) AdeCredential *cred = NULL;
        AdeBlobClient *c = NULL;

        ck_assert_int_eq(ade_credential_new(no_token, NULL, NULL, &cred), 0);
        ck_assert_int_eq(ade_blob_client_new("http://a.blob.core.windows.net/abc", cred, NULL, NULL, &c), -EINVAL);
        ck_assert_int_eq(ade_blob_client_new("https://a.blob.core.windows.net", cred, NULL, NULL, &c), -EINVAL);
        ck_assert_int_eq(
                ade_blob_client_new("https://a.blob.core.windows.net/abc?sv=x", cred, NULL, NULL, &c), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(ade_blob_client_new("https://127.0.0.1:10000/devstoreaccount1/abc", cred, NULL, NULL, &c), 0);
        ck_assert_str_eq(ade_blob_client_url(c), "https://127.0.0.1:10000/devstoreaccount1/abc");
        /* Names that would leave the container are refused before any request (and any token). */
        ck_assert_int_eq(ade_blob_put(c, "../other/x", "x", 1, NULL, NULL), -EINVAL);
        ck_assert_int_eq(ade_blob_put(c, "x", "x", 1, (char *[]){"bad-name", "v", NULL}, NULL), -EINVAL);
        ck_assert_int_eq(ade_blob_put(c, "x", "x", 1, (char *[]){"ok", "v\nInjected: 1", NULL}, NULL), -EINVAL);
        ade_blob_client_free(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("blob");
        TCase *tc = ade_test_case("core");

        tcase_add_test(tc, test_xml_list_blobs_answer);
        tcase_add_test(tc, test_xml_refused);
        tcase_add_test(tc, test_xml_callback_error_returned);
        tcase_add_test(tc, test_blob_names);
        tcase_add_test(tc, test_blob_metadata);
        tcase_add_test(tc, test_client_only_for_containers);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
