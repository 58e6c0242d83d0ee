// The SQL console beside the browser terminal: a real wsbridge (an in-memory database), Debian's
// Chromium, the page as a person uses it: statements typed and run, results read off the table.
// The page is served here under a strict Content-Security-Policy (no inline script or style
// attributes, connections only to its own origin), and any violation fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
// A relative WSBRIDGE_BIN is relative to the repository root (run.sh runs from tests/browser).
const bin = process.env.WSBRIDGE_BIN
  ? path.resolve(root, process.env.WSBRIDGE_BIN)
  : ['target/release/wsbridge', 'target/debug/wsbridge'].map(p => path.join(root, p)).find(existsSync);
const token = randomBytes(16).toString('hex');
const shot = path.join(root, 'target', 'sql-console.png');

const CSP =
  "default-src 'none'; script-src 'self'; style-src-elem 'self' 'unsafe-inline'; style-src-attr 'none'; " +
  "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

let server;
let browser;
let base;

function startServer() {
  assert.ok(bin, 'no wsbridge binary: run `cargo build` first or set WSBRIDGE_BIN');
  server = spawn(
    bin,
    ['serve', '--listen', '127.0.0.1:0', '--token', token, '--shell', '/bin/sh', '--db', ':memory:'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SHELL: '/bin/sh', PS1: '$ ', WSBRIDGE_LOG: 'info' },
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15000);
    server.stdout.on('data', chunk => {
      out += chunk;
      const m = out.match(/listening on (127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
    server.on('error', e => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    server.on('exit', code => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

before(async () => {
  base = await startServer();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // The document comes through page.route (to add the CSP), and Chromium cannot tell the
      // address space of a fulfilled response: without this, its Local Network Access checks
      // would block the page's WebSockets to 127.0.0.1.
      '--disable-features=LocalNetworkAccessChecks',
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

/** A page whose document carries `CSP`; page errors, console errors and CSP violations collected. */
async function openPage(query, { trackSockets = false } = {}) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => m.type() === 'error' && errors.push(m.text()));
  await page.route(
    url => url.pathname === '/',
    async route => {
      const response = await route.fetch();
      await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': CSP } });
    },
  );
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', e =>
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  if (trackSockets) {
    // Every WebSocket the page opens on `sql`, in window.sqlSockets.
    await page.addInitScript(() => {
      const Native = window.WebSocket;
      window.sqlSockets = [];
      window.WebSocket = class extends Native {
        constructor(url, protocols) {
          super(url, protocols);
          if (new URL(url).pathname.endsWith('/sql')) window.sqlSockets.push(this);
        }
      };
    });
  }
  await page.goto(`${base}/${query}`);
  return { page, errors };
}

/** Types `sql` into the console, runs it (Ctrl+Enter or the button) and waits for it to finish. */
async function runSql(page, sql, { key = false } = {}) {
  const runs = Number(await page.getAttribute('#sql-panel', 'data-runs'));
  await page.fill('#sql-input', sql);
  if (key) {
    await page.focus('#sql-input');
    await page.keyboard.press('Control+Enter');
  } else {
    await page.click('#sql-run');
  }
  await page.waitForSelector(`#sql-panel[data-runs="${runs + 1}"]`, { state: 'attached', timeout: 10000 });
  return page.locator('#sql-results');
}

const texts = locator => locator.evaluateAll(nodes => nodes.map(n => n.textContent));

test('run SQL in the console beside the terminal', async () => {
  const { page, errors } = await openPage(`?token=${token}`);
  await page.waitForFunction(() => window.wsbridge?.connected, undefined, { timeout: 10000 });
  await page.waitForFunction(() => window.wsbridge.screenText().includes('$'), undefined, { timeout: 10000 });

  // Collapsed at first: only the toggle; opening it shrinks the terminal, which refits.
  assert.equal(await page.isVisible('#sql-input'), false);
  const colsClosed = await page.evaluate(() => window.wsbridge.term.cols);
  await page.click('#sql-toggle');
  assert.equal(await page.getAttribute('#sql-toggle', 'aria-expanded'), 'true');
  assert.ok(await page.isVisible('#sql-input'));
  await page.waitForFunction(c => window.wsbridge.term.cols < c, colsClosed, { timeout: 10000 });
  const terminalBox = await page.locator('#terminal').boundingBox();
  const panelBox = await page.locator('#sql-panel').boundingBox();
  assert.ok(terminalBox.x + terminalBox.width <= panelBox.x + 0.5, 'the terminal and the panel overlap');
  assert.ok(terminalBox.width > 0 && panelBox.width > 0);
  // The console connects when opened.
  await page.waitForFunction(() => window.wsbridge.sql.connected, undefined, { timeout: 10000 });
  assert.equal(await page.textContent('#sql-status'), 'connected');

  let results = await runSql(page, 'CREATE TABLE t(a INTEGER, b TEXT)', { key: true });
  assert.equal(await results.locator('.sql-error').count(), 0, await results.textContent());
  assert.equal(await results.locator('.sql-info').textContent(), '0 rows affected');

  results = await runSql(page, "INSERT INTO t VALUES (1,'one'),(2,'two')");
  assert.equal(await results.locator('.sql-error').count(), 0, await results.textContent());
  assert.match(await results.locator('.sql-info').textContent(), /^2 rows affected\b/);

  results = await runSql(page, 'SELECT a, b FROM t ORDER BY a', { key: true });
  assert.deepEqual(await texts(results.locator('table thead th')), ['a', 'b']);
  const rows = await results
    .locator('table tbody tr')
    .evaluateAll(trs => trs.map(tr => Array.from(tr.cells, td => td.textContent)));
  assert.deepEqual(rows, [
    ['1', 'one'],
    ['2', 'two'],
  ]);
  assert.equal(await results.locator('.sql-info').textContent(), '2 rows');

  // NULL is shown apart from the text 'NULL'; floats and blobs as values.
  results = await runSql(page, "SELECT NULL AS n, 'NULL' AS s, 1.5 AS f, 2.0 AS g, x'00ff' AS bl");
  assert.deepEqual(await texts(results.locator('table thead th')), ['n', 's', 'f', 'g', 'bl']);
  assert.deepEqual(await texts(results.locator('tbody td')), ['NULL', 'NULL', '1.5', '2.0', "x'00ff'"]);
  assert.deepEqual(await texts(results.locator('tbody td.sql-null')), ['NULL']);

  // Several statements (a ';' inside a string does not split): one result each, in order.
  results = await runSql(page, "INSERT INTO t VALUES (3, 'x;y');\nSELECT count(*) AS n FROM t;");
  assert.equal(await results.locator('.sql-result').count(), 2, await results.textContent());
  assert.match(await results.locator('.sql-result').nth(0).locator('.sql-info').textContent(), /^1 row affected/);
  assert.deepEqual(await texts(results.locator('.sql-result').nth(1).locator('tbody td')), ['3']);

  // A bad statement: the server's message, shown as an error.
  results = await runSql(page, 'SELECT * FROM missing', { key: true });
  assert.equal(await results.locator('table').count(), 0);
  assert.match(await results.locator('.sql-error').textContent(), /no such table/);
  assert.equal(await page.getAttribute('#sql-results .sql-error', 'role'), 'alert');

  // And the console still works after the error, on the same connection.
  results = await runSql(page, 'SELECT b FROM t WHERE a = 2');
  assert.deepEqual(await texts(results.locator('tbody td')), ['two']);

  // The terminal beside it still works, at its new size.
  await page.click('#terminal');
  await page.keyboard.type('echo $((6*7))');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /^42\s*$/m.test(window.wsbridge.screenText()), undefined, { timeout: 10000 });
  const { cols, rows: termRows } = await page.evaluate(() => ({
    cols: window.wsbridge.term.cols,
    rows: window.wsbridge.term.rows,
  }));
  await page.keyboard.type('stty size');
  await page.keyboard.press('Enter');
  await page.waitForFunction(want => window.wsbridge.screenText().includes(want), `${termRows} ${cols}`, {
    timeout: 10000,
  });
  await runSql(page, 'SELECT a, b FROM t ORDER BY a');
  mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });

  // Closing the panel gives the terminal its width back.
  await page.click('#sql-toggle');
  assert.equal(await page.isVisible('#sql-input'), false);
  await page.waitForFunction(c => window.wsbridge.term.cols > c, cols, { timeout: 10000 });

  assert.deepEqual(errors, []);
  await page.close();
});

test('the console reconnects when its socket was closed', async () => {
  const { page, errors } = await openPage(`?token=${token}`, { trackSockets: true });
  await page.waitForFunction(() => window.wsbridge?.connected, undefined, { timeout: 10000 });
  await page.click('#sql-toggle');
  let results = await runSql(page, 'CREATE TABLE r(x); INSERT INTO r VALUES (7)');
  assert.equal(await results.locator('.sql-error').count(), 0, await results.textContent());
  // The socket goes away under the page (as with a server restart or a network change).
  await page.evaluate(() => window.sqlSockets.forEach(ws => ws.close()));
  await page.waitForFunction(() => !window.wsbridge.sql.connected, undefined, { timeout: 10000 });
  await page.waitForSelector('#sql-status[data-state="closed"]', { timeout: 10000 });
  // The next run opens a new one (the in-memory database is shared, so the row is there).
  results = await runSql(page, 'SELECT x FROM r');
  assert.deepEqual(await texts(results.locator('tbody td')), ['7']);
  assert.equal(await page.evaluate(() => window.sqlSockets.length), 2);
  assert.equal(await page.textContent('#sql-status'), 'connected');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a console without the token says why it is refused', async () => {
  const { page } = await openPage('');
  await page.click('#sql-toggle');
  const results = await runSql(page, 'SELECT 1');
  assert.match(await results.locator('.sql-error').textContent(), /authentication required/);
  assert.equal(await page.getAttribute('#sql-status', 'data-state'), 'error');
  await page.close();
});
