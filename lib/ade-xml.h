/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A strict reader for the small XML documents Azure Storage answers with (List Blobs, error bodies;
 * docs/protocols.md §9.4): elements, attributes (skipped), character data with the five predefined
 * entities and numeric character references, an XML declaration and comments. Anything else
 * (DOCTYPE, CDATA, processing instructions in the body, other entities, mismatched or unclosed tags,
 * text outside the root, more than ADE_XML_DEPTH_MAX levels) is -EBADMSG. None of the libraries ade
 * builds on reads XML, and these answers need no more than this. */

#define ADE_XML_DEPTH_MAX 16U

/* Called at the end of every element: @path holds the names from the root to it (@depth of them),
 * @text its character data with references decoded when it has no child elements ("" when empty),
 * NULL when it has children. A negative return stops the walk and is returned. */
typedef int (*AdeXmlElementFunc)(const char *const *path, size_t depth, const char *text, void *userdata);

/* Reads @len bytes. Returns 0, -EBADMSG (see above), -ENOMEM, or @each's error. */
int ade_xml_walk(const char *buf, size_t len, AdeXmlElementFunc each, void *userdata);
