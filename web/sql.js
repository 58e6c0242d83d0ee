// wsbridge's SQL console: a panel beside the terminal that speaks Hrana 3 (libSQL's protocol,
// JSON over a WebSocket with the subprotocol `hrana3`) on the relative path `sql`.
//
//   to the server:   {"type":"hello","jwt":TOKEN}, then
//                    {"type":"request","request_id":N,"request":{"type":"open_stream"|"execute",...}}
//   from the server: {"type":"hello_ok"} | {"type":"hello_error","error":{...}},
//                    {"type":"response_ok"|"response_error","request_id":N,...}
//
// One stream (one SQLite connection on the server) per socket, so BEGIN ... COMMIT across runs
// works while the socket lives. The socket opens when the panel is first opened and again, lazily,
// at the next run after it closed (a new socket is a new connection: an open transaction is gone).
//
// Input holding several statements is split here at the `;` between them (quotes, identifiers,
// comments and trigger bodies respected) and run one by one, stopping at the first error (those
// before it stay done: each runs on its own unless the input has BEGIN ... COMMIT). Input with one
// statement is sent exactly as typed. (The server cannot split for us: `execute` refuses more
// than one statement, and `sequence` returns no rows.)

const STREAM = 1;
const MAX_ROWS_SHOWN = 1000;
const MAX_BLOB_BYTES_SHOWN = 32;

/** An error the server reported (`hello_error`, `response_error`), or a lost connection. */
class SqlError extends Error {
  constructor(message, code = '') {
    super(message);
    this.name = 'SqlError';
    this.code = code;
  }
}

function sqlUrl() {
  const url = new URL('sql', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

function describeClose(event) {
  if (event.code === 1000) return `the SQL connection was closed${event.reason ? ': ' + event.reason : ''}`;
  if (event.code === 1006) return 'the SQL connection was lost';
  return `the SQL connection was closed (${event.code}${event.reason ? ': ' + event.reason : ''})`;
}

/**
 * One Hrana socket with its stream: `ensure()` gives an open one (connecting if needed),
 * `execute(sql)` runs one statement. `onStatus(state, text)` follows the connection.
 */
function createClient(token, onStatus) {
  let conn = null; // { socket, pending, nextId, ready: Promise, error }

  function connect() {
    const socket = new WebSocket(sqlUrl(), ['hrana3']);
    const c = { socket, pending: new Map(), nextId: 1, error: null, closed: false };
    conn = c;
    onStatus('connecting', 'connecting…');

    const failAll = error => {
      for (const { reject } of c.pending.values()) reject(error);
      c.pending.clear();
    };

    c.request = request =>
      new Promise((resolve, reject) => {
        if (c.closed || socket.readyState !== WebSocket.OPEN) {
          reject(Object.assign(new SqlError('the SQL connection is not open'), { notSent: true }));
          return;
        }
        const id = c.nextId++;
        c.pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ type: 'request', request_id: id, request }));
      });

    c.ready = new Promise((resolve, reject) => {
      socket.addEventListener('open', () => {
        socket.send(JSON.stringify({ type: 'hello', jwt: token }));
        // Requests may follow the hello at once: the server holds them until the token's verdict.
        c.request({ type: 'open_stream', stream_id: STREAM }).then(() => {
          onStatus('connected', 'connected');
          resolve(c);
        }, reject);
      });
      socket.addEventListener('close', event => {
        c.closed = true;
        const error = c.error ?? new SqlError(describeClose(event));
        failAll(error);
        reject(error);
        if (conn === c) conn = null;
        if (conn === null) {
          if (c.error) onStatus('error', c.error.message);
          else onStatus('closed', `not connected (${event.code === 1006 ? 'lost' : 'closed ' + event.code})`);
        }
      });
    });
    // The rejection is reported to whoever awaits `ready`; this one only keeps it from being unhandled.
    c.ready.catch(() => {});

    socket.addEventListener('message', event => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        console.warn('[wsbridge] sql: not JSON:', e);
        return;
      }
      switch (msg.type) {
        case 'hello_ok':
          break;
        case 'hello_error':
          c.error = new SqlError(msg.error?.message ?? 'authentication failed', msg.error?.code ?? '');
          failAll(c.error);
          break;
        case 'response_ok':
        case 'response_error': {
          const waiter = c.pending.get(msg.request_id);
          if (!waiter) break;
          c.pending.delete(msg.request_id);
          if (msg.type === 'response_ok') waiter.resolve(msg.response);
          else waiter.reject(new SqlError(msg.error?.message ?? 'error', msg.error?.code ?? ''));
          break;
        }
        default:
          console.warn('[wsbridge] sql: unknown message type', msg.type);
      }
    });
    return c;
  }

  function ensure() {
    const c = conn && !conn.closed ? conn : connect();
    return c.ready.catch(error => {
      // Opening failed with the socket still up (the stream was refused): start afresh next time.
      if (conn === c) {
        c.error ??= error;
        conn = null;
        c.socket.close();
      }
      throw error;
    });
  }

  async function execute(sql) {
    for (let attempt = 0; ; attempt++) {
      const c = await ensure();
      try {
        const response = await c.request({
          type: 'execute',
          stream_id: STREAM,
          stmt: { sql, want_rows: true },
        });
        return response.result;
      } catch (error) {
        // Closed before the request left: nothing ran, so one retry on a new socket is safe.
        if (error.notSent && attempt === 0) continue;
        if (c.closed && !c.error && !error.code) {
          throw new SqlError(`${error.message}; the statement may or may not have run`);
        }
        throw error;
      }
    }
  }

  return {
    ensure,
    execute,
    get connected() {
      return !!conn && !conn.closed && conn.socket.readyState === WebSocket.OPEN;
    },
  };
}

