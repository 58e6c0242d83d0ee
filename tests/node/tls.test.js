// wsbridge serving TLS (--tls-cert/--tls-key), driven by the unmodified @libsql/client from npm
// over https://localhost:PORT, wss://localhost:PORT and libsql://localhost:PORT (which the client
// maps to https:// when tls is on, its default).
//
// The certificates are throwaway ones made with the openssl CLI (tls_certs.js): a root CA, an
// intermediate and a leaf for localhost and 127.0.0.1. The server gets leaf + intermediate; the
// clients trust only the root.
//
// How the trusted clients trust the CA: a child `node` process (tls_client.js) started with
// NODE_EXTRA_CA_CERTS=<root CA>. Node reads that variable only at process start, and on the
// Node this suite supports (>= 18; 20 here) there is no supported way to add a CA to the default
// trust store of a running process (tls.setDefaultCACertificates only exists from Node
// 22.19/24.5). An in-process route would have to go around the client's own transports:
// @libsql/client takes a custom `fetch` (so HTTP could use an https.Agent or undici dispatcher
// with `ca`), but for WebSocket its @libsql/hrana-client calls `new WebSocket(url, subprotocols)`
// (the `ws` package) with no options, and `ws` then hands tls.connect() no `ca`, so only the
// process's default trust store applies. The child keeps both transports exactly as a user gets
// them, with nothing patched.
//
// The clients that must fail run in this process, which does not trust the test CA.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import https from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@libsql/client";
import { TOKEN, startServer } from "./server.js";
import { makeTestCerts } from "./tls_certs.js";

const here = dirname(fileURLToPath(import.meta.url));

let certs;
let server;

/** A server on the test certificate (leaf + intermediate), its TLS lines printed. */
async function startTlsServer() {
    const s = await startServer(["--tls-cert", certs.certChain, "--tls-key", certs.key]);
    await s.waitForLine(/^TLS certificate SHA-256 /);
    return s;
}

before(async () => {
    certs = makeTestCerts();
    server = await startTlsServer();
});

after(() => {
    server?.stop();
    certs?.cleanup();
});

/** Runs tls_client.js against `url` trusting `caFile`; resolves to { code, stdout, stderr }. */
function runChildClient(url, caFile) {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [join(here, "tls_client.js"), url], {
            cwd: here,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, WSBRIDGE_TEST_TOKEN: TOKEN },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code, signal) => resolve({ code: code ?? signal, stdout, stderr }));
    });
}

/** The chain of `cause`s of an error, outermost first. */
function causes(e) {
    const out = [];
    for (let x = e; x && out.length < 10; x = x.cause) out.push(x);
    return out;
}

const CERT_UNTRUSTED = /unable to get local issuer certificate/;

describe("startup", () => {
    test("stdout says open https://ADDR/ and the SHA-256 of the leaf certificate", () => {
        const leaf = new X509Certificate(readFileSync(certs.leafCert));
        assert.match(server.output[0], / listening on 127\.0\.0\.1:\d+$/);
        assert.ok(
            server.output[1].startsWith(`open https://127.0.0.1:${server.port}/`),
            `second line: ${server.output[1]}`,
        );
        assert.equal(server.output[2], `TLS certificate SHA-256 ${leaf.fingerprint256}`);
    });

    test("a plaintext http:// request on the TLS port is answered 400, not run", async () => {
        const resp = await fetch(`${server.httpUrl}/v2/pipeline`, {
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
            body: JSON.stringify({ requests: [{ type: "execute", stmt: { sql: "SELECT 1" } }] }),
        });
        assert.equal(resp.status, 400);
        await resp.arrayBuffer();
    });
});

const forms = [
    { name: "https://localhost:PORT", urlOf: (port) => `https://localhost:${port}` },
    { name: "wss://localhost:PORT", urlOf: (port) => `wss://localhost:${port}` },
    { name: "libsql://localhost:PORT", urlOf: (port) => `libsql://localhost:${port}` },
];

describe("@libsql/client trusting the test CA (child node with NODE_EXTRA_CA_CERTS)", () => {
    for (const form of forms) {
        // Each form gets its own server and database (the token throttle is per server, too).
        test(form.name, async (t) => {
            const own = await startTlsServer();
            let child;
            try {
                child = await runChildClient(form.urlOf(own.port), certs.caCert);
            } finally {
                own.stop();
            }
            const url = form.urlOf(own.port);
            const { code, stdout, stderr } = child;
            const context = `child exit ${code}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
            assert.equal(code, 0, context);
            const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
            const done = lines.at(-1);
            assert.equal(done?.done, true, context);
            const results = lines.slice(0, -1);
            // Every case the child knows of reported, in order: none silently skipped.
            assert.deepEqual(results.map((r) => r.name), done.names, context);
            assert.ok(results.length >= 8, context);
            for (const r of results) {
                await t.test(r.name, () => {
                    assert.ok(r.ok, `${url}: ${r.error}`);
                });
            }
        });
    }
});

describe("clients that do not trust the test CA fail certificate verification", () => {
    test("@libsql/client over https:// (this process's default trust store)", async () => {
        const db = createClient({ url: server.httpsUrl.replace("127.0.0.1", "localhost"), authToken: TOKEN });
        try {
            await assert.rejects(db.execute("SELECT 1"), (e) => {
                const codes = causes(e).map((x) => x.code);
                assert.ok(codes.includes("UNABLE_TO_GET_ISSUER_CERT_LOCALLY"), `${e.stack}\ncodes: ${codes}`);
                return true;
            });
        } finally {
            db.close();
        }
    });

    test("@libsql/client over wss:// (this process's default trust store)", async () => {
        const db = createClient({ url: server.wssUrl.replace("127.0.0.1", "localhost"), authToken: TOKEN });
        try {
            await assert.rejects(db.execute("SELECT 1"), (e) => {
                assert.equal(e.code, "HRANA_WEBSOCKET_ERROR");
                assert.match(e.message, CERT_UNTRUSTED);
                return true;
            });
        } finally {
            db.close();
        }
    });

    test("node:https trusting only an unrelated CA is refused; given the test CA it gets 200", async () => {
        const get = (ca) =>
            new Promise((resolve, reject) => {
                const req = https.get(`https://localhost:${server.port}/health`, { ca }, (res) => {
                    res.resume();
                    res.on("end", () => resolve(res.statusCode));
                });
                req.on("error", reject);
            });
        await assert.rejects(get(readFileSync(certs.otherCaCert)), (e) => {
            assert.equal(e.code, "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", e.stack);
            return true;
        });
        // The control: the same request trusting the test root (the server sends the
        // intermediate) succeeds, so the refusal above is about trust and nothing else.
        assert.equal(await get(readFileSync(certs.caCert)), 200);
    });

    for (const form of forms.slice(0, 2)) {
        test(`a child node trusting only an unrelated CA fails over ${form.name}`, async () => {
            const url = form.urlOf(server.port);
            const { code, stdout, stderr } = await runChildClient(url, certs.otherCaCert);
            const context = `child exit ${code}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
            assert.equal(code, 0, context);
            const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
            const results = lines.slice(0, -1);
            assert.ok(results.length >= 8, context);
            for (const r of results) assert.equal(r.ok, false, `${r.name} passed without trusting the CA`);
            // The first case is a plain query: its error is the certificate's (the later cases
            // that expect some SQL error fail on their assertion about it instead).
            assert.match(results[0].error, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|unable to get local issuer certificate/, results[0].error);
        });
    }
});
