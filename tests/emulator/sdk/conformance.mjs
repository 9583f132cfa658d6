// SPDX-License-Identifier: LGPL-2.1-or-later
// The official Azure SDK for JavaScript as the judge of ade's Azure emulator.
//
//   node conformance.mjs EMULATOR_DIR
//
// EMULATOR_DIR holds the running emulator's ready.json. NODE_EXTRA_CA_CERTS must name its ca.pem
// (Node reads it at start-up). On the clients only disableChallengeResourceVerification is set,
// and authorityHost on ClientSecretCredential. Prints one line per check and ends with
// "N passed, N failed"; exits 1 when a check failed.
//
// MSAL asks https://login.microsoftonline.com for instance discovery before it trusts any
// authority host. Nothing here may leave the machine, so this script runs a small CONNECT proxy
// on 127.0.0.1 (HTTPS_PROXY, honoured by the SDK's pipeline) that sends the Entra host names, and
// only those, to the emulator, whose certificate carries them; everything else is refused.

import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";

const dir = process.argv[2];
if (!dir) {
        console.error("usage: node conformance.mjs EMULATOR_DIR");
        process.exit(2);
}
const ready = JSON.parse(fs.readFileSync(`${dir}/ready.json`, "utf8"));
const vaultUrl = `https://localhost:${ready.https_port}`;
const control = `http://127.0.0.1:${ready.http_port}`;

const proxied = [];
const proxy = http.createServer((req, res) => {
        res.writeHead(403);
        res.end();
});
proxy.on("connect", (req, client, head) => {
        const host = req.url.split(":")[0];
        if (host !== "login.microsoftonline.com" && host !== "login.windows.net") {
                client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
                return;
        }
        proxied.push(host);
        const upstream = net.connect(ready.https_port, "127.0.0.1", () => {
                client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
                upstream.write(head);
                upstream.pipe(client);
                client.pipe(upstream);
        });
        upstream.on("error", () => client.destroy());
        client.on("error", () => upstream.destroy());
});
await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
process.env.HTTPS_PROXY = `http://127.0.0.1:${proxy.address().port}`;
process.env.NO_PROXY = "localhost,127.0.0.1";
process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = control;

// Imported only now: the SDK reads the environment above when its pipelines are built.
const { SecretClient } = await import("@azure/keyvault-secrets");
const { KeyClient, CryptographyClient } = await import("@azure/keyvault-keys");
const { ManagedIdentityCredential, ClientSecretCredential, ClientCertificateCredential } = await import("@azure/identity");
const { createPipelineRequest, createDefaultHttpClient, createHttpHeaders } = await import("@azure/core-rest-pipeline");

const config = await (await fetch(`${control}/_emulator/config`)).json();
const tenant = config.tenant_id;
const secretApp = config.apps.find((a) => a.secret);
const certApp = config.apps.find((a) => a.certificate);

async function requests() {
        return (await (await fetch(`${control}/_emulator/requests`)).json()).requests;
}
async function clearRequests() {
        await fetch(`${control}/_emulator/requests`, { method: "DELETE" });
}
function assert(cond, message) {
        if (!cond) throw new Error(message);
}

let passed = 0,
        failed = 0;
async function check(name, fn) {
        try {
                const detail = await fn();
                console.log(`ok - ${name}${detail ? ` (${detail})` : ""}`);
                passed++;
        } catch (e) {
                console.log(`not ok - ${name}: ${e?.message ?? e}`);
                failed++;
        }
}

const options = { disableChallengeResourceVerification: true };
const mi = new ManagedIdentityCredential();
const secrets = new SecretClient(vaultUrl, mi, options);
const keys = new KeyClient(vaultUrl, mi, options);
const name = `sdk-${crypto.randomUUID()}`;
const keyFile = crypto.randomBytes(127).toString("base64"); // ADE's 172-character key file
let kek;

await check("challenge: the SDK's first request carries no token and gets 401 with a challenge", async () => {
        await clearRequests();
        await secrets.setSecret(`${name}-probe`, "x");
        const kv = (await requests()).filter((r) => r.service === "keyvault");
        assert(kv.length >= 2, `expected a 401 and a retry, saw ${kv.length} Key Vault requests`);
        assert(kv[0].status === 401 && !kv[0].authorization, `first request: ${JSON.stringify(kv[0])}`);
        assert(kv[1].status === 200 && kv[1].authorization, `retry: ${JSON.stringify(kv[1])}`);
        return `${kv[0].method} ${kv[0].path} -> 401, retried with a token -> 200`;
});

await check("ManagedIdentityCredential gets its token from the emulator's IMDS", async () => {
        const log = await requests();
        const imds = log.filter((r) => r.route === "imds-token" && r.status === 200);
        assert(imds.length >= 1, "no IMDS token request was answered 200");
        return `${imds.length} IMDS token request(s)`;
});

