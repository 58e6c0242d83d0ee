#!/usr/bin/env python3
"""Idle memory per upgraded echo connection, plain TCP against TLS: the growth of wsbridge's
VmRSS over N connections (each upgraded and used for one message), divided by N.

    cargo build --release && python3 benches/idle_memory_tls.py [N]     # default 2000

The certificate is a throwaway P-256 one made with the openssl CLI; the client is Python's ssl
(TLS 1.3). benches/idle_memory.sh measures the plain case against the peer servers.
"""
import base64, os, socket, ssl, subprocess, sys, tempfile, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "wsbridge")
d = tempfile.mkdtemp(prefix="wsbridge-idle-tls-")
subprocess.run(["openssl","req","-x509","-newkey","ec","-pkeyopt","ec_paramgen_curve:prime256v1","-nodes","-days","2",
  "-subj","/CN=localhost","-addext","subjectAltName=DNS:localhost,IP:127.0.0.1","-keyout",f"{d}/key.pem","-out",f"{d}/cert.pem"],
  check=True, capture_output=True)
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def run(tls):
    args=[BIN,"serve","--listen","127.0.0.1:0","--no-auth","--db",":memory:"]
    if tls: args += ["--tls-cert",f"{d}/cert.pem","--tls-key",f"{d}/key.pem"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = p.stdout.readline().rsplit(" ",1)[1].strip(); host, port = addr.rsplit(":",1); port=int(port)
    ctx = ssl.create_default_context(cafile=f"{d}/cert.pem")
    warm = []
    def one():
        s = socket.create_connection((host, port))
        if tls: s = ctx.wrap_socket(s, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(f"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        buf=b""
        while b"\r\n\r\n" not in buf: buf += s.recv(4096)
        assert buf.startswith(b"HTTP/1.1 101"), buf
        # one small message each way, so the connection has been used
        s.sendall(bytes([0x81, 0x82, 1,2,3,4, ord('h')^1, ord('i')^2])); 
        got=b""
        while len(got) < 4: got += s.recv(16)
        return s
    for _ in range(50): warm.append(one())
    time.sleep(0.5); before = rss(p.pid)
    conns = [one() for _ in range(N)]
    time.sleep(1.0); after = rss(p.pid)
    p.kill(); p.wait()
    return (after-before)/N
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
plain = run(False); tls = run(True)
print(f"N={N}: plain {plain:.2f} KiB/conn, TLS {tls:.2f} KiB/conn")
