#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Azure's own Python SDK (azure.storage.blob, Debian's python3-azure) as the judge of ade's
client-side encryption (docs/protocols.md §9), for tests/integration/blob-azurite.sh:

  blob-sdk.py read  ACCOUNT_URL CONTAINER BLOB FILE   download BLOB, decrypt it with the SDK, write FILE
  blob-sdk.py write ACCOUNT_URL CONTAINER BLOB FILE   encrypt FILE with the SDK (protocol 2.0), upload

The environment names the emulator: ADE_IMDS (its IMDS, for tokens), ADE_CA (its CA), ADE_KEK (the
versioned KEK URL). The KEK is a small local object whose wrap_key/unwrap_key call the emulator's
Key Vault wrapkey/unwrapkey; reading finds it through key_resolver_function, by the blob's KeyId."""

import base64
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request

from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

IMDS = os.environ["ADE_IMDS"]
CA = os.environ["ADE_CA"]
KEK = os.environ["ADE_KEK"]
TLS = ssl.create_default_context(cafile=CA)


def imds_token(resource):
    url = IMDS + "/metadata/identity/oauth2/token?" + urllib.parse.urlencode(
        {"api-version": "2018-02-01", "resource": resource})
    req = urllib.request.Request(url, headers={"Metadata": "true"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as r:
        answer = json.load(r)
    return answer["access_token"], int(answer["expires_on"])


class ImdsCredential:
    """An azure.core TokenCredential over the emulator's IMDS (managed identity)."""

    def get_token(self, *scopes, **kwargs):
        resource = scopes[0]
        if resource.endswith("/.default"):
            resource = resource[: -len(".default")]
        token, expires_on = imds_token(resource)
        return AccessToken(token, expires_on)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VaultKek:
    """The key-encryption-key interface the SDK wants, over Key Vault's REST API."""

    def __init__(self, kid, algorithm="RSA-OAEP"):
        self.kid = kid
        self.algorithm = algorithm
        self.token = imds_token("https://vault.azure.net")[0]

    def _call(self, op, alg, value):
        body = json.dumps({"alg": alg, "value": b64url(value)}).encode()
        req = urllib.request.Request(self.kid + "/" + op + "?api-version=7.4", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=TLS, timeout=30) as r:
            return b64url_decode(json.load(r)["value"])

    def wrap_key(self, key):
        return self._call("wrapkey", self.algorithm, key)

    def unwrap_key(self, key, algorithm):
        return self._call("unwrapkey", algorithm, key)

    def get_kid(self):
        return self.kid

    def get_key_wrap_algorithm(self):
        return self.algorithm


RESOLVED = []


def resolver(kid):
    # The resolver trusts one KEK; the SDK then checks that its kid is the blob's KeyId.
    if kid != KEK:
        raise ValueError("unknown KEK " + kid)
    RESOLVED.append(kid)
    return VaultKek(kid)


def blob_client(account_url, container, blob, **kwargs):
    service = BlobServiceClient(account_url, credential=ImdsCredential(), connection_verify=CA, **kwargs)
    return service.get_blob_client(container, blob)


def main():
    mode, account_url, container, blob, path = sys.argv[1:6]
    if mode == "read":
        # This SDK release insists on a key_encryption_key with require_encryption even when a
        # resolver is given; the resolver comes first, and it must have been asked.
        client = blob_client(account_url, container, blob, require_encryption=True,
                             key_encryption_key=VaultKek(KEK), key_resolver_function=resolver,
                             encryption_version="2.0")
        data = client.download_blob().readall()
        if not RESOLVED:
            sys.exit("the SDK did not resolve the KEK through the blob's KeyId")
        with open(path, "wb") as f:
            f.write(data)
    elif mode == "write":
        with open(path, "rb") as f:
            data = f.read()
        client = blob_client(account_url, container, blob, require_encryption=True,
                             key_encryption_key=VaultKek(KEK), encryption_version="2.0")
        client.upload_blob(data, overwrite=True)
    else:
        sys.exit("usage: blob-sdk.py read|write ACCOUNT_URL CONTAINER BLOB FILE")


if __name__ == "__main__":
    main()