await check("set secret (contentType, tags)", async () => {
        const s = await secrets.setSecret(name, keyFile, { contentType: "BEK", tags: { DiskEncryptionKeyFileName: "LinuxPassPhraseFileName" } });
        assert(/^[0-9a-f]{32}$/.test(s.properties.version), `version ${s.properties.version}`);
        assert(s.properties.contentType === "BEK", `contentType ${s.properties.contentType}`);
        assert(s.properties.enabled === true, "not enabled");
        return `version ${s.properties.version}`;
});

await check("get secret (latest)", async () => {
        const s = await secrets.getSecret(name);
        assert(s.value === keyFile, "value differs");
        assert(s.properties.tags?.DiskEncryptionKeyFileName === "LinuxPassPhraseFileName", "tag lost");
});

await check("get secret by version, update its properties (PATCH), list secrets", async () => {
        const latest = await secrets.getSecret(name);
        const byVersion = await secrets.getSecret(name, { version: latest.properties.version });
        assert(byVersion.value === keyFile, "value differs");
        const updated = await secrets.updateSecretProperties(name, latest.properties.version, {
                contentType: "Wrapped BEK",
                tags: { MachineName: "ade-test-vm" },
        });
        assert(updated.contentType === "Wrapped BEK", `contentType ${updated.contentType}`);
        assert(updated.tags?.MachineName === "ade-test-vm", "tags not updated");
        let found = false;
        for await (const p of secrets.listPropertiesOfSecrets()) if (p.name === name) found = true;
        assert(found, "the secret is not listed");
});

await check("get key", async () => {
        kek = await keys.getKey("kek");
        assert(kek.keyType === "RSA", `kty ${kek.keyType}`);
        assert(kek.key.n.length === 256, `modulus of ${kek.key.n.length} bytes`);
        assert(kek.keyOperations.includes("wrapKey"), "no wrapKey in key_ops");
        return kek.id;
});

const algorithms = ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"];
const plain = Buffer.from(keyFile, "ascii");

for (const alg of algorithms) {
        await check(`${alg}: CryptographyClient.wrapKey, then unwrapKey by the emulator`, async () => {
                const cc = new CryptographyClient(kek, mi, options);
                await clearRequests();
                const wrapped = await cc.wrapKey(alg, plain);
                const remoteWraps = (await requests()).filter((r) => /\/wrapkey$/i.test(r.path)).length;
                const unwrapped = await cc.unwrapKey(alg, wrapped.result);
                const remoteUnwraps = (await requests()).filter((r) => /\/unwrapkey$/i.test(r.path) && r.status === 200).length;
                assert(Buffer.compare(Buffer.from(unwrapped.result), plain) === 0, "unwrapped bytes differ");
                assert(remoteUnwraps === 1, `${remoteUnwraps} remote unwraps`);
                return remoteWraps ? "the SDK wrapped remotely for this algorithm" : "wrapped locally by the SDK";
        });

        await check(`${alg}: wrapped locally with the key the emulator exports, unwrapped through the SDK`, async () => {
                const pub = crypto.createPublicKey({
                        key: { kty: "RSA", n: Buffer.from(kek.key.n).toString("base64url"), e: Buffer.from(kek.key.e).toString("base64url") },
                        format: "jwk",
                });
                const wrapped =
                        alg === "RSA1_5"
                                ? crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, plain)
                                : crypto.publicEncrypt(
                                          { key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === "RSA-OAEP" ? "sha1" : "sha256" },
                                          plain,
                                  );
                const cc = new CryptographyClient(kek, mi, options);
                const unwrapped = await cc.unwrapKey(alg, wrapped);
                assert(Buffer.compare(Buffer.from(unwrapped.result), plain) === 0, "unwrapped bytes differ");
        });
}

await check("create an RSA key, wrap and unwrap with it", async () => {
        const created = await keys.createRsaKey(`${name}-kek`, { keySize: 3072, keyOps: ["wrapKey", "unwrapKey"] });
        assert(created.key.n.length === 384, `modulus of ${created.key.n.length} bytes`);
        const cc = new CryptographyClient(created, mi, options);
        const wrapped = await cc.wrapKey("RSA-OAEP", plain);
        const unwrapped = await cc.unwrapKey("RSA-OAEP", wrapped.result);
        assert(Buffer.compare(Buffer.from(unwrapped.result), plain) === 0, "unwrapped bytes differ");
        return created.id;
});

await check("create an EC key: the SDK reads kty, crv, x, y and the default key_ops", async () => {
        const created = await keys.createEcKey(`${name}-ec`, { curve: "P-384" });
        const got = await keys.getKey(`${name}-ec`);
        for (const k of [created, got]) {
                assert(k.keyType === "EC", `keyType ${k.keyType}`);
                assert(k.key.crv === "P-384", `crv ${k.key.crv}`);
                assert(k.key.x.length === 48 && k.key.y.length === 48, `point of ${k.key.x.length}+${k.key.y.length} bytes`);
                assert(!k.key.n && !k.key.d, "RSA or private parts exported");
                assert(k.keyOperations.join() === "sign,verify", `keyOperations ${k.keyOperations}`);
        }
        return got.id;
});

