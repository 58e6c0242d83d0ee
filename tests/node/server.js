// Starts the wsbridge binary (WSBRIDGE_BIN) on an ephemeral port with a fresh database file.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const TOKEN = "node-test-token-0123456789-" + process.pid;

/**
 * Starts a server; resolves to { url, httpUrl, httpsUrl, wssUrl, port, output, waitForLine, stop }:
 * `url` is the ws:// URL of the SQL route, `httpUrl` the same address as http:// (Hrana over
 * HTTP), `httpsUrl` and `wssUrl` the same as https:// and wss:// (only served when `extraArgs`
 * turn TLS on, e.g. --tls-cert/--tls-key), `port` the ephemeral port. `output` collects the
 * server's stdout lines as they arrive; `waitForLine(re)` resolves to the first line matching
 * `re` (already seen or still to come). `extraArgs` are appended to `wsbridge serve`'s arguments
 * (e.g. ["--allow-origin", "https://a.b"]).
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
    const output = [];
    const waiters = [];
    let exited = null;
    lines.on("line", (line) => {
        output.push(line);
        for (const w of [...waiters]) {
            if (w.re.test(line)) {
                waiters.splice(waiters.indexOf(w), 1);
                w.resolve(line);
            }
        }
    });
    server.once("exit", (code, signal) => {
        exited = new Error(`wsbridge exited with ${code ?? signal}`);
        for (const w of waiters.splice(0)) w.reject(exited);
    });
    const waitForLine = (re) => {
        const seen = output.find((line) => re.test(line));
        if (seen !== undefined) return Promise.resolve(seen);
        if (exited) return Promise.reject(exited);
        return new Promise((resolve, reject) => waiters.push({ re, resolve, reject }));
    };
    const addr = (await waitForLine(/ listening on (\S+)/)).match(/ listening on (\S+)/)[1];
    const port = Number(addr.slice(addr.lastIndexOf(":") + 1));
    assert.ok(Number.isInteger(port) && port > 0, `no port in listening address ${addr}`);
    const stop = () => {
        server.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
    };
    return {
        url: `ws://${addr}`,
        httpUrl: `http://${addr}`,
        httpsUrl: `https://${addr}`,
        wssUrl: `wss://${addr}`,
        port,
        output,
        waitForLine,
        stop,
    };
}