// ---- Splitting input into statements ---------------------------------------------------------

const isWordChar = c => /[A-Za-z0-9_$]/.test(c);

/** Index just past the quoted text that starts at `i` (a doubled quote stays inside). */
function skipQuoted(text, i, quote) {
  let j = i + 1;
  for (;;) {
    const k = text.indexOf(quote, j);
    if (k < 0) return text.length;
    if (text[k + 1] === quote) {
      j = k + 2;
      continue;
    }
    return k + 1;
  }
}

/** True if the text has nothing but whitespace, `;` and comments (no statement for SQLite). */
export function isBlankSql(text) {
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/[\s;]/.test(c)) i++;
    else if (c === '-' && text[i + 1] === '-') {
      const j = text.indexOf('\n', i);
      i = j < 0 ? text.length : j + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const j = text.indexOf('*/', i + 2);
      i = j < 0 ? text.length : j + 2;
    } else return false;
  }
  return true;
}

/**
 * The statements in `text`, each with its `;`, blank ones left out. Semicolons inside '...',
 * "...", `...`, [...], comments and `CREATE TRIGGER ... BEGIN ... END` do not split.
 */
export function splitStatements(text) {
  const out = [];
  let start = 0;
  let i = 0;
  let words = []; // the first words of the current statement
  let depth = 0; // BEGIN/CASE ... END nesting inside a trigger's body
  const isTrigger = () =>
    words[0] === 'CREATE' &&
    (words[1] === 'TRIGGER' || (/^TEMP(ORARY)?$/.test(words[1] ?? '') && words[2] === 'TRIGGER'));
  const push = end => {
    const stmt = text.slice(start, end);
    if (!isBlankSql(stmt)) out.push(stmt.trim());
    start = end;
    words = [];
    depth = 0;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(text, i, c);
    } else if (c === '[') {
      const j = text.indexOf(']', i + 1);
      i = j < 0 ? text.length : j + 1;
    } else if (c === '-' && text[i + 1] === '-') {
      const j = text.indexOf('\n', i);
      i = j < 0 ? text.length : j + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const j = text.indexOf('*/', i + 2);
      i = j < 0 ? text.length : j + 2;
    } else if (isWordChar(c)) {
      let j = i + 1;
      while (j < text.length && isWordChar(text[j])) j++;
      const word = text.slice(i, j).toUpperCase();
      if (words.length < 3) words.push(word);
      if (isTrigger()) {
        if (word === 'BEGIN' || (word === 'CASE' && depth > 0)) depth++;
        else if (word === 'END' && depth > 0) depth--;
      }
      i = j;
    } else if (c === ';' && depth === 0) {
      push(i + 1);
      i++;
    } else {
      i++;
    }
  }
  push(text.length);
  return out;
}

