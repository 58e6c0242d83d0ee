// Hrana over HTTP at the wire level, with Node's own fetch: the endpoints, authentication, CORS,
// batons, the NDJSON cursor and the legacy v1 endpoints. (http.test.js drives the same server
// code through @libsql/client.)

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { TOKEN, startServer } from "./server.js";

let server;
let base;

before(async () => {
    server = await startServer();
    base = server.httpUrl;
});

after(() => server?.stop());

/** POSTs `body` as JSON; `token: null` sends no Authorization header. Resolves to the Response. */
function post(path, body, { token = TOKEN, headers = {} } = {}) {
    const h = { "content-type": "application/json", ...headers };
    if (token !== null) h.authorization = `Bearer ${token}`;
    return fetch(base + path, { method: "POST", headers: h, body: JSON.stringify(body) });
}

/** A pipeline request; resolves to { status, contentType, body (parsed JSON, or the text) }. */
async function pipeline(version, baton, requests, opts) {
    const req = baton === undefined ? { requests } : { baton, requests };
    const resp = await post(`/${version}/pipeline`, req, opts);
    const text = await resp.text();
    let body = text;
    try {
        body = JSON.parse(text);
    } catch {
        // not JSON: keep the text for the assertion messages
    }
    return { status: resp.status, contentType: resp.headers.get("content-type"), body };
}

/** Asserts a 200 pipeline response whose results are all "ok"; returns the body. */
function okBody(r, what = "") {
    assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
    for (const [i, res] of r.body.results.entries()) {
        assert.equal(res.type, "ok", `${what}: result ${i}: ${JSON.stringify(res)}`);
    }
    return r.body;
}

const exec = (sql, args) => ({ type: "execute", stmt: args ? { sql, args } : { sql } });
const int = (n) => ({ type: "integer", value: String(n) });
const txt = (s) => ({ type: "text", value: s });

describe("plain endpoints", () => {
    test("GET /health is 200 with an empty body", async () => {
        const resp = await fetch(`${base}/health`);
        assert.equal(resp.status, 200);
        assert.equal(await resp.text(), "");
    });

    test("GET /version is 200 with a version text", async () => {
        const resp = await fetch(`${base}/version`);
        assert.equal(resp.status, 200);
        assert.match(await resp.text(), /\S/);
    });

    test("GET /v2 and GET /v3 are 200 without a token (what a client's version probe sends)", async () => {
        for (const path of ["/v2", "/v3"]) {
            const resp = await fetch(base + path);
            assert.equal(resp.status, 200, path);
            await resp.arrayBuffer();
        }
    });

    test("GET /v3-protobuf is 404 (so @libsql/hrana-client falls back to JSON v2)", async () => {
        const resp = await fetch(`${base}/v3-protobuf`);
        assert.equal(resp.status, 404);
        await resp.arrayBuffer();
        const p = await fetch(`${base}/v3-protobuf/pipeline`, {
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/x-protobuf" },
            body: new Uint8Array([]),
        });
        // Not served either way (404 for an unknown path, or 405): never 2xx.
        assert.ok(p.status >= 400 && p.status < 500, `POST /v3-protobuf/pipeline: ${p.status}`);
        await p.arrayBuffer();
    });
});

describe("authentication", () => {
    const bodies = {
        "/v2/pipeline": { requests: [exec("SELECT 1"), { type: "close" }] },
        "/v3/pipeline": { requests: [exec("SELECT 1"), { type: "close" }] },
        "/v3/cursor": { batch: { steps: [{ stmt: { sql: "SELECT 1" } }] } },
        "/v1/execute": { stmt: { sql: "SELECT 1" } },
        "/v1/batch": { batch: { steps: [{ stmt: { sql: "SELECT 1" } }] } },
    };

    for (const [path, body] of Object.entries(bodies)) {
        test(`POST ${path} without a token, or with a wrong one, is 401`, async () => {
            const none = await post(path, body, { token: null });
            assert.equal(none.status, 401, `${path} without a token: ${await none.text()}`);
            const wrong = await post(path, body, { token: "wrong-token-wrong-token-wrong-token" });
            assert.equal(wrong.status, 401, `${path} with a wrong token: ${await wrong.text()}`);
            const notBearer = await post(path, body, { token: null, headers: { authorization: `Basic ${TOKEN}` } });
            assert.equal(notBearer.status, 401, `${path} with Basic: ${await notBearer.text()}`);
        });
    }

    test("a 401 does not run the statement", async () => {
        const r = await pipeline("v2", undefined, [exec("CREATE TABLE never (x)"), { type: "close" }], { token: null });
        assert.equal(r.status, 401);
        const check = okBody(
            await pipeline("v2", undefined, [
                exec("SELECT count(*) FROM sqlite_master WHERE name = 'never'"),
                { type: "close" },
            ]),
        );
        assert.deepEqual(check.results[0].response.result.rows, [[int(0)]]);
    });
});

