// Starts the wsbridge binary (WSBRIDGE_BIN) on an ephemeral port with a fresh database file.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const TOKEN = "node-test-token-0123456789-" + process.pid;

/**
 * Starts a server; resolves to { url, httpUrl, port, stop }: `url` is the ws:// URL of the SQL
 * route, `httpUrl` the same address as http:// (Hrana over HTTP), `port` the ephemeral port.
 * `extraArgs` are appended to `wsbridge serve`'s arguments (e.g. ["--allow-origin", "https://a.b"]).
 */
export async function startServer(extraArgs = []) {
    const bin = process.env.WSBRIDGE_BIN;
    assert.ok(bin, "WSBRIDGE_BIN must point at the wsbridge binary (use run.sh)");
    const dir = mkdtempSync(join(tmpdir(), "wsbridge-node-"));
    const server = spawn(
        bin,
        ["serve", "--listen", "127.0.0.1:0", "--token", TOKEN, "--db", join(dir, "test.db"), ...extraArgs],
        { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, WSBRIDGE_LOG: "warn" } },
    );
    const lines = createInterface({ input: server.stdout });
    const addr = await new Promise((resolve, reject) => {
        server.once("exit", (code) => reject(new Error(`wsbridge exited with ${code}`)));
        lines.on("line", (line) => {
            const m = line.match(/ listening on (\S+)/);
            if (m) resolve(m[1]);
        });
    });
    const port = Number(addr.slice(addr.lastIndexOf(":") + 1));
    assert.ok(Number.isInteger(port) && port > 0, `no port in listening address ${addr}`);
    const stop = () => {
        server.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
    };
    return { url: `ws://${addr}`, httpUrl: `http://${addr}`, port, stop };
}
