// wsbridge's Hrana over HTTP driven by the unmodified @libsql/client from npm.
//
// Every case of suite.js (the same ones sql.test.js runs over WebSocket) plus HTTP-specific ones
// runs twice, once per URL form the client maps to HTTP: "http://127.0.0.1:PORT" and
// "libsql://127.0.0.1:PORT?tls=0". Each form gets its own server and database. @libsql/client
// 0.18 speaks Hrana 2 over HTTP: every request is a POST to /v2/pipeline.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { createClient } from "@libsql/client";
import * as hrana from "@libsql/hrana-client";
import { TOKEN, startServer } from "./server.js";
import { sqlSuite } from "./suite.js";

const forms = [
    { name: "http://127.0.0.1:PORT", urlOf: (s) => s.httpUrl },
    { name: "libsql://127.0.0.1:PORT?tls=0", urlOf: (s) => `libsql://127.0.0.1:${s.port}?tls=0` },
];

// A refused token over HTTP is a 401. The client turns a text/plain (or JSON without "message")
// body into SERVER_ERROR "Server returned HTTP status 401..." and a JSON Error body into its code.
function checkAuthError(e) {
    if (e.code === "SERVER_ERROR") {
        assert.match(e.message, /HTTP status 401\b/);
    } else {
        assert.match(String(e.code), /AUTH/); // e.g. AUTH_JWT_INVALID, UNAUTHORIZED
    }
}

/** A fetch for createClient({ fetch }) that records every request and its (JSON) response. */
function recordingFetch(log) {
    return async (input, init) => {
        const request = input instanceof Request && init === undefined ? input : new Request(input, init);
        const text = request.body === null ? undefined : await request.clone().text();
        const response = await fetch(request);
        const entry = {
            method: request.method,
            path: new URL(request.url).pathname,
            authorization: request.headers.get("authorization"),
            contentType: request.headers.get("content-type"),
            body: text === undefined ? undefined : JSON.parse(text),
            status: response.status,
            response: undefined,
        };
        if ((response.headers.get("content-type") ?? "").startsWith("application/json")) {
            entry.response = await response.clone().json();
        }
        log.push(entry);
        return response;
    };
}

