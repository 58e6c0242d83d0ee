// wsbridge's SQL route driven by the unmodified @libsql/client from npm (Hrana over WebSocket).
//
// Run through ./run.sh, which builds the server and sets WSBRIDGE_BIN. Each test file starts its
// own server on an ephemeral port with a fresh database file. The cases live in suite.js, shared
// with http.test.js (the same cases over Hrana over HTTP).

import assert from "node:assert/strict";
import { sqlSuite } from "./suite.js";

sqlSuite({
    urlOf: (server) => server.url,
    checkAuthError: (e) => assert.match(String(e.code), /AUTH_JWT_INVALID|HRANA_WEBSOCKET_ERROR/),
});
