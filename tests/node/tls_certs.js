// Throwaway certificates for the TLS tests, made with the openssl CLI in a temp directory:
// a root CA, an intermediate CA signed by it, and a leaf for localhost and 127.0.0.1 (SANs)
// signed by the intermediate. The server is given the leaf followed by the intermediate (PEM,
// leaf first), so a client that trusts only the root must receive the intermediate from the
// server to build the chain.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const OPENSSL = process.env.OPENSSL ?? "openssl";

function openssl(dir, args) {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A self-signed CA in `dir`: `${name}.pem` and `${name}.key`. */
function makeRoot(dir, name, cn) {
    openssl(dir, [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${cn}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
}

/** A certificate `${name}.pem`/`${name}.key` signed by `${issuer}`, with extensions `ext`. */
function makeSigned(dir, name, cn, issuer, ext) {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, [
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`,
    ]);
    openssl(dir, [
        "x509", "-req", "-in", `${name}.csr`, "-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`,
        "-set_serial", String(Date.now()) + String(Math.floor(Math.random() * 1e6)),
        "-days", "2", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.pem`,
    ]);
}

/**
 * Makes the certificates. Returns paths: `dir`, `caCert` (the root to trust), `otherCaCert` (an
 * unrelated root, for clients that must fail), `certChain` (leaf + intermediate, for --tls-cert),
 * `key` (the leaf's key, for --tls-key), `leafCert` (the leaf alone), and `cleanup()`.
 */
export function makeTestCerts() {
    const dir = mkdtempSync(join(tmpdir(), "wsbridge-tls-"));
    makeRoot(dir, "ca", "wsbridge test root CA");
    makeRoot(dir, "other-ca", "wsbridge unrelated CA");
    makeSigned(
        dir, "intermediate", "wsbridge test intermediate CA", "ca",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n" +
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    makeSigned(
        dir, "leaf", "localhost", "intermediate",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n" +
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    const certChain = join(dir, "chain.pem");
    writeFileSync(
        certChain,
        readFileSync(join(dir, "leaf.pem"), "utf8") + readFileSync(join(dir, "intermediate.pem"), "utf8"),
    );
    return {
        dir,
        caCert: join(dir, "ca.pem"),
        otherCaCert: join(dir, "other-ca.pem"),
        certChain,
        key: join(dir, "leaf.key"),
        leafCert: join(dir, "leaf.pem"),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
}
