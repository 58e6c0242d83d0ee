// Not a test file of its own: tls.test.js runs it as a child `node` process with
// NODE_EXTRA_CA_CERTS set to the throwaway test CA (see tls.test.js for why a child process).
//
// Usage: node tls_client.js URL   with WSBRIDGE_TEST_TOKEN set to the server's token.
// Runs the unmodified @libsql/client against URL (https://, wss:// or libsql://, with its
// default transports: the global fetch for HTTP, the `ws` package for WebSocket) through the
// cases below, in order, and prints one JSON line per case to stdout:
//     {"name": ..., "ok": true} or {"name": ..., "ok": false, "error": "<stack and causes>"}
// then {"done": true, "names": [...every case name...]}. The exit code is 0 when the cases ran
// (failed or not); the parent judges the lines.

import assert from "node:assert/strict";
import { createClient } from "@libsql/client";

const url = process.argv[2];
const token = process.env.WSBRIDGE_TEST_TOKEN;
assert.ok(url, "usage: node tls_client.js URL");
assert.ok(token, "WSBRIDGE_TEST_TOKEN must be set");
assert.ok(process.env.NODE_EXTRA_CA_CERTS, "NODE_EXTRA_CA_CERTS must name the test CA");

// Table names carry the URL's scheme, so that runs sharing a database would not collide.
const sfx = new URL(url).protocol.replace(/\W/g, "");
const expectedProtocol = url.startsWith("wss:") ? "ws" : "http";

function client(options = {}) {
    return createClient({ url, authToken: token, ...options });
}

/** Runs `fn(db)` with a fresh client that is closed afterwards. */
async function withClient(fn, options) {
    const db = client(options);
    try {
        return await fn(db);
    } finally {
        db.close();
    }
}

