// The browser terminal over TLS: wsbridge with --tls-cert/--tls-key serves the page over https://
// and its WebSocket over wss:// on one port, and Debian's Chromium uses it end to end.
//
// Trust is wired key by key, never by turning verification off: a throwaway CA signs a leaf for
// localhost and 127.0.0.1 (openssl CLI), and Chromium is started with
// --ignore-certificate-errors-spki-list=<base64 SHA-256 of the leaf's SubjectPublicKeyInfo>,
// which accepts a chain that fails to verify only when one of its keys is on that list (honoured
// because Playwright passes Chromium a --user-data-dir). A Chromium without the flag, and one
// whose list names another key, must refuse the page with a certificate error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
// A relative WSBRIDGE_BIN is relative to the repository root (run.sh runs from tests/browser).
const bin = process.env.WSBRIDGE_BIN
  ? path.resolve(root, process.env.WSBRIDGE_BIN)
  : ['target/release/wsbridge', 'target/debug/wsbridge'].map(p => path.join(root, p)).find(existsSync);
const OPENSSL = process.env.OPENSSL ?? '/usr/bin/openssl';
const token = randomBytes(16).toString('hex');
const shot = path.join(root, 'target', 'tty-browser-tls.png');

const chromiumArgs = [
  '--no-sandbox',
  '--disable-dev-shm-usage',
  '--headless',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let certs;
let server;
let serverOut = '';
let browser;
let origin; // https://127.0.0.1:PORT
let printedFingerprint;

function openssl(args, input) {
  return execFileSync(OPENSSL, args, {
    cwd: certs.dir,
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}

/** A throwaway CA and a leaf it signs for localhost and 127.0.0.1, in a temp directory. */
function makeCerts() {
  certs = { dir: mkdtempSync(path.join(tmpdir(), 'wsbridge-browser-tls-')) };
  const file = name => path.join(certs.dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl([
    'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=wsbridge browser test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  writeFileSync(
    file('leaf.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
      'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' +
      'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  openssl(['req', '-new', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost']);
  openssl([
    'x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial',
    `0x${randomBytes(12).toString('hex')}`, '-days', '2', '-sha256', '-extfile', 'leaf.ext', '-out', 'leaf.pem',
  ]);
  // A key that has nothing to do with the server, for a Chromium that trusts the wrong key.
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.key']);
  Object.assign(certs, {
    caCert: file('ca.pem'),
    leafCert: file('leaf.pem'),
    leafKey: file('leaf.key'),
    otherKey: file('other.key'),
  });
  // The leaf verifies against the CA (so the only thing Chromium lacks is trust in that CA).
  openssl(['verify', '-CAfile', 'ca.pem', '-purpose', 'sslserver', 'leaf.pem']);
}

/** base64(SHA-256(SubjectPublicKeyInfo DER)) of a PEM public key, by the openssl CLI. */
function spkiHash(pubkeyPem) {
  const der = openssl(['pkey', '-pubin', '-outform', 'der'], pubkeyPem);
  return openssl(['dgst', '-sha256', '-binary'], der).toString('base64');
}

function startServer() {
  assert.ok(bin, 'no wsbridge binary: run `cargo build` first or set WSBRIDGE_BIN');
  const args = [
    'serve', '--listen', '127.0.0.1:0', '--tls-cert', certs.leafCert, '--tls-key', certs.leafKey,
    '--token', token, '--shell', '/bin/sh', '--db', ':memory:',
  ];
  server = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SHELL: '/bin/sh', PS1: '$ ', WSBRIDGE_LOG: 'info' },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${serverOut}`)), 15000);
    server.stdout.on('data', chunk => {
      serverOut += chunk;
      const m = serverOut.match(
        /listening on (127\.0\.0\.1:\d+)\n(open \S+)\nTLS certificate SHA-256 ([0-9A-F:]+)\n/,
      );
      if (m) {
        clearTimeout(timer);
        printedFingerprint = m[3];
        resolve({ addr: m[1], open: m[2] });
      }
    });
    server.on('error', e => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    server.on('exit', code => reject(new Error(`server exited with ${code}: ${serverOut}`)));
  });
}

const launch = extraArgs =>
  chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...chromiumArgs, ...extraArgs] });

before(async () => {
  makeCerts();
  const leafSpki = spkiHash(openssl(['x509', '-in', 'leaf.pem', '-pubkey', '-noout']));
  // The same hash by Node's own X.509 parser, so the flag's value is not an artefact of the pipeline.
  const leaf = new X509Certificate(readFileSync(certs.leafCert));
  assert.equal(
    leafSpki,
    createHash('sha256').update(leaf.publicKey.export({ type: 'spki', format: 'der' })).digest('base64'),
  );
  certs.leafSpki = leafSpki;
  certs.leafFingerprint = leaf.fingerprint256;
  certs.otherSpki = spkiHash(openssl(['pkey', '-in', 'other.key', '-pubout']));
  assert.notEqual(certs.otherSpki, leafSpki);

  const { addr, open } = await startServer();
  origin = `https://${addr}`;
  assert.equal(open, `open ${origin}/`, 'the printed URL names https:// and the bound address');
  browser = await launch([`--ignore-certificate-errors-spki-list=${leafSpki}`]);
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (certs?.dir) rmSync(certs.dir, { recursive: true, force: true });
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

test('the server prints the SHA-256 fingerprint of the certificate it was given', () => {
  assert.equal(printedFingerprint, certs.leafFingerprint);
});

test('the terminal over https:// and wss://, Chromium trusting exactly the leaf key', async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 620 } });
  const errors = [];
  const sockets = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => m.type() === 'error' && errors.push(m.text()));
  page.on('websocket', ws => sockets.push(ws.url()));

  const response = await page.goto(`${origin}/?token=${token}`);
  assert.equal(response.status(), 200);
  // The certificate Chromium was shown is the leaf the server was given.
  const sec = await response.securityDetails();
  assert.equal(sec?.subjectName, 'localhost');
  assert.equal(sec?.issuer, 'wsbridge browser test CA');
  assert.match(sec?.protocol ?? '', /^TLS 1\.[23]$/);

  await page.waitForFunction(() => window.wsbridge?.connected, undefined, { timeout: 10000 });
  assert.equal(await page.evaluate(() => location.protocol), 'https:');
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  assert.equal(new URL(page.url()).search, '', 'the token must leave the address bar');
  assert.ok(sockets.length >= 1, 'no WebSocket was opened');
  for (const url of sockets) assert.ok(url.startsWith(`wss://${origin.slice('https://'.length)}/`), url);
  await waitForScreen(page, () => window.wsbridge.screenText().includes('$'), 'the prompt');

  await page.click('#terminal');
  await run(page, 'echo tls-$((6*7))');
  await waitForScreen(page, () => /^tls-42\s*$/m.test(window.wsbridge.screenText()), 'tls-42');

  mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });
  assert.deepEqual(errors, []);
  await page.close();
});