describe("CORS", () => {
    const preflight = (origin, url = base) =>
        fetch(`${url}/v2/pipeline`, {
            method: "OPTIONS",
            headers: {
                origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        });

    function assertAllowed(resp, origin) {
        assert.ok(resp.status >= 200 && resp.status < 300, `preflight status ${resp.status}`);
        const allowOrigin = resp.headers.get("access-control-allow-origin");
        assert.ok(allowOrigin === origin || allowOrigin === "*", `Access-Control-Allow-Origin: ${allowOrigin}`);
        const methods = (resp.headers.get("access-control-allow-methods") ?? "").toLowerCase();
        assert.ok(/\bpost\b/.test(methods) || methods.trim() === "*", `Access-Control-Allow-Methods: ${methods}`);
        const hdrs = (resp.headers.get("access-control-allow-headers") ?? "")
            .toLowerCase()
            .split(",")
            .map((s) => s.trim());
        // A "*" does not cover Authorization (Fetch standard): it must be named.
        assert.ok(hdrs.includes("authorization"), `Access-Control-Allow-Headers: ${hdrs}`);
        assert.ok(hdrs.includes("content-type") || hdrs.includes("*"), `Access-Control-Allow-Headers: ${hdrs}`);
    }

    test("a preflight from the server's own origin is answered without a token", async () => {
        const origin = `http://127.0.0.1:${server.port}`;
        const resp = await preflight(origin);
        await resp.arrayBuffer();
        assertAllowed(resp, origin);
    });

    test("the actual request from the server's own origin carries Access-Control-Allow-Origin", async () => {
        const origin = `http://127.0.0.1:${server.port}`;
        const resp = await post("/v2/pipeline", { requests: [exec("SELECT 1"), { type: "close" }] }, {
            headers: { origin },
        });
        assert.equal(resp.status, 200);
        const allowOrigin = resp.headers.get("access-control-allow-origin");
        assert.ok(allowOrigin === origin || allowOrigin === "*", `Access-Control-Allow-Origin: ${allowOrigin}`);
        assert.equal((await resp.json()).results[0].type, "ok");
    });

    test("a foreign origin is not allowed", async () => {
        const origin = "http://evil.example";
        const pre = await preflight(origin);
        await pre.arrayBuffer();
        const preAllowed = pre.ok && ["*", origin].includes(pre.headers.get("access-control-allow-origin"));
        assert.ok(!preAllowed, `preflight ${pre.status}, ACAO ${pre.headers.get("access-control-allow-origin")}`);
        const resp = await post("/v2/pipeline", { requests: [exec("SELECT 1"), { type: "close" }] }, {
            headers: { origin },
        });
        await resp.arrayBuffer();
        const readable = resp.ok && ["*", origin].includes(resp.headers.get("access-control-allow-origin"));
        assert.ok(!readable, `POST ${resp.status}, ACAO ${resp.headers.get("access-control-allow-origin")}`);
    });

    describe("with --allow-origin", () => {
        let other;
        before(async () => {
            other = await startServer(["--allow-origin", "https://app.example.org"]);
        });
        after(() => other?.stop());

        test("a preflight from an --allow-origin origin is allowed", async () => {
            const resp = await preflight("https://app.example.org", other.httpUrl);
            await resp.arrayBuffer();
            assertAllowed(resp, "https://app.example.org");
        });
    });
});

for (const version of ["v2", "v3"]) {
    describe(`POST /${version}/pipeline`, () => {
        test("a new stream runs a statement and closes in one request; values are encoded per the spec", async () => {
            const r = await pipeline(version, undefined, [
                exec("SELECT 1 AS i, 1.5 AS f, 'héllo ✓' AS t, x'0102' AS b, NULL AS n, 9007199254740993 AS big"),
                { type: "close" },
            ]);
            assert.match(r.contentType ?? "", /^application\/json/);
            const body = okBody(r, "select");
            assert.equal(body.baton, null, "closed by the close request");
            assert.equal(body.base_url ?? null, null);
            assert.deepEqual(body.results.map((x) => x.response.type), ["execute", "close"]);
            const result = body.results[0].response.result;
            assert.deepEqual(result.cols.map((c) => c.name), ["i", "f", "t", "b", "n", "big"]);
            assert.equal(result.rows.length, 1);
            const [i, f, t, b, n, big] = result.rows[0];
            assert.deepEqual(i, int(1));
            assert.deepEqual(f, { type: "float", value: 1.5 });
            assert.deepEqual(t, txt("héllo ✓"));
            assert.equal(b.type, "blob");
            assert.match(b.base64, /^AQI=?$/);
            assert.deepEqual(n, { type: "null" });
            assert.deepEqual(big, int("9007199254740993"));
            assert.equal(typeof result.affected_row_count, "number");
            assert.ok("last_insert_rowid" in result, "last_insert_rowid is always present");
        });

        test("an explicit null baton opens a stream; a body without Content-Type is accepted", async () => {
            const resp = await fetch(`${base}/${version}/pipeline`, {
                method: "POST",
                headers: { authorization: `Bearer ${TOKEN}` },
                // a Uint8Array body makes fetch send no Content-Type (as the Rust client does)
                body: new TextEncoder().encode(
                    JSON.stringify({ baton: null, requests: [exec("SELECT 2 AS two"), { type: "close" }] }),
                ),
            });
            const body = await resp.json();
            assert.equal(resp.status, 200, JSON.stringify(body));
            assert.deepEqual(body.results[0].response.result.rows, [[int(2)]]);
            assert.equal(body.baton, null);
        });

        test("SQL errors come back inside the results, and the other requests still run", async () => {
            const r = await pipeline(version, undefined, [
                exec("SELEC 1"),
                exec("SELECT * FROM no_such_table"),
                exec("SELECT 3 AS three"),
                { type: "close" },
            ]);
            assert.equal(r.status, 200, JSON.stringify(r.body));
            assert.equal(r.body.results.length, 4);
            const [parse, missing, three, close] = r.body.results;
            assert.equal(parse.type, "error");
            assert.equal(parse.error.code, "SQL_PARSE_ERROR");
            assert.equal(typeof parse.error.message, "string");
            assert.equal(missing.type, "error");
            assert.match(missing.error.message, /no such table/);
            assert.equal(three.type, "ok");
            assert.deepEqual(three.response.result.rows, [[int(3)]]);
            assert.equal(close.type, "ok");
            assert.equal(r.body.baton, null);
        });

        test("a batch with conditions, a sequence, describe and stored SQL", async () => {
            const r = await pipeline(version, undefined, [
                { type: "sequence", sql: "CREATE TEMP TABLE s (x); INSERT INTO s VALUES (1); INSERT INTO s VALUES (2);" },
                { type: "store_sql", sql_id: 0, sql: "SELECT sum(x) AS total FROM s WHERE x >= ?" },
                { type: "execute", stmt: { sql_id: 0, args: [int(1)] } },
                {
                    type: "batch",
                    batch: {
                        steps: [
                            { stmt: { sql: "INSERT INTO s VALUES (10)" } },
                            { stmt: { sql: "SELEC" } },
                            { condition: { type: "ok", step: 1 }, stmt: { sql: "INSERT INTO s VALUES (100)" } },
                            { condition: { type: "error", step: 1 }, stmt: { sql_id: 0, args: [int(0)] } },
                        ],
                    },
                },
                { type: "describe", sql: "SELECT x AS y FROM s WHERE x > :min" },
                { type: "close_sql", sql_id: 0 },
                { type: "close" },
            ]);
            const body = okBody(r, "pipeline");
            assert.deepEqual(
                body.results.map((x) => x.response.type),
                ["sequence", "store_sql", "execute", "batch", "describe", "close_sql", "close"],
            );
            assert.deepEqual(body.results[2].response.result.rows, [[int(3)]]);
            const batch = body.results[3].response.result;
            assert.equal(batch.step_results.length, 4);
            assert.equal(batch.step_errors.length, 4);
            assert.equal(batch.step_results[0].affected_row_count, 1);
            assert.equal(batch.step_errors[0], null);
            assert.equal(batch.step_results[1], null);
            assert.equal(batch.step_errors[1].code, "SQL_PARSE_ERROR");
            assert.equal(batch.step_results[2], null, "skipped");
            assert.equal(batch.step_errors[2], null, "skipped");
            assert.deepEqual(batch.step_results[3].rows, [[int(13)]]);
            const d = body.results[4].response.result;
            assert.deepEqual(d.params.map((p) => p.name), [":min"]);
            assert.deepEqual(d.cols.map((c) => c.name), ["y"]);
            assert.equal(d.is_readonly, true);
            assert.equal(d.is_explain, false);
        });

        test("a replayed baton is 400; the newer baton still works", async () => {
            const first = okBody(
                await pipeline(version, undefined, [exec("CREATE TEMP TABLE r (x)"), exec("INSERT INTO r VALUES (1)")]),
                "first",
            );
            const b1 = first.baton;
            assert.equal(typeof b1, "string");
            const second = okBody(await pipeline(version, b1, [exec("INSERT INTO r VALUES (2)")]), "second");
            const b2 = second.baton;
            assert.equal(typeof b2, "string");
            assert.notEqual(b2, b1);

            const replay = await pipeline(version, b1, [exec("INSERT INTO r VALUES (666)")]);
            assert.equal(replay.status, 400, JSON.stringify(replay.body));

            // The stream (its temp table) is intact, and the replayed request did not run.
            const third = okBody(await pipeline(version, b2, [exec("SELECT x FROM r ORDER BY x"), { type: "close" }]), "third");
            assert.deepEqual(third.results[0].response.result.rows, [[int(1)], [int(2)]]);
            assert.equal(third.baton, null);

            const afterClose = await pipeline(version, b2, [exec("SELECT 1")]);
            assert.equal(afterClose.status, 400, `a used baton of a closed stream: ${JSON.stringify(afterClose.body)}`);
        });

        test("a forged baton is 400", async () => {
            for (const baton of ["garbage", "A".repeat(64)]) {
                const r = await pipeline(version, baton, [exec("SELECT 1")]);
                assert.equal(r.status, 400, `baton ${JSON.stringify(baton)}: ${JSON.stringify(r.body)}`);
            }
        });

        test("a stream chains batons across requests; its transaction and stored SQL persist", async () => {
            const steps = [
                [exec("CREATE TEMP TABLE chain (x)"), { type: "store_sql", sql_id: 7, sql: "SELECT count(*) FROM chain" }],
                [exec("BEGIN")],
                [exec("INSERT INTO chain VALUES (1)"), exec("INSERT INTO chain VALUES (2)")],
                [{ type: "execute", stmt: { sql_id: 7 } }],
                [exec("ROLLBACK"), { type: "execute", stmt: { sql_id: 7 } }, { type: "close" }],
            ];
            let baton;
            const batons = [];
            const bodies = [];
            for (const [i, requests] of steps.entries()) {
                const body = okBody(await pipeline(version, baton, requests), `request ${i}`);
                bodies.push(body);
                baton = body.baton;
                if (i < steps.length - 1) {
                    assert.equal(typeof baton, "string", `request ${i} keeps the stream`);
                    batons.push(baton);
                }
            }
            assert.equal(new Set(batons).size, batons.length, "every baton is fresh");
            assert.equal(baton, null);
            assert.deepEqual(bodies[3].results[0].response.result.rows, [[int(2)]], "inside the transaction");
            assert.deepEqual(bodies[4].results[1].response.result.rows, [[int(0)]], "rolled back");
        });
    });
}

describe("v3-only requests", () => {
    test("get_autocommit follows a transaction across requests on /v3/pipeline", async () => {
        const a = okBody(await pipeline("v3", undefined, [{ type: "get_autocommit" }, exec("BEGIN")]), "a");
        assert.equal(a.results[0].response.is_autocommit, true);
        const b = okBody(await pipeline("v3", a.baton, [{ type: "get_autocommit" }, exec("COMMIT")]), "b");
        assert.equal(b.results[0].response.is_autocommit, false);
        const c = okBody(await pipeline("v3", b.baton, [{ type: "get_autocommit" }, { type: "close" }]), "c");
        assert.equal(c.results[0].response.is_autocommit, true);
        assert.equal(c.baton, null);
    });

    test("a batch with an is_autocommit condition on /v3/pipeline", async () => {
        const r = await pipeline("v3", undefined, [
            {
                type: "batch",
                batch: {
                    steps: [
                        { stmt: { sql: "BEGIN" } },
                        { condition: { type: "not", cond: { type: "is_autocommit" } }, stmt: { sql: "SELECT 'in tx'" } },
                        { stmt: { sql: "COMMIT" } },
                        { condition: { type: "not", cond: { type: "is_autocommit" } }, stmt: { sql: "SELECT 'skipped'" } },
                    ],
                },
            },
            { type: "close" },
        ]);
        const batch = okBody(r, "batch").results[0].response.result;
        assert.deepEqual(batch.step_results[1].rows, [[txt("in tx")]]);
        assert.equal(batch.step_results[3], null);
        assert.equal(batch.step_errors[3], null);
    });
});

describe("POST /v3/cursor", () => {
    async function cursor(baton, batch, opts) {
        const resp = await post("/v3/cursor", baton === undefined ? { batch } : { baton, batch }, opts);
        const text = await resp.text();
        return { status: resp.status, text };
    }

    function ndjson(text) {
        assert.ok(text.endsWith("\n"), `every line ends with a newline: ${JSON.stringify(text.slice(-80))}`);
        return text.slice(0, -1).split("\n").map((line) => JSON.parse(line));
    }

    test("NDJSON: the baton first, then step_begin/row/step_end per step, step_error, skipped steps absent", async () => {
        const open = okBody(await pipeline("v3", undefined, [exec("CREATE TEMP TABLE c (x, y)")]), "open");
        const c = await cursor(open.baton, {
            steps: [
                { stmt: { sql: "INSERT INTO c VALUES (1, 'a'), (2, 'b')", want_rows: false } },
                { stmt: { sql: "SELECT x, y FROM c ORDER BY x" } },
                { stmt: { sql: "SELEC" } },
                { condition: { type: "ok", step: 2 }, stmt: { sql: "SELECT 'never'" } },
                { condition: { type: "error", step: 2 }, stmt: { sql: "SELECT 'after' AS z" } },
            ],
        });
        assert.equal(c.status, 200, c.text);
        const [head, ...entries] = ndjson(c.text);
        assert.equal(typeof head.baton, "string", JSON.stringify(head));
        assert.notEqual(head.baton, open.baton);
        assert.equal(head.base_url ?? null, null);
        assert.ok(!("type" in head));

        const types = entries.map((e) => e.type);
        const at = (type, step) => entries.findIndex((e) => e.type === type && e.step === step);

        // step 0: INSERT
        const b0 = at("step_begin", 0);
        assert.equal(b0, 0, JSON.stringify(entries));
        assert.deepEqual(entries[0].cols, []);
        assert.equal(entries[1].type, "step_end");
        assert.equal(entries[1].affected_row_count, 2);
        assert.equal(entries[1].last_insert_rowid, "2");
        // step 1: SELECT, two rows
        assert.deepEqual(types.slice(2, 6), ["step_begin", "row", "row", "step_end"]);
        assert.equal(entries[2].step, 1);
        assert.deepEqual(entries[2].cols.map((col) => col.name), ["x", "y"]);
        assert.deepEqual(entries[3].row, [int(1), txt("a")]);
        assert.deepEqual(entries[4].row, [int(2), txt("b")]);
        // step 2: an error (with or without a step_begin before it)
        const e2 = at("step_error", 2);
        assert.ok(e2 === 6 || (e2 === 7 && at("step_begin", 2) === 6), JSON.stringify(entries));
        assert.equal(entries[e2].error.code, "SQL_PARSE_ERROR");
        // step 3 skipped: no entry at all
        assert.ok(!entries.some((e) => e.step === 3), JSON.stringify(entries));
        // step 4
        assert.deepEqual(types.slice(e2 + 1), ["step_begin", "row", "step_end"]);
        assert.equal(entries[e2 + 1].step, 4);
        assert.deepEqual(entries[e2 + 2].row, [txt("after")]);
        assert.ok(!types.includes("error"), "no batch-level error");

        // The stream goes on with the cursor's baton.
        const rest = okBody(
            await pipeline("v3", head.baton, [exec("SELECT count(*) FROM c"), { type: "close" }]),
            "after the cursor",
        );
        assert.deepEqual(rest.results[0].response.result.rows, [[int(2)]]);
        assert.equal(rest.baton, null);
    });

    test("a cursor on a new stream streams 10000 rows in order", async () => {
        const n = 10000;
        const c = await cursor(undefined, {
            steps: [
                {
                    stmt: {
                        sql: "WITH RECURSIVE t(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM t WHERE i < ?) SELECT i FROM t",
                        args: [int(n)],
                    },
                },
            ],
        });
        assert.equal(c.status, 200, c.text.slice(0, 500));
        const [head, begin, ...rest] = ndjson(c.text);
        assert.equal(typeof head.baton, "string");
        assert.equal(begin.type, "step_begin");
        assert.equal(rest.length, n + 1);
        rest.slice(0, n).forEach((e, idx) => {
            assert.equal(e.type, "row");
            assert.deepEqual(e.row, [int(idx + 1)]);
        });
        assert.equal(rest[n].type, "step_end");
        const close = okBody(await pipeline("v3", head.baton, [{ type: "close" }]), "close");
        assert.equal(close.baton, null);
    });

    test("a replayed baton on /v3/cursor is 400", async () => {
        const open = okBody(await pipeline("v3", undefined, [exec("SELECT 1")]), "open");
        const used = okBody(await pipeline("v3", open.baton, [exec("SELECT 1")]), "used");
        const c = await cursor(open.baton, { steps: [{ stmt: { sql: "SELECT 1" } }] });
        assert.equal(c.status, 400, c.text);
        okBody(await pipeline("v3", used.baton, [{ type: "close" }]), "close");
    });
});

describe("legacy /v1", () => {
    async function v1(path, body) {
        const resp = await post(path, body);
        const text = await resp.text();
        let json;
        try {
            json = JSON.parse(text);
        } catch {
            json = undefined;
        }
        return { status: resp.status, contentType: resp.headers.get("content-type"), text, json };
    }

    test("POST /v1/execute returns { result }", async () => {
        const r = await v1("/v1/execute", { stmt: { sql: "SELECT ? AS a, ? AS b", args: [int(7), txt("x")] } });
        assert.equal(r.status, 200, r.text);
        assert.match(r.contentType ?? "", /^application\/json/);
        assert.deepEqual(r.json.result.cols.map((c) => c.name), ["a", "b"]);
        assert.deepEqual(r.json.result.rows, [[int(7), txt("x")]]);
    });

    test("POST /v1/batch runs the steps with conditions (as the Python client sends them)", async () => {
        const r = await v1("/v1/batch", {
            batch: {
                steps: [
                    { stmt: { sql: "BEGIN", want_rows: false } },
                    { condition: { type: "ok", step: 0 }, stmt: { sql: "CREATE TABLE v1t (x)", want_rows: false } },
                    { condition: { type: "ok", step: 1 }, stmt: { sql: "INSERT INTO v1t VALUES (?)", args: [int(5)] } },
                    { condition: { type: "ok", step: 2 }, stmt: { sql: "SELECT x FROM v1t" } },
                    { condition: { type: "ok", step: 3 }, stmt: { sql: "COMMIT", want_rows: false } },
                    { condition: { type: "not", cond: { type: "ok", step: 4 } }, stmt: { sql: "ROLLBACK", want_rows: false } },
                ],
            },
        });
        assert.equal(r.status, 200, r.text);
        const { step_results: results, step_errors: errors } = r.json.result;
        assert.equal(results.length, 6);
        assert.equal(errors.length, 6);
        assert.deepEqual(errors, [null, null, null, null, null, null]);
        assert.equal(results[2].affected_row_count, 1);
        assert.deepEqual(results[3].rows, [[int(5)]]);
        assert.equal(results[5], null, "ROLLBACK skipped");

        const after = await v1("/v1/execute", { stmt: { sql: "SELECT count(*) FROM v1t" } });
        assert.equal(after.status, 200, after.text);
        assert.deepEqual(after.json.result.rows, [[int(1)]], "committed");
    });

    test("an SQL error on /v1/execute is an HTTP error with a JSON message", async () => {
        const r = await v1("/v1/execute", { stmt: { sql: "SELEC 1" } });
        assert.ok(r.status >= 400, `status ${r.status}: ${r.text}`);
        assert.ok(r.json && typeof r.json.message === "string", r.text);
    });
});
