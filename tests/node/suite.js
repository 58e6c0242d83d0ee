// The SQL suite shared by every transport: the unmodified @libsql/client from npm against a
// wsbridge server, whatever URL it is given (ws:// for Hrana over WebSocket, http:// or
// libsql://...?tls=0 for Hrana over HTTP).
//
// sqlSuite() registers a before hook that starts a server with a fresh database, an after hook
// that stops it, and the tests, in the current context (the file's top level or a describe
// block). The tests run in order and build on one another (the accounts table).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { TOKEN, startServer } from "./server.js";

/**
 * @param {object} opts
 * @param {(server: {url: string, httpUrl: string, port: number}) => string} opts.urlOf
 *     the client URL for a started server
 * @param {(e: any) => void} opts.checkAuthError asserts what a refused token looks like
 * @returns {{ server: () => object, url: () => string, client: (options?: object) => any }}
 *     accessors valid once the before hook has run
 */
export function sqlSuite({ urlOf, checkAuthError }) {
    let server;
    let url;

    before(async () => {
        server = await startServer();
        url = urlOf(server);
    });

    after(() => server?.stop());

    function client(options = {}) {
        return createClient({ url, authToken: TOKEN, ...options });
    }

    test("create, insert with positional and named args, read every value type back", async () => {
        const db = client({ intMode: "bigint" });
        try {
            await db.execute("CREATE TABLE vals (id INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB, n)");
            const big = 2n ** 53n + 1n;
            const blob = new Uint8Array([0, 1, 2, 250, 255]);
            const r1 = await db.execute({
                sql: "INSERT INTO vals (i, f, t, b, n) VALUES (?, ?, ?, ?, ?)",
                args: [big, 3.25, "héllo ✓", blob, null],
            });
            assert.equal(r1.rowsAffected, 1);
            assert.equal(r1.lastInsertRowid, 1n);
            const r2 = await db.execute({
                sql: "INSERT INTO vals (i, f, t, b, n) VALUES (:i, $f, @t, :b, :n)",
                args: { i: -(2n ** 62n), f: -0.5, t: "", b: new Uint8Array([]), n: null },
            });
            assert.equal(r2.lastInsertRowid, 2n);
            const rs = await db.execute("SELECT i, f, t, b, n FROM vals ORDER BY id");
            assert.deepEqual(rs.columns, ["i", "f", "t", "b", "n"]);
            assert.deepEqual(rs.columnTypes, ["INTEGER", "REAL", "TEXT", "BLOB", ""]);
            assert.equal(rs.rows.length, 2);
            const [a, b] = rs.rows;
            assert.equal(a.i, big);
            assert.equal(typeof a.i, "bigint");
            assert.equal(a.f, 3.25);
            assert.equal(a.t, "héllo ✓");
            assert.deepEqual(new Uint8Array(a.b), blob);
            assert.equal(a.n, null);
            assert.equal(b.i, -(2n ** 62n));
            assert.equal(b.f, -0.5);
            assert.equal(b.t, "");
            assert.equal(new Uint8Array(b.b).length, 0);
            // Arithmetic on the server stays exact above 2^53.
            const sum = await db.execute({ sql: "SELECT ? + 1 AS s", args: [big] });
            assert.equal(sum.rows[0].s, big + 1n);
        } finally {
            db.close();
        }
    });

    test("integers above 2^53 read as strings with intMode 'string'", async () => {
        const db = client({ intMode: "string" });
        try {
            const rs = await db.execute("SELECT 9007199254740993 AS x, -9223372036854775808 AS y");
            assert.equal(rs.rows[0].x, "9007199254740993");
            assert.equal(rs.rows[0].y, "-9223372036854775808");
        } finally {
            db.close();
        }
    });

    test("batch in write mode commits all statements", async () => {
        const db = client();
        try {
            await db.execute("CREATE TABLE accounts (name TEXT PRIMARY KEY, balance INTEGER NOT NULL)");
            const results = await db.batch(
                [
                    { sql: "INSERT INTO accounts VALUES (?, ?)", args: ["alice", 100] },
                    { sql: "INSERT INTO accounts VALUES (?, ?)", args: ["bob", 50] },
                    "SELECT count(*) AS c FROM accounts",
                ],
                "write",
            );
            assert.equal(results.length, 3);
            assert.equal(results[2].rows[0].c, 2);
        } finally {
            db.close();
        }
    });

    test("batch in write mode rolls back entirely when one statement fails", async () => {
        const db = client();
        try {
            await assert.rejects(
                db.batch(
                    [
                        "UPDATE accounts SET balance = balance - 30 WHERE name = 'alice'",
                        "UPDATE accounts SET balance = balance + 30 WHERE name = 'bob'",
                        { sql: "INSERT INTO accounts VALUES (?, ?)", args: ["alice", 1] }, // duplicate key
                    ],
                    "write",
                ),
                (e) => {
                    assert.equal(e.code, "SQLITE_CONSTRAINT_PRIMARYKEY");
                    return true;
                },
            );
            const rs = await db.execute("SELECT name, balance FROM accounts ORDER BY name");
            assert.deepEqual(
                rs.rows.map((r) => [r.name, r.balance]),
                [["alice", 100], ["bob", 50]],
            );
        } finally {
            db.close();
        }
    });

    test("interactive transaction: commit", async () => {
        const db = client();
        try {
            const tx = await db.transaction("write");
            await tx.execute({ sql: "UPDATE accounts SET balance = balance - ? WHERE name = ?", args: [10, "alice"] });
            await tx.execute({ sql: "UPDATE accounts SET balance = balance + ? WHERE name = ?", args: [10, "bob"] });
            const inside = await tx.execute("SELECT balance FROM accounts WHERE name = 'alice'");
            assert.equal(inside.rows[0].balance, 90);
            await tx.commit();
            const rs = await db.execute("SELECT name, balance FROM accounts ORDER BY name");
            assert.deepEqual(rs.rows.map((r) => [r.name, r.balance]), [["alice", 90], ["bob", 60]]);
        } finally {
            db.close();
        }
    });

    test("interactive transaction: rollback", async () => {
        const db = client();
        try {
            const tx = await db.transaction("write");
            await tx.execute("DELETE FROM accounts");
            const inside = await tx.execute("SELECT count(*) AS c FROM accounts");
            assert.equal(inside.rows[0].c, 0);
            await tx.rollback();
            const rs = await db.execute("SELECT count(*) AS c FROM accounts");
            assert.equal(rs.rows[0].c, 2);
        } finally {
            db.close();
        }
    });

    test("read transaction refuses writes", async () => {
        const db = client();
        try {
            const tx = await db.transaction("read");
            const rs = await tx.execute("SELECT count(*) AS c FROM accounts");
            assert.equal(rs.rows[0].c, 2);
            await assert.rejects(tx.execute("DELETE FROM accounts"), /SQLITE_READONLY/);
            tx.close();
            const after = await db.execute("SELECT count(*) AS c FROM accounts");
            assert.equal(after.rows[0].c, 2);
        } finally {
            db.close();
        }
    });

    test("executeMultiple and errors with codes", async () => {
        const db = client();
        try {
            await db.executeMultiple("CREATE TABLE m (x UNIQUE); INSERT INTO m VALUES (1); INSERT INTO m VALUES (2);");
            const rs = await db.execute("SELECT count(*) AS c FROM m");
            assert.equal(rs.rows[0].c, 2);
            await assert.rejects(db.execute("INSERT INTO m VALUES (1)"), (e) => {
                assert.equal(e.code, "SQLITE_CONSTRAINT_UNIQUE");
                return true;
            });
            await assert.rejects(db.execute("SELEC 1"), (e) => {
                assert.equal(e.code, "SQL_PARSE_ERROR");
                return true;
            });
        } finally {
            db.close();
        }
    });

    test("many concurrent statements on one client", async () => {
        const db = client();
        try {
            const results = await Promise.all(
                Array.from({ length: 200 }, (_, i) => db.execute({ sql: "SELECT ? * 2 AS d", args: [i] })),
            );
            results.forEach((rs, i) => assert.equal(rs.rows[0].d, i * 2));
        } finally {
            db.close();
        }
    });

    test("a wrong token is refused", async () => {
        const db = createClient({ url, authToken: "wrong" });
        try {
            await assert.rejects(db.execute("SELECT 1"), (e) => {
                checkAuthError(e);
                return true;
            });
        } finally {
            db.close();
        }
    });

    return { server: () => server, url: () => url, client };
}