test('localhost is in the certificate too', async () => {
  const page = await browser.newPage();
  const sockets = [];
  page.on('websocket', ws => sockets.push(ws.url()));
  const port = new URL(origin).port;
  await page.goto(`https://localhost:${port}/?token=${token}`);
  await page.waitForFunction(() => window.wsbridge?.connected, undefined, { timeout: 10000 });
  assert.ok(sockets.length >= 1 && sockets.every(u => u.startsWith(`wss://localhost:${port}/`)), sockets.join());
  await page.close();
});

// A Chromium that does not trust the leaf's key: without the flag, and with a list naming another key.
for (const [name, extra] of [
  ['without the SPKI flag', () => []],
  ['trusting a different key', () => [`--ignore-certificate-errors-spki-list=${certs.otherSpki}`]],
]) {
  test(`a Chromium ${name} refuses the page with a certificate error`, async () => {
    const untrusting = await launch(extra());
    try {
      const page = await untrusting.newPage();
      const sockets = [];
      page.on('websocket', ws => sockets.push(ws.url()));
      await assert.rejects(page.goto(`${origin}/?token=${token}`), /net::ERR_CERT_AUTHORITY_INVALID/);
      assert.deepEqual(sockets, []);
    } finally {
      await untrusting.close();
    }
  });
}
