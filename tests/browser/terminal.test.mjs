// The browser terminal end to end: a real wsbridge, Debian's Chromium, the page as a person uses it.
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
const shot = path.join(root, 'target', 'tty-browser.png');

let server;
let browser;
let base;

function startServer() {
  assert.ok(bin, 'no wsbridge binary: run `cargo build` first or set WSBRIDGE_BIN');
  server = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--token', token, '--shell', '/bin/sh'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SHELL: '/bin/sh', PS1: '$ ', WSBRIDGE_LOG: 'info' },
  });
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
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

const screenText = page => page.evaluate(() => window.wsbridge.screenText());

async function waitForScreen(page, predicate, what) {
  try {
    await page.waitForFunction(predicate, undefined, { timeout: 10000 });
  } catch (e) {
    throw new Error(`${what} not on screen:\n${await screenText(page)}`);
  }
}

async function run(page, command) {
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

test('type a command in the browser terminal and see its output', async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 620 } });
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => m.type() === 'error' && errors.push(m.text()));
  const response = await page.goto(`${base}/?token=${token}`);
  assert.equal(response.headers()['referrer-policy'], 'no-referrer');
  assert.match(response.headers()['content-security-policy'], /frame-ancestors 'none'/);

  await page.waitForFunction(() => window.wsbridge?.connected, undefined, { timeout: 10000 });
  assert.equal(new URL(page.url()).search, '', 'the token must leave the address bar');
  // Chromium offers permessage-deflate on every WebSocket, and wsbridge accepts it (RFC 7692):
  // everything below runs compressed both ways.
  assert.match(await page.evaluate(() => window.wsbridge.extensions), /^permessage-deflate/);
  await waitForScreen(page, () => window.wsbridge.screenText().includes('$'), 'the prompt');

  await page.click('#terminal');
  await run(page, 'echo $((6*7))');
  await waitForScreen(page, () => /^42\s*$/m.test(window.wsbridge.screenText()), '42');

  // The shell sees the size the page fitted to the window.
  const { cols, rows } = await page.evaluate(() => ({
    cols: window.wsbridge.term.cols,
    rows: window.wsbridge.term.rows,
  }));
  assert.ok(cols > 80 && rows > 20, `fitted size ${cols}x${rows}`);
  await run(page, 'stty size');
  await page.waitForFunction(
    want => window.wsbridge.screenText().includes(want),
    `${rows} ${cols}`,
    { timeout: 10000 },
  );
  // And follows the window when it changes.
  await page.setViewportSize({ width: 700, height: 420 });
  await page.waitForFunction(c => window.wsbridge.term.cols < c, cols, { timeout: 10000 });
  const small = await page.evaluate(() => `${window.wsbridge.term.rows} ${window.wsbridge.term.cols}`);
  await run(page, 'clear; stty size');
  await page.waitForFunction(want => window.wsbridge.screenText().includes(want), small, {
    timeout: 10000,
  });
  await page.setViewportSize({ width: 1000, height: 620 });
  await run(page, 'clear');
  await run(page, 'echo $((6*7)); printf "\\033[1;32mwsbridge\\033[0m ok\\n"');
  await waitForScreen(page, () => window.wsbridge.screenText().includes('wsbridge ok'), 'colour line');

  mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });

  // The session ends: the page says so, with the reason, and offers to reconnect.
  await run(page, 'exit 3');
  await page.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
  await page.waitForFunction(() => document.body.dataset.closeCode === '1000', undefined, { timeout: 10000 });
  assert.match(await page.textContent('#banner-text'), /exit 3/);
  assert.ok(await page.isVisible('#reconnect'));
  await page.screenshot({ path: shot.replace(/\.png$/, '-ended.png') });

  await page.click('#reconnect');
  await page.waitForFunction(() => window.wsbridge.connected, undefined, { timeout: 10000 });
  await waitForScreen(page, () => window.wsbridge.screenText().includes('$'), 'the new prompt');
  await page.click('#terminal');
  await run(page, 'echo again$((1+1))');
  await waitForScreen(page, () => window.wsbridge.screenText().includes('again2'), 'again2');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a page without the token is refused and says why', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.waitForSelector('#banner:not([hidden]).error', { timeout: 10000 });
  await page.waitForFunction(() => document.body.dataset.closeCode === '1008', undefined, { timeout: 10000 });
  assert.match(await page.textContent('#banner-text'), /authentication failed/);
  await page.close();
});
