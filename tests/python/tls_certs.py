"""Throwaway certificates for the TLS tests, made with the openssl CLI in a temp directory: a
root CA, an intermediate CA signed by it, and a leaf for localhost and 127.0.0.1 (SANs) signed
by the intermediate, plus an unrelated root for clients that must fail. The server is given the
leaf followed by the intermediate (PEM, leaf first), so a client that trusts only the root must
receive the intermediate from the server to build the chain."""

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass

OPENSSL = os.environ.get("OPENSSL", "openssl")


@dataclass
class Certs:
    dir: str
    ca_cert: str  # the root the trusting clients trust
    other_ca_cert: str  # an unrelated root
    cert_chain: str  # leaf + intermediate, for --tls-cert
    key: str  # the leaf's key, for --tls-key
    leaf_cert: str  # the leaf alone

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def _openssl(cwd, *args):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _root(d, name, cn):
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _signed(d, name, cn, issuer, ext):
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _openssl(d, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem",
             "-CAkey", f"{issuer}.key", "-set_serial", str(uuid.uuid4().int >> 64),
             "-days", "2", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


def make_test_certs() -> Certs:
    d = tempfile.mkdtemp(prefix="wsbridge-tls-")
    _root(d, "ca", "wsbridge test root CA")
    _root(d, "other-ca", "wsbridge unrelated CA")
    _signed(d, "intermediate", "wsbridge test intermediate CA", "ca",
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _signed(d, "leaf", "localhost", "intermediate",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    chain = os.path.join(d, "chain.pem")
    with open(chain, "w") as out:
        for name in ("leaf.pem", "intermediate.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    return Certs(
        dir=d,
        ca_cert=os.path.join(d, "ca.pem"),
        other_ca_cert=os.path.join(d, "other-ca.pem"),
        cert_chain=chain,
        key=os.path.join(d, "leaf.key"),
        leaf_cert=os.path.join(d, "leaf.pem"),
    )
