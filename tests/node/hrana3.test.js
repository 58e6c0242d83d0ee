// Hrana 3 through @libsql/hrana-client (the layer under @libsql/client) asking for version 3:
// it offers hrana3-protobuf, hrana3, hrana2, hrana1, gets hrana3 (JSON), and runs batches
// through cursors, get_autocommit and the is_autocommit condition.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as hrana from "@libsql/hrana-client";
import { TOKEN, startServer } from "./server.js";

let server;
let client;

before(async () => {
    server = await startServer();
    client = hrana.openWs(server.url, TOKEN, 3);
});

after(() => {
    client?.close();
    server?.stop();
});

test("negotiates hrana3 (JSON)", async () => {
    assert.equal(await client.getVersion(), 3);
});

test("batches run through cursors, with conditions", async () => {
    const stream = client.openStream();
    try {
        await stream.run("CREATE TABLE c (x INTEGER)");
        const b = stream.batch(true);
        const s0 = b.step();
        const p0 = s0.run("BEGIN");
        const s1 = b.step().condition(hrana.BatchCond.ok(s0));
        const p1 = s1.run("INSERT INTO c SELECT value FROM json_each('[1,2,3,4,5]')");
        const s2 = b.step().condition(hrana.BatchCond.and(b, [hrana.BatchCond.ok(s1),
            hrana.BatchCond.not(hrana.BatchCond.isAutocommit(b))]));
        const p2 = s2.query("SELECT x FROM c ORDER BY x");
        const s3 = b.step().condition(hrana.BatchCond.ok(s2));
        const p3 = s3.run("COMMIT");
        const s4 = b.step().condition(hrana.BatchCond.not(hrana.BatchCond.ok(s3)));
        const p4 = s4.run("ROLLBACK");
        await b.execute();
        await p0;
        assert.equal((await p1).affectedRowCount, 5);
        assert.deepEqual((await p2).rows.map((r) => r.x), [1, 2, 3, 4, 5]);
        await p3;
        assert.equal(await p4, undefined, "ROLLBACK skipped");
        assert.equal(await stream.getAutocommit(), true);
    } finally {
        stream.close();
    }
});

test("describe, stored SQL and sequence", async () => {
    const stream = client.openStream();
    try {
        const d = await stream.describe("SELECT x AS y FROM c WHERE x > :min");
        assert.deepEqual(d.paramNames, [":min"]);
        assert.deepEqual(d.columns.map((c) => c.name), ["y"]);
        assert.equal(d.isReadonly, true);
        const sql = client.storeSql("SELECT count(*) FROM c WHERE x > ?");
        assert.equal(await stream.queryValue([sql, [2]]).then((v) => v.value), 3);
        sql.close();
        await stream.sequence("INSERT INTO c VALUES (6); INSERT INTO c VALUES (7);");
        assert.equal((await stream.queryValue("SELECT count(*) FROM c")).value, 7);
        const tx = stream.batch(true);
        tx.step().run("BEGIN");
        await tx.execute();
        assert.equal(await stream.getAutocommit(), false);
        await stream.run("ROLLBACK");
    } finally {
        stream.close();
    }
});
