"""Fixtures: a wsbridge server (WSBRIDGE_BIN) on an ephemeral port with a fresh database, seen
through a recording TCP proxy so that a failing test prints every request the client sent and
every byte the server answered."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest

TOKEN = f"python-test-token-0123456789-{os.getpid()}"


class Server:
    """`extra_args` are appended to `wsbridge serve`'s arguments (e.g. --tls-cert/--tls-key).
    `output` collects the server's stdout lines (without line ends) as they arrive."""

    def __init__(self, extra_args=()):
        bin_ = os.environ.get("WSBRIDGE_BIN")
        assert bin_, "WSBRIDGE_BIN must point at the wsbridge binary (use run.sh)"
        self.dir = tempfile.mkdtemp(prefix="wsbridge-python-")
        env = dict(os.environ, WSBRIDGE_LOG=os.environ.get("WSBRIDGE_LOG", "warn"))
        self.proc = subprocess.Popen(
            [bin_, "serve", "--listen", "127.0.0.1:0", "--token", TOKEN,
             "--db", os.path.join(self.dir, "test.db"), *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, text=True,
        )
        self.output = []
        self._output_changed = threading.Condition()
        self._output_ended = False
        self.addr = None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            m = re.search(r" listening on (\S+)", line)
            if m:
                self.addr = m.group(1)
                break
        if self.addr is None:
            raise RuntimeError(f"wsbridge exited before listening: {self.proc.wait()}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        host, port = self.addr.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def _drain(self):
        for line in self.proc.stdout:
            with self._output_changed:
                self.output.append(line.rstrip("\n"))
                self._output_changed.notify_all()
        with self._output_changed:
            self._output_ended = True
            self._output_changed.notify_all()

    def wait_for_line(self, pattern):
        """The first stdout line matching `pattern` (seen already or still to come); None if
        stdout ends without one."""
        with self._output_changed:
            while True:
                for line in self.output:
                    if re.search(pattern, line):
                        return line
                if self._output_ended:
                    return None
                self._output_changed.wait()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Proxy:
    """Forwards 127.0.0.1:<port> to the server and records both directions per connection."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.lock = threading.Lock()
        self.events = []  # (conn, "C>S" | "S>C", bytes)
        self.conns = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                conn = self.conns
                self.conns += 1
            upstream = socket.create_connection(self.target)
            for src, dst, tag in ((client, upstream, "C>S"), (upstream, client, "S>C")):
                threading.Thread(target=self._pump, args=(conn, src, dst, tag), daemon=True).start()

    def _pump(self, conn, src, dst, tag):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.events.append((conn, tag, data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_WR if s is dst else socket.SHUT_RD)
                except OSError:
                    pass

    def stream(self, conn, tag):
        with self.lock:
            return b"".join(d for c, t, d in self.events if c == conn and t == tag)

    def messages(self, tag):
        """(start line, headers, body) of every HTTP/1.1 message one way, connection by connection."""
        out = []
        for conn in range(self.conns):
            data = self.stream(conn, tag)
            while data:
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    break
                lines = data[:end].decode("latin-1").split("\r\n")
                data = data[end + 4:]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = b""
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    while True:
                        eol = data.find(b"\r\n")
                        if eol < 0:
                            body, data = body + data, b""
                            break
                        size = int(data[:eol].split(b";")[0] or b"0", 16)
                        data = data[eol + 2:]
                        if size == 0:
                            data = data[data.find(b"\r\n") + 2:] if b"\r\n" in data else b""
                            break
                        body, data = body + data[:size], data[size + 2:]
                elif "content-length" in headers:
                    n = int(headers["content-length"])
                    body, data = data[:n], data[n:]
                elif lines[0].startswith("HTTP/"):
                    body, data = data, b""
                out.append((lines[0], headers, body))
        return out

    def request_lines(self):
        """`POST /v1/execute` etc., for every request seen."""
        return [" ".join(start.split(" ")[:2]) for start, _, _ in self.messages("C>S")]

    def statuses(self):
        """Status codes of every response seen."""
        return [int(start.split(" ")[1]) for start, _, _ in self.messages("S>C")]

    def transcript(self):
        with self.lock:
            events = list(self.events)
        parts, last = [], None
        for conn, tag, data in events:
            if (conn, tag) != last:
                arrow = "client -> server" if tag == "C>S" else "server -> client"
                parts.append(f"\n--- connection {conn}, {arrow} ---\n")
                last = (conn, tag)
            parts.append(data.decode("utf-8", "replace"))
        return "".join(parts)

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def proxy(server, request):
    p = Proxy(server.host, server.port)
    yield p
    p.close()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"==== HTTP traffic (client -> proxy :{p.port} -> wsbridge {server.addr}) ====")
        print(p.transcript())
        print("==== end of traffic ====")


@pytest.fixture
def url(proxy):
    return f"http://127.0.0.1:{proxy.port}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