await check("wrapKey on an EC key: the SDK surfaces Key Vault's 400 BadParameter", async () => {
        const ec = await keys.createEcKey(`${name}-ec-hsm`, { hsm: true, curve: "P-256", keyOps: ["sign", "wrapKey"] });
        assert(ec.keyType === "EC-HSM", `keyType ${ec.keyType}`);
        const cc = new CryptographyClient(ec.id, mi, options);
        let error;
        try {
                await cc.wrapKey("RSA-OAEP", plain);
        } catch (e) {
                error = e;
        }
        assert(error, "wrapKey on an EC key succeeded");
        assert(error.statusCode === 400 && error.code === "BadParameter", `got ${error.statusCode} ${error.code}: ${error.message}`);
});

await check("an expired key: the SDK reads expiresOn, Key Vault refuses a remote wrapKey with 403", async () => {
        const expiresOn = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000);
        const created = await keys.createRsaKey(`${name}-expired`, { expiresOn });
        assert(created.properties.expiresOn?.getTime() === expiresOn.getTime(), `expiresOn ${created.properties.expiresOn}`);
        assert(created.properties.notBefore === undefined, `notBefore ${created.properties.notBefore}`);
        const request = createPipelineRequest({
                url: `${created.id}/wrapKey?api-version=7.5`,
                method: "POST",
                headers: createHttpHeaders({ "Content-Type": "application/json" }),
                body: JSON.stringify({ alg: "RSA-OAEP", value: plain.toString("base64url") }),
        });
        const response = await keys.client.pipeline.sendRequest(createDefaultHttpClient(), request);
        assert(response.status === 403, `status ${response.status}: ${response.bodyAsText}`);
        const body = JSON.parse(response.bodyAsText);
        assert(body.error.code === "Forbidden" && body.error.innererror.code === "KeyExpired", response.bodyAsText);
});

await check("remote wrapKey through the SDK's pipeline (raw request), unwrapped by the SDK", async () => {
        const request = createPipelineRequest({
                url: `${kek.id}/wrapKey?api-version=7.5`,
                method: "POST",
                headers: createHttpHeaders({ "Content-Type": "application/json" }),
                body: JSON.stringify({ alg: "RSA-OAEP", value: plain.toString("base64url") }),
        });
        await clearRequests();
        const response = await keys.client.pipeline.sendRequest(createDefaultHttpClient(), request);
        assert(response.status === 200, `status ${response.status}: ${response.bodyAsText}`);
        const body = JSON.parse(response.bodyAsText);
        assert(body.kid === kek.id, `kid ${body.kid}`);
        assert(!/[+/=]/.test(body.value), "value is not unpadded base64url");
        const log = (await requests()).filter((r) => r.service === "keyvault");
        assert(log.some((r) => r.path.endsWith("/wrapKey") && r.status === 200), "no remote wrapKey in the log");
        const cc = new CryptographyClient(kek, mi, options);
        const unwrapped = await cc.unwrapKey("RSA-OAEP", Buffer.from(body.value, "base64url"));
        assert(Buffer.compare(Buffer.from(unwrapped.result), plain) === 0, "unwrapped bytes differ");
});

await check("ClientSecretCredential (authorityHost at the emulator) gets a token Key Vault accepts", async () => {
        await clearRequests();
        const cred = new ClientSecretCredential(tenant, secretApp.client_id, secretApp.secret, { authorityHost: vaultUrl });
        const client = new SecretClient(vaultUrl, cred, options);
        const s = await client.getSecret(name);
        assert(s.value === keyFile, "value differs");
        const entra = (await requests()).filter((r) => r.service === "entra" && r.path.endsWith("/oauth2/v2.0/token"));
        assert(entra.length === 1 && entra[0].status === 200, `token requests: ${JSON.stringify(entra)}`);
        return `instance discovery through ${[...new Set(proxied)].join(", ") || "no proxy"}`;
});

await check("ClientCertificateCredential (assertion signed by MSAL) gets a token Key Vault accepts", async () => {
        const pem = fs.readFileSync(`${dir}/app-cert.pem`, "utf8") + fs.readFileSync(`${dir}/app-key.pem`, "utf8");
        const cred = new ClientCertificateCredential(tenant, certApp.client_id, { certificate: pem }, { authorityHost: vaultUrl });
        const client = new KeyClient(vaultUrl, cred, options);
        const k = await client.getKey("kek");
        assert(k.id === kek.id, `kid ${k.id}`);
});

await check("ManagedIdentityCredential for a user-assigned identity (clientId)", async () => {
        const user = config.identities.user_assigned[0];
        const cred = new ManagedIdentityCredential({ clientId: user.client_id });
        const token = await cred.getToken("https://vault.azure.net/.default");
        const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
        assert(claims.oid === user.object_id, `oid ${claims.oid}`);
        const client = new KeyClient(vaultUrl, cred, options);
        await client.getKey("kek");
});

proxy.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
