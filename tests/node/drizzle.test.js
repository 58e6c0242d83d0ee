// Drizzle ORM (drizzle-orm/libsql) over wsbridge's Hrana over HTTP: a @libsql/client created on
// the http:// URL, the schema created by drizzle's own migrator from the drizzle-kit style
// migrations in ./drizzle (meta/_journal.json and one .sql file per entry), then inserts,
// queries, updates, deletes, batches and transactions through the ORM.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createClient } from "@libsql/client";
import { drizzle } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import { sqliteTable, integer, text } from "drizzle-orm/sqlite-core";
import { and, asc, desc, eq, gte, inArray, like, sql, TransactionRollbackError } from "drizzle-orm";
import { TOKEN, startServer } from "./server.js";

const migrationsFolder = fileURLToPath(new URL("./drizzle", import.meta.url));

const users = sqliteTable("users", {
    id: integer("id").primaryKey({ autoIncrement: true }),
    name: text("name").notNull(),
    email: text("email").notNull().unique(),
    age: integer("age"),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
    tags: text("tags", { mode: "json" }).$type(),
});

const posts = sqliteTable("posts", {
    id: integer("id").primaryKey({ autoIncrement: true }),
    authorId: integer("author_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
});

let server;
let client;
let db;

before(async () => {
    server = await startServer();
    client = createClient({ url: server.httpUrl, authToken: TOKEN });
    assert.equal(client.protocol, "http");
    db = drizzle({ client });
});

after(() => {
    client?.close();
    server?.stop();
});

test("migrate applies the migrations folder once", async () => {
    await migrate(db, { migrationsFolder });
    const tables = await db.all(
        sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
    );
    assert.deepEqual(tables.map((t) => t.name), ["__drizzle_migrations", "posts", "users"]);
    const index = await db.all(sql`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users'`);
    assert.ok(index.some((i) => i.name === "users_email_unique"), JSON.stringify(index));
    const applied = await db.all(sql`SELECT hash, created_at FROM __drizzle_migrations ORDER BY created_at`);
    assert.deepEqual(applied.map((m) => Number(m.created_at)), [1764820800000, 1764820860000]);
    applied.forEach((m) => assert.match(m.hash, /^[0-9a-f]{64}$/));

    await migrate(db, { migrationsFolder }); // nothing newer: a no-op
    const again = await db.all(sql`SELECT count(*) AS c FROM __drizzle_migrations`);
    assert.equal(again[0].c, 2);
});

test("insert, with returning", async () => {
    const [ada] = await db
        .insert(users)
        .values({ name: "Ada", email: "ada@example.org", age: 36, tags: ["math", "engines"] })
        .returning();
    assert.equal(ada.id, 1);
    assert.equal(ada.active, true);
    assert.deepEqual(ada.tags, ["math", "engines"]);

    const res = await db.insert(users).values([
        { name: "Grace", email: "grace@example.org", age: 85, active: false },
        { name: "Linus", email: "linus@example.org", age: 28, tags: [] },
        { name: "Barbara", email: "barbara@example.org", age: 44 },
        { name: "Édouard ✓", email: "edouard@example.org", age: null },
    ]);
    assert.equal(res.rowsAffected, 4);
    assert.equal(Number(res.lastInsertRowid), 5);

    await assert.rejects(
        db.insert(users).values({ name: "Dup", email: "ada@example.org" }),
        (e) => {
            const err = e.cause ?? e;
            assert.equal(err.code, "SQLITE_CONSTRAINT_UNIQUE");
            return true;
        },
    );
    const count = await db.$count(users);
    assert.equal(count, 5);
});

test("select with where, orderBy, limit and a join", async () => {
    const older = await db
        .select({ name: users.name, age: users.age })
        .from(users)
        .where(and(gte(users.age, 30), eq(users.active, true)))
        .orderBy(desc(users.age));
    assert.deepEqual(older, [
        { name: "Barbara", age: 44 },
        { name: "Ada", age: 36 },
    ]);

    const first = await db.select().from(users).where(like(users.email, "%ace%")).get();
    assert.equal(first.name, "Grace");
    assert.equal(first.active, false);
    assert.equal(first.tags, null);

    const unicode = await db.select().from(users).where(eq(users.name, "Édouard ✓")).all();
    assert.equal(unicode.length, 1);
    assert.equal(unicode[0].age, null);

    const page = await db.select({ id: users.id }).from(users).orderBy(asc(users.name)).limit(2).offset(1);
    assert.deepEqual(page.map((u) => u.id), [4, 2]); // Ada, [Barbara, Grace], Linus, Édouard ✓

    await db.insert(posts).values([
        { authorId: 1, title: "Notes on the Analytical Engine" },
        { authorId: 2, title: "COBOL" },
        { authorId: 1, title: "Sketch of the engine" },
    ]);
    const joined = await db
        .select({ title: posts.title, author: users.name })
        .from(posts)
        .innerJoin(users, eq(posts.authorId, users.id))
        .where(eq(users.name, "Ada"))
        .orderBy(asc(posts.id));
    assert.deepEqual(joined, [
        { title: "Notes on the Analytical Engine", author: "Ada" },
        { title: "Sketch of the engine", author: "Ada" },
    ]);
});

test("update", async () => {
    const res = await db
        .update(users)
        .set({ age: sql`${users.age} + 1` })
        .where(inArray(users.name, ["Ada", "Linus"]));
    assert.equal(res.rowsAffected, 2);
    const updated = await db
        .update(users)
        .set({ active: false, tags: ["kernel"] })
        .where(eq(users.name, "Linus"))
        .returning({ id: users.id, age: users.age, active: users.active, tags: users.tags });
    assert.deepEqual(updated, [{ id: 3, age: 29, active: false, tags: ["kernel"] }]);
    const ada = await db.select({ age: users.age }).from(users).where(eq(users.id, 1)).get();
    assert.equal(ada.age, 37);
});

test("delete", async () => {
    const res = await db.delete(users).where(eq(users.active, false)).returning({ name: users.name });
    assert.deepEqual(res.map((r) => r.name).sort(), ["Grace", "Linus"]);
    // Grace's post went by the cascade if the connection enforces foreign keys, else it goes here.
    await db.delete(posts).where(eq(posts.authorId, 2));
    const left = await db.select({ name: users.name }).from(users).orderBy(asc(users.id));
    assert.deepEqual(left.map((u) => u.name), ["Ada", "Barbara", "Édouard ✓"]);
    const none = await db.delete(users).where(eq(users.name, "nobody"));
    assert.equal(none.rowsAffected, 0);
});

test("db.batch runs its statements together", async () => {
    const [ins, sel] = await db.batch([
        db.insert(users).values({ name: "Katherine", email: "katherine@example.org", age: 101 }),
        db.select({ n: sql`count(*)` }).from(users),
    ]);
    assert.equal(ins.rowsAffected, 1);
    assert.equal(Number(sel[0].n), 4);
});

test("db.transaction commits", async () => {
    const result = await db.transaction(async (tx) => {
        const [margaret] = await tx
            .insert(users)
            .values({ name: "Margaret", email: "margaret@example.org", age: 38 })
            .returning({ id: users.id });
        await tx.insert(posts).values({ authorId: margaret.id, title: "Apollo guidance" });
        const inside = await tx.select({ n: sql`count(*)` }).from(posts).where(eq(posts.authorId, margaret.id));
        assert.equal(Number(inside[0].n), 1);
        return margaret.id;
    });
    const rows = await db
        .select({ title: posts.title })
        .from(posts)
        .innerJoin(users, eq(posts.authorId, users.id))
        .where(eq(users.id, result));
    assert.deepEqual(rows, [{ title: "Apollo guidance" }]);
});

test("db.transaction rolls back on tx.rollback() and on a thrown error", async () => {
    const before = await db.$count(users);
    await assert.rejects(
        db.transaction(async (tx) => {
            await tx.insert(users).values({ name: "Temp", email: "temp@example.org" });
            assert.equal(await tx.$count(users), before + 1);
            tx.rollback();
        }),
        TransactionRollbackError,
    );
    assert.equal(await db.$count(users), before);

    await assert.rejects(
        db.transaction(async (tx) => {
            await tx.update(users).set({ age: 0 });
            await tx.insert(users).values({ name: "Dup", email: "ada@example.org" }); // unique violation
        }),
        (e) => {
            assert.equal((e.cause ?? e).code, "SQLITE_CONSTRAINT_UNIQUE");
            return true;
        },
    );
    const ages = await db.select({ age: users.age }).from(users).where(eq(users.name, "Ada"));
    assert.deepEqual(ages, [{ age: 37 }]);
});

test("a nested transaction (savepoint) rolls back alone", async () => {
    await db.transaction(async (tx) => {
        await tx.insert(users).values({ name: "Outer", email: "outer@example.org" });
        await assert.rejects(
            tx.transaction(async (inner) => {
                await inner.insert(users).values({ name: "Inner", email: "inner@example.org" });
                inner.rollback();
            }),
            TransactionRollbackError,
        );
    });
    const names = await db
        .select({ name: users.name })
        .from(users)
        .where(inArray(users.name, ["Outer", "Inner"]));
    assert.deepEqual(names, [{ name: "Outer" }]);
});