for (const form of forms) {
    describe(form.name, () => {
        const suite = sqlSuite({ urlOf: form.urlOf, checkAuthError });
        const client = suite.client;

        test("the client speaks HTTP: one POST to /v2/pipeline with the bearer token per execute", async () => {
            const log = [];
            const db = client({ fetch: recordingFetch(log) });
            try {
                assert.equal(db.protocol, "http");
                const rs = await db.execute({ sql: "SELECT ? AS x", args: ["hi"] });
                assert.equal(rs.rows[0].x, "hi");
                assert.equal(log.length, 1);
                const [e] = log;
                assert.equal(e.method, "POST");
                assert.equal(e.path, "/v2/pipeline");
                assert.equal(e.authorization, `Bearer ${TOKEN}`);
                assert.equal(e.contentType, "application/json");
                assert.equal(e.body.baton ?? null, null, "a new stream");
                assert.deepEqual(e.body.requests.map((r) => r.type), ["execute", "close"]);
                assert.equal(e.status, 200);
                assert.ok(e.response, "the response is application/json");
                assert.equal(e.response.baton, null, "closed in the same request");
                assert.deepEqual(
                    e.response.results.map((r) => [r.type, r.response?.type]),
                    [["ok", "execute"], ["ok", "close"]],
                );
                const result = e.response.results[0].response.result;
                assert.deepEqual(result.cols.map((c) => c.name), ["x"]);
                assert.deepEqual(result.rows, [[{ type: "text", value: "hi" }]]);
            } finally {
                db.close();
            }
        });

        test("a missing token is refused", async () => {
            const db = createClient({ url: suite.url() });
            try {
                await assert.rejects(db.execute("SELECT 1"), (e) => {
                    checkAuthError(e);
                    return true;
                });
            } finally {
                db.close();
            }
        });

        test("an interactive transaction spans several HTTP requests chained by batons", async () => {
            const log = [];
            const db = client({ fetch: recordingFetch(log) });
            const other = client();
            try {
                await db.execute("CREATE TABLE spans (k INTEGER PRIMARY KEY, v TEXT)");
                log.length = 0;
                const tx = await db.transaction("write");
                const insert = "INSERT INTO spans (k, v) VALUES (?, ?)";
                await tx.execute({ sql: insert, args: [1, "one"] });
                await delay(20);
                // Another stream sees nothing uncommitted (WAL: readers go on during the write).
                assert.equal((await other.execute("SELECT count(*) AS c FROM spans")).rows[0].c, 0);
                await tx.execute({ sql: insert, args: [2, "two"] }); // the SQL text stored by the first request
                await delay(20);
                await tx.execute({ sql: "UPDATE spans SET v = upper(v) WHERE k = ?", args: [1] });
                await delay(20);
                const inside = await tx.execute("SELECT k, v FROM spans ORDER BY k");
                assert.deepEqual(inside.rows.map((r) => [r.k, r.v]), [[1, "ONE"], [2, "two"]]);
                assert.equal((await other.execute("SELECT count(*) AS c FROM spans")).rows[0].c, 0);
                await tx.commit();
                const rs = await other.execute("SELECT k, v FROM spans ORDER BY k");
                assert.deepEqual(rs.rows.map((r) => [r.k, r.v]), [[1, "ONE"], [2, "two"]]);

                // One HTTP request per tx.execute and one for the commit, each carrying the baton
                // of the response before it; the commit's response closes the stream.
                assert.equal(log.length, 5, JSON.stringify(log.map((e) => e.body)));
                assert.equal(log[0].body.baton ?? null, null);
                for (let i = 0; i < log.length; i++) {
                    assert.equal(log[i].status, 200, `request ${i}`);
                    assert.equal(log[i].path, "/v2/pipeline");
                    for (const r of log[i].response.results) {
                        assert.equal(r.type, "ok", `request ${i}: ${JSON.stringify(r)}`);
                    }
                    if (i > 0) assert.equal(log[i].body.baton, log[i - 1].response.baton, `request ${i}`);
                    if (i < log.length - 1) {
                        assert.equal(typeof log[i].response.baton, "string", `response ${i} keeps the stream`);
                    }
                }
                const batons = log.slice(0, -1).map((e) => e.response.baton);
                assert.equal(new Set(batons).size, batons.length, "every response has a fresh baton");
                assert.equal(log.at(-1).response.baton, null);
                assert.ok(log.at(-1).body.requests.some((r) => r.type === "close"));
                // The second insert referred to the SQL text stored in the first request by its id.
                const second = log[1].body.requests;
                assert.ok(!second.some((r) => r.type === "store_sql"), JSON.stringify(second));
                const step = second.find((r) => r.type === "batch").batch.steps.at(-1);
                assert.equal(typeof step.stmt.sql_id, "number");
                assert.equal(step.stmt.sql, undefined);
            } finally {
                db.close();
                other.close();
            }
        });

        test("an error inside an interactive transaction leaves it open", async () => {
            const db = client();
            try {
                await db.execute("CREATE TABLE tx_err (x INTEGER UNIQUE)");
                const tx = await db.transaction("write");
                await tx.execute("INSERT INTO tx_err VALUES (1)");
                await assert.rejects(tx.execute("INSERT INTO tx_err VALUES (1)"), (e) => {
                    assert.equal(e.code, "SQLITE_CONSTRAINT_UNIQUE");
                    return true;
                });
                await assert.rejects(tx.execute("SELEC 1"), (e) => {
                    assert.equal(e.code, "SQL_PARSE_ERROR");
                    return true;
                });
                await tx.execute("INSERT INTO tx_err VALUES (2)");
                await tx.commit();
                const rs = await db.execute("SELECT x FROM tx_err ORDER BY x");
                assert.deepEqual(rs.rows.map((r) => r.x), [1, 2]);
            } finally {
                db.close();
            }
        });

        test("a large result: 20000 rows of 100 characters, and a 1 MiB blob both ways", async () => {
            const db = client();
            try {
                const rs = await db.execute({
                    sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                          SELECT i, printf('%0100d', i) AS pad FROM n`,
                    args: [20000],
                });
                assert.equal(rs.rows.length, 20000);
                rs.rows.forEach((r, idx) => {
                    assert.equal(r.i, idx + 1);
                    assert.equal(r.pad.length, 100);
                    assert.equal(Number(r.pad), idx + 1);
                });

                const blob = new Uint8Array(1 << 20);
                for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + (i >> 11)) & 0xff;
                await db.execute("CREATE TABLE big (b BLOB)");
                await db.execute({ sql: "INSERT INTO big VALUES (?)", args: [blob] });
                const back = await db.execute("SELECT b, length(b) AS n FROM big");
                assert.equal(back.rows[0].n, blob.length);
                assert.ok(Buffer.from(new Uint8Array(back.rows[0].b)).equals(Buffer.from(blob)));
            } finally {
                db.close();
            }
        });
    });
}

describe("@libsql/hrana-client over HTTP", () => {
    let server;
    before(async () => {
        server = await startServer();
    });
    after(() => server?.stop());

    test("asking for version 3 probes /v3-protobuf, gets 404 and falls back to /v2", async () => {
        const log = [];
        const client = hrana.openHttp(server.httpUrl, TOKEN, recordingFetch(log), undefined, 3);
        try {
            assert.equal(await client.getVersion(), 2);
            assert.deepEqual(log.map((e) => [e.method, e.path, e.status]), [["GET", "/v3-protobuf", 404]]);
            const stream = client.openStream();
            try {
                const rows = await stream.query("SELECT 40 + 2 AS answer");
                assert.equal(rows.rows[0].answer, 42);
            } finally {
                stream.close();
            }
            assert.equal(log[1].path, "/v2/pipeline");
        } finally {
            client.close();
        }
    });

    test("a stream keeps its SQLite connection across requests (a temp table survives)", async () => {
        const client = hrana.openHttp(server.httpUrl, TOKEN);
        try {
            const stream = client.openStream();
            try {
                await stream.run("CREATE TEMP TABLE scratch (x)");
                await stream.run("INSERT INTO scratch VALUES (7)");
                const v = await stream.queryValue("SELECT x FROM scratch");
                assert.equal(v.value, 7);
            } finally {
                stream.close();
            }
            const other = client.openStream();
            try {
                await assert.rejects(other.query("SELECT x FROM scratch"), /no such table/);
            } finally {
                other.close();
            }
        } finally {
            client.close();
        }
    });
});
