// wsbridge's browser terminal: xterm.js speaking ttyd's `tty` protocol over a WebSocket.
//
// Every message is binary; its first byte says what it is.
//   to the server:   '0' input, '1' resize {"columns","rows"}, '2' pause, '3' resume;
//                    the first message is JSON {"AuthToken","columns","rows"}.
//   from the server: '0' output, '1' window title, '2' preferences (JSON of xterm.js options).
import { Terminal } from './xterm.mjs';
import { FitAddon } from './addon-fit.mjs';
import { mountSqlConsole } from './sql.js';

const INPUT = '0', RESIZE = '1', PAUSE = '2', RESUME = '3';
const OUTPUT = 0x30, SET_WINDOW_TITLE = 0x31, SET_PREFERENCES = 0x32;

// ttyd's flow control: every `limit` bytes, write with a callback; more than `highWater` callbacks
// pending pauses the server, fewer than `lowWater` resumes it.
const FLOW = { limit: 100000, highWater: 10, lowWater: 4 };

// The token comes in the URL (?token=...), is kept in memory only, and leaves the address bar at
// once so it is not in the history, bookmarks or a screenshot.
const page = new URL(window.location.href);
const token = page.searchParams.get('token') ?? '';
if (page.searchParams.has('token')) {
  page.searchParams.delete('token');
  history.replaceState(history.state, '', page.pathname + page.search + page.hash);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const banner = document.getElementById('banner');
const bannerText = document.getElementById('banner-text');
const reconnectButton = document.getElementById('reconnect');

const term = new Terminal({
  cursorBlink: true,
  scrollback: 5000,
  fontSize: 14,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
});
const fitAddon = new FitAddon();
term.loadAddon(fitAddon);
term.open(document.getElementById('terminal'));

let socket = null;
let generation = 0; // ignores late callbacks from a previous connection
let ended = false;
let initSent = false; // the init message must be the first one: no resize before it
let written = 0;
let pending = 0;
let paused = false;

function wsUrl() {
  const url = new URL('tty', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

function send(data) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(data);
}

function sendCommand(command, text = '') {
  send(encoder.encode(command + text));
}

function sendBytes(command, bytes) {
  const message = new Uint8Array(bytes.length + 1);
  message[0] = command.charCodeAt(0);
  message.set(bytes, 1);
  send(message);
}

function sendSize() {
  if (!initSent) return;
  sendCommand(RESIZE, JSON.stringify({ columns: term.cols, rows: term.rows }));
}

function fit() {
  try {
    fitAddon.fit();
  } catch (e) {
    console.warn('[wsbridge] fit:', e);
  }
}

// Fit once layout has settled: after the next frame, and again when the fonts are loaded.
let fitScheduled = false;
function scheduleFit() {
  if (fitScheduled) return;
  fitScheduled = true;
  requestAnimationFrame(() => {
    fitScheduled = false;
    fit();
  });
}

function writeOutput(bytes) {
  written += bytes.length;
  if (written > FLOW.limit) {
    const gen = generation;
    term.write(bytes, () => {
      if (gen !== generation) return;
      pending = Math.max(pending - 1, 0);
      if (paused && pending < FLOW.lowWater) {
        paused = false;
        sendCommand(RESUME);
      }
    });
    pending++;
    written = 0;
    if (!paused && pending > FLOW.highWater) {
      paused = true;
      sendCommand(PAUSE);
    }
  } else {
    term.write(bytes);
  }
}

// The page's own options among the preferences (ttyd's names; `--client-option KEY=VALUE`).
const pageOptions = { titleFixed: null, disableLeaveAlert: false };

function applyPreferences(prefs) {
  for (const [key, value] of Object.entries(prefs)) {
    if (key in pageOptions) pageOptions[key] = value;
    else if (key in term.options) term.options[key] = value;
  }
  if (typeof pageOptions.titleFixed === 'string') document.title = pageOptions.titleFixed;
  if (Object.keys(prefs).some(k => k.startsWith('font'))) scheduleFit();
}

// As ttyd: leaving the page ends the session's program, so ask first, unless told not to.
window.addEventListener('beforeunload', event => {
  if (ended || pageOptions.disableLeaveAlert) return;
  event.preventDefault();
  event.returnValue = '';
});

function onMessage(event) {
  const data = new Uint8Array(event.data);
  if (data.length === 0) return;
  const body = data.subarray(1);
  switch (data[0]) {
    case OUTPUT:
      writeOutput(body);
      break;
    case SET_WINDOW_TITLE:
      if (typeof pageOptions.titleFixed !== 'string') document.title = decoder.decode(body);
      break;
    case SET_PREFERENCES:
      try {
        applyPreferences(JSON.parse(decoder.decode(body)));
      } catch (e) {
        console.warn('[wsbridge] bad preferences:', e);
      }
      break;
    default:
      console.warn('[wsbridge] unknown message type', data[0]);
  }
}

function showBanner(text, { error = false, reconnect = false } = {}) {
  bannerText.textContent = text;
  banner.classList.toggle('error', error);
  reconnectButton.hidden = !reconnect;
  banner.hidden = false;
}

function hideBanner() {
  banner.hidden = true;
}

function describeClose(event) {
  if (event.code === 1000) return `Session ended: ${event.reason || 'closed'}`;
  if (event.code === 1008) {
    const hint = token ? '' : ' (open the URL with ?token= that the server printed)';
    return `Refused: ${event.reason || 'policy violation'}${hint}`;
  }
  if (event.code === 1001) return 'The server is going away';
  if (event.code === 1006) return 'Connection lost';
  return `Connection closed (${event.code}${event.reason ? ': ' + event.reason : ''})`;
}

function connect() {
  generation++;
  ended = false;
  initSent = false;
  written = 0;
  pending = 0;
  paused = false;
  term.options.disableStdin = false;
  showBanner('Connecting…');
  const ws = new WebSocket(wsUrl(), ['tty']);
  ws.binaryType = 'arraybuffer';
  socket = ws;
  ws.addEventListener('open', () => {
    if (ws !== socket) return;
    hideBanner();
    fit();
    // The program starts at the size sent in this first message.
    send(encoder.encode(JSON.stringify({ AuthToken: token, columns: term.cols, rows: term.rows })));
    initSent = true;
    // The size once layout and fonts have settled (the first fit may have been early).
    requestAnimationFrame(() => {
      fit();
      sendSize();
    });
    document.fonts?.ready.then(() => {
      fit();
      sendSize();
    });
    term.focus();
  });
  ws.addEventListener('message', event => {
    if (ws === socket) onMessage(event);
  });
  ws.addEventListener('close', event => {
    if (ws !== socket) return;
    ended = true;
    term.options.disableStdin = true;
    const normal = event.code === 1000;
    showBanner(describeClose(event) + ' — press Enter or', { error: !normal, reconnect: true });
    document.body.dataset.closeCode = String(event.code);
    document.body.dataset.closeReason = event.reason;
  });
}

function reconnect() {
  if (!ended) return;
  term.reset();
  connect();
}

term.onData(data => {
  if (!ended) sendBytes(INPUT, encoder.encode(data));
});
term.onBinary(data => {
  if (!ended) sendBytes(INPUT, Uint8Array.from(data, c => c.charCodeAt(0) & 0xff));
});
term.onResize(() => sendSize());
term.onTitleChange(title => {
  if (title && typeof pageOptions.titleFixed !== 'string') document.title = title;
});
term.onKey(({ domEvent }) => {
  if (ended && domEvent.key === 'Enter') reconnect();
});
reconnectButton.addEventListener('click', reconnect);
window.addEventListener('keydown', event => {
  if (ended && event.key === 'Enter') {
    event.preventDefault();
    reconnect();
  }
});
window.addEventListener('resize', scheduleFit);
new ResizeObserver(scheduleFit).observe(document.getElementById('terminal'));

// For tests and debugging: the terminal and its screen text.
window.wsbridge = {
  term,
  screenText() {
    const buffer = term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  },
  get connected() {
    return socket?.readyState === WebSocket.OPEN;
  },
  // The page's options from the server's preferences.
  pageOptions,
  // The extensions the server accepted (permessage-deflate, RFC 7692).
  get extensions() {
    return socket?.extensions ?? '';
  },
};
// The SQL console beside the terminal (Hrana over the `sql` WebSocket), with the same token.
window.wsbridge.sql = mountSqlConsole({ root: document.getElementById('sql-panel'), token });

connect();