// ---- Showing results -------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function blobText(base64) {
  let bytes;
  try {
    bytes = Uint8Array.from(atob(base64 ?? ''), c => c.charCodeAt(0));
  } catch {
    return 'x\'…\'';
  }
  const shown = Array.from(bytes.subarray(0, MAX_BLOB_BYTES_SHOWN), b => b.toString(16).padStart(2, '0'));
  const more = bytes.length > MAX_BLOB_BYTES_SHOWN ? `… (${bytes.length} bytes)` : '';
  return `x'${shown.join('')}'${more}`;
}

/** A `<td>` for one Hrana value. */
function cell(value) {
  switch (value?.type) {
    case 'null':
    case undefined:
      return el('td', 'sql-null', 'NULL');
    case 'integer':
      return el('td', 'sql-num', String(value.value));
    case 'float': {
      const v = value.value;
      return el('td', 'sql-num', typeof v === 'number' && Number.isInteger(v) ? v.toFixed(1) : String(v));
    }
    case 'text':
      return el('td', 'sql-text', value.value);
    case 'blob':
      return el('td', 'sql-blob', blobText(value.base64));
    default:
      return el('td', '', JSON.stringify(value));
  }
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function resultBlock(sql, showSql) {
  const block = el('section', 'sql-result');
  if (showSql) block.append(el('pre', 'sql-stmt', sql.length > 400 ? sql.slice(0, 400) + '…' : sql));
  return block;
}

function renderResult(block, result) {
  const cols = result.cols ?? [];
  const rows = result.rows ?? [];
  block.dataset.kind = cols.length ? 'rows' : 'done';
  const info = [];
  if (cols.length) {
    const wrap = el('div', 'sql-table-wrap');
    const table = el('table', 'sql-table');
    const head = el('thead');
    const headRow = el('tr');
    cols.forEach((col, i) => {
      const th = el('th', '', col.name ?? `column ${i + 1}`);
      if (col.decltype) th.title = col.decltype;
      headRow.append(th);
    });
    head.append(headRow);
    const body = el('tbody');
    for (const row of rows.slice(0, MAX_ROWS_SHOWN)) {
      const tr = el('tr');
      for (let i = 0; i < cols.length; i++) tr.append(cell(row[i]));
      body.append(tr);
    }
    table.append(head, body);
    wrap.append(table);
    block.append(wrap);
    info.push(
      rows.length > MAX_ROWS_SHOWN
        ? `${rows.length} rows (the first ${MAX_ROWS_SHOWN} shown)`
        : plural(rows.length, 'row', 'rows'),
    );
  }
  const affected = Number(result.affected_row_count ?? 0);
  if (!cols.length || affected > 0) info.push(plural(affected, 'row affected', 'rows affected'));
  if (!cols.length && affected > 0 && result.last_insert_rowid != null) {
    info.push(`last insert rowid ${result.last_insert_rowid}`);
  }
  block.append(el('p', 'sql-info', info.join(', ')));
}

function renderError(block, error) {
  block.dataset.kind = 'error';
  const box = el('div', 'sql-error');
  box.setAttribute('role', 'alert');
  if (error.code) box.append(el('span', 'sql-error-code', error.code), ' ');
  box.append(el('span', 'sql-error-message', error.message));
  block.append(box);
}

// ---- The panel -------------------------------------------------------------------------------

/**
 * Builds the console inside `root` (an empty element beside the terminal) and returns its API
 * for tests and debugging. `token`: the page's token, sent in `hello` (may be '').
 */
export function mountSqlConsole({ root, token = '' }) {
  root.classList.add('sql-panel');
  const toggle = el('button', 'sql-toggle', 'SQL');
  toggle.type = 'button';
  toggle.id = 'sql-toggle';
  toggle.title = 'SQL console';
  toggle.setAttribute('aria-expanded', 'false');
  toggle.setAttribute('aria-controls', 'sql-console');

  const consoleEl = el('section', 'sql-console');
  consoleEl.id = 'sql-console';
  consoleEl.hidden = true;

  const header = el('header', 'sql-header');
  const title = el('h2', 'sql-title', 'SQL');
  const status = el('span', 'sql-status', 'not connected');
  status.id = 'sql-status';
  status.dataset.state = 'idle';
  header.append(title, status);

  const input = el('textarea', 'sql-input');
  input.id = 'sql-input';
  input.spellcheck = false;
  input.autocomplete = 'off';
  input.setAttribute('autocapitalize', 'off');
  input.setAttribute('aria-label', 'SQL statements');
  input.placeholder = 'SELECT sqlite_version();';

  const actions = el('div', 'sql-actions');
  const runButton = el('button', 'sql-run', 'Run');
  runButton.type = 'button';
  runButton.id = 'sql-run';
  runButton.title = 'Run (Ctrl+Enter)';
  const hint = el('span', 'sql-hint', 'Ctrl+Enter runs');
  actions.append(runButton, hint);

  const results = el('div', 'sql-results');
  results.id = 'sql-results';
  results.setAttribute('aria-live', 'polite');

  consoleEl.append(header, input, actions, results);
  root.replaceChildren(toggle, consoleEl);
  root.dataset.runs = '0';

  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  const client = createClient(token, setStatus);

  let running = false;

  function setOpen(open) {
    consoleEl.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    // The terminal's box shrinks (CSS on this class); its ResizeObserver refits it.
    document.body.classList.toggle('sql-open', open);
    if (open) {
      input.focus();
      client.ensure().catch(() => {}); // the status line shows how that went
    }
  }

  async function run(text = input.value) {
    if (running) return;
    running = true;
    runButton.disabled = true;
    runButton.textContent = 'Running…';
    root.dataset.state = 'running';
    results.replaceChildren();
    try {
      if (isBlankSql(text)) {
        const block = resultBlock(text, false);
        renderError(block, new SqlError('nothing to run'));
        results.append(block);
        return;
      }
      const statements = splitStatements(text);
      if (statements.length < 2) {
        // One statement: sent as typed.
        const block = resultBlock(text, false);
        results.append(block);
        try {
          renderResult(block, await client.execute(text));
        } catch (error) {
          renderError(block, error);
        }
        return;
      }
      for (let i = 0; i < statements.length; i++) {
        const block = resultBlock(statements[i], true);
        results.append(block);
        try {
          renderResult(block, await client.execute(statements[i]));
        } catch (error) {
          renderError(block, error);
          const left = statements.length - i - 1;
          if (left) results.append(el('p', 'sql-info', `${plural(left, 'statement', 'statements')} not run`));
          return;
        }
      }
    } finally {
      running = false;
      runButton.disabled = false;
      runButton.textContent = 'Run';
      root.dataset.state = 'idle';
      root.dataset.runs = String(Number(root.dataset.runs) + 1);
      results.scrollTop = 0;
    }
  }

  toggle.addEventListener('click', () => setOpen(consoleEl.hidden));
  runButton.addEventListener('click', () => run());
  // Keys typed here are the console's: the page's own Enter handler (reconnecting an ended
  // terminal) listens on window and must not see them.
  root.addEventListener('keydown', event => {
    event.stopPropagation();
    if (event.target === input && event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });

  return {
    run,
    open: () => setOpen(true),
    close: () => setOpen(false),
    get isOpen() {
      return !consoleEl.hidden;
    },
    get connected() {
      return client.connected;
    },
    splitStatements,
  };
}