const cases = [
    [`the client speaks ${expectedProtocol} over TLS`, () =>
        withClient(async (db) => {
            assert.equal(db.protocol, expectedProtocol);
            const rs = await db.execute("SELECT sqlite_version() AS v, 1 + 1 AS two");
            assert.equal(rs.rows[0].two, 2);
            assert.match(rs.rows[0].v, /^3\.\d+\.\d+$/);
        })],

    ["create a table, insert with positional and named args, select the rows back", () =>
        withClient(async (db) => {
            await db.execute(`CREATE TABLE vals_${sfx} (id INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB, n)`);
            const big = 2n ** 53n + 1n;
            const blob = new Uint8Array([0, 1, 2, 250, 255]);
            const r1 = await db.execute({
                sql: `INSERT INTO vals_${sfx} (i, f, t, b, n) VALUES (?, ?, ?, ?, ?)`,
                args: [big, 3.25, "héllo ✓", blob, null],
            });
            assert.equal(r1.rowsAffected, 1);
            assert.equal(r1.lastInsertRowid, 1n);
            const r2 = await db.execute({
                sql: `INSERT INTO vals_${sfx} (i, f, t, b, n) VALUES (:i, :f, :t, :b, :n)`,
                args: { i: -7n, f: -0.5, t: "", b: new Uint8Array([]), n: null },
            });
            assert.equal(r2.lastInsertRowid, 2n);
            const rs = await db.execute(`SELECT id, i, f, t, b, n FROM vals_${sfx} ORDER BY id`);
            assert.deepEqual(rs.columns, ["id", "i", "f", "t", "b", "n"]);
            assert.equal(rs.rows.length, 2);
            const [a, b] = rs.rows;
            assert.equal(a.id, 1n);
            assert.equal(a.i, big);
            assert.equal(a.f, 3.25);
            assert.equal(a.t, "héllo ✓");
            assert.deepEqual(new Uint8Array(a.b), blob);
            assert.equal(a.n, null);
            assert.equal(b.i, -7n);
            assert.equal(b.f, -0.5);
            assert.equal(b.t, "");
            assert.equal(new Uint8Array(b.b).length, 0);
            assert.equal(b.n, null);
        }, { intMode: "bigint" })],

    ["a 1 MiB blob goes in and comes back byte for byte", () =>
        withClient(async (db) => {
            const blob = new Uint8Array(1 << 20);
            for (let i = 0; i < blob.length; i++) blob[i] = (i * 31 + (i >> 8)) & 0xff;
            await db.execute(`CREATE TABLE big_${sfx} (b BLOB)`);
            await db.execute({ sql: `INSERT INTO big_${sfx} VALUES (?)`, args: [blob] });
            const rs = await db.execute(`SELECT b, length(b) AS len FROM big_${sfx}`);
            assert.equal(rs.rows[0].len, blob.length);
            assert.deepEqual(new Uint8Array(rs.rows[0].b), blob);
        })],

    ["a batch in write mode commits all statements, a failing one rolls back entirely", () =>
        withClient(async (db) => {
            await db.execute(`CREATE TABLE accounts_${sfx} (name TEXT PRIMARY KEY, balance INTEGER NOT NULL)`);
            const results = await db.batch(
                [
                    { sql: `INSERT INTO accounts_${sfx} VALUES (?, ?)`, args: ["alice", 100] },
                    { sql: `INSERT INTO accounts_${sfx} VALUES (:n, :b)`, args: { n: "bob", b: 50 } },
                    `SELECT count(*) AS c FROM accounts_${sfx}`,
                ],
                "write",
            );
            assert.equal(results.length, 3);
            assert.equal(results[0].rowsAffected, 1);
            assert.equal(results[2].rows[0].c, 2);
            await assert.rejects(
                db.batch(
                    [
                        `UPDATE accounts_${sfx} SET balance = balance - 30 WHERE name = 'alice'`,
                        { sql: `INSERT INTO accounts_${sfx} VALUES (?, ?)`, args: ["alice", 1] }, // duplicate key
                    ],
                    "write",
                ),
                (e) => {
                    assert.equal(e.code, "SQLITE_CONSTRAINT_PRIMARYKEY");
                    return true;
                },
            );
            const rs = await db.execute(`SELECT name, balance FROM accounts_${sfx} ORDER BY name`);
            assert.deepEqual(rs.rows.map((r) => [r.name, r.balance]), [["alice", 100], ["bob", 50]]);
        })],

    ["an interactive transaction commits, another rolls back", () =>
        withClient(async (db) => {
            const tx = await db.transaction("write");
            try {
                await tx.execute({ sql: `UPDATE accounts_${sfx} SET balance = balance - ? WHERE name = ?`, args: [10, "alice"] });
                await tx.execute({ sql: `UPDATE accounts_${sfx} SET balance = balance + ? WHERE name = ?`, args: [10, "bob"] });
                const inside = await tx.execute(`SELECT balance FROM accounts_${sfx} WHERE name = 'alice'`);
                assert.equal(inside.rows[0].balance, 90);
                await tx.commit();
            } finally {
                tx.close();
            }
            let rs = await db.execute(`SELECT name, balance FROM accounts_${sfx} ORDER BY name`);
            assert.deepEqual(rs.rows.map((r) => [r.name, r.balance]), [["alice", 90], ["bob", 60]]);

            const tx2 = await db.transaction("write");
            try {
                await tx2.execute(`DELETE FROM accounts_${sfx}`);
                const inside = await tx2.execute(`SELECT count(*) AS c FROM accounts_${sfx}`);
                assert.equal(inside.rows[0].c, 0);
                await tx2.rollback();
            } finally {
                tx2.close();
            }
            rs = await db.execute(`SELECT count(*) AS c FROM accounts_${sfx}`);
            assert.equal(rs.rows[0].c, 2);
        })],

    ["SQL errors surface as errors with their codes", () =>
        withClient(async (db) => {
            await assert.rejects(db.execute("SELEC 1"), (e) => {
                assert.equal(e.code, "SQL_PARSE_ERROR");
                return true;
            });
            await assert.rejects(db.execute(`SELECT * FROM no_such_table_${sfx}`), (e) => {
                assert.match(e.message, /no such table/);
                return true;
            });
            await assert.rejects(db.execute({ sql: `INSERT INTO accounts_${sfx} VALUES (?, ?)`, args: ["bob", 0] }), (e) => {
                assert.equal(e.code, "SQLITE_CONSTRAINT_PRIMARYKEY");
                return true;
            });
            // The connection is still usable after the errors.
            const rs = await db.execute(`SELECT count(*) AS c FROM accounts_${sfx}`);
            assert.equal(rs.rows[0].c, 2);
        })],

    // 50 on a cold client: over HTTP it opens about one connection per statement in flight
    // (undici dispatches the next request before the last socket is back in its pool: 32 to 40
    // here), each connection's first request is a token check, and the server judges those per
    // address in a burst of 64, then 10/s, with at most 32 waiting (it was 20 and 16, and this
    // case got 429s).
    ["50 concurrent statements on a cold client all get their own answer", () =>
        withClient(async (db) => {
            const results = await Promise.all(
                Array.from({ length: 50 }, (_, i) => db.execute({ sql: "SELECT ? * 2 AS d", args: [i] })),
            );
            results.forEach((rs, i) => assert.equal(rs.rows[0].d, i * 2));
        })],

    ["a wrong token is refused", async () => {
        const db = createClient({ url, authToken: "wrong" });
        try {
            await assert.rejects(db.execute("SELECT 1"), (e) => {
                // Over WebSocket the Hrana hello is refused (AUTH_JWT_INVALID), over HTTP the
                // request is a 401 (UNAUTHORIZED from its JSON body, or SERVER_ERROR 401).
                if (e.code === "SERVER_ERROR") {
                    assert.match(e.message, /HTTP status 401\b/);
                } else {
                    assert.match(String(e.code), /^(AUTH_JWT_INVALID|UNAUTHORIZED)$/, e.message);
                }
                return true;
            });
        } finally {
            db.close();
        }
    }],
];

const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
for (const [name, fn] of cases) {
    try {
        await fn();
        print({ name, ok: true });
    } catch (e) {
        // The stack plus every `cause` (fetch's TypeError keeps the TLS error there).
        let error = e?.stack ?? String(e);
        for (let x = e?.cause, n = 0; x && n < 10; x = x.cause, n++) {
            error += `\ncaused by: ${x.code ? `[${x.code}] ` : ""}${x.stack ?? x}`;
        }
        print({ name, ok: false, error });
    }
}
print({ done: true, names: cases.map(([name]) => name) });
