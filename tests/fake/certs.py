#!/usr/bin/env python3
"""Test PKI for the smtpc transcript tests, generated at test time with the openssl CLI.

    python3 tests/fake/certs.py DIR        # writes DIR/*.pem and DIR/index.json

Everything is for the host name HOST ("mx.smtpc.test") unless said otherwise.

  ca            trusted test root (pass it with --ca-file)
  ca2           a second root that is never trusted ("untrusted CA")
  valid         leaf for HOST signed by ca, valid now
  expired       leaf for HOST signed by ca, validity ended in the past
  notyet        leaf for HOST signed by ca, validity starts in the future
  wrongname     leaf for OTHER ("other.smtpc.test") signed by ca
  selfsigned    self-signed leaf for HOST (not a CA)
  untrusted     leaf for HOST signed by ca2
  ta-wrongname  leaf for OTHER signed by ca2 (DANE-TA name checks)
  client        client certificate (CN client.smtpc.test, clientAuth) signed by ca
  other         an unrelated self-signed leaf, only used for non-matching TLSA data

Files per certificate NAME: NAME.crt (the certificate), NAME.key (its key),
NAME.chain (certificate followed by its issuer, what a server sends).

TLSA data (lower-case hex, index.json "tlsa"), for every certificate NAME:
  NAME.spki256   selector 1 (SPKI), matching type 1 (SHA-256)   -> "3 1 1" / "2 1 1"
  NAME.spki512   selector 1, matching type 2 (SHA-512)            -> "3 1 2"
  NAME.cert256   selector 0 (full cert), matching type 1           -> "3 0 1" / "2 0 1"
  NAME.cert512   selector 0, matching type 2
  NAME.spki      selector 1, matching type 0 (full SPKI DER)      -> "3 1 0"
  NAME.cert      selector 0, matching type 0 (full cert DER)      -> "2 0 0"
plus "nomatch256" (64 hex digits that match nothing).
Typical records: DANE-EE "3 1 1 ${tlsa:valid.spki256}", DANE-TA "2 0 1 ${tlsa:ca.cert256}".

The module is importable: generate(dir) returns the index dict.
"""

import datetime
import hashlib
import json
import os
import subprocess
import sys

HOST = "mx.smtpc.test"
OTHER = "other.smtpc.test"
CLIENT = "client.smtpc.test"

CA_CNF = """\
[ca]
default_ca = testca

[testca]
dir = {dir}
database = {db}
new_certs_dir = {dir}/newcerts
serial = {serial}
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no

[anything]
commonName = supplied

[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:{{name}}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[clientleaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:{{name}}
"""

ROOT_EXT = """\
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[selfleaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:{name}
subjectKeyIdentifier = hash
"""


def _run(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


def _genkey(path):
    _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-out", path])


def _stamp(delta_days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=delta_days)
    return t.strftime("%Y%m%d%H%M%SZ")


def _root(d, name, cn):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write(ROOT_EXT.format(name=HOST))
    _genkey(key)
    _run(["openssl", "req", "-new", "-x509", "-key", key, "-out", crt, "-days", "3650",
          "-subj", "/CN=" + cn, "-config", ext, "-extensions", "root"])
    return crt, key


def _selfsigned(d, name, dns):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write(ROOT_EXT.format(name=dns))
    _genkey(key)
    _run(["openssl", "req", "-new", "-x509", "-key", key, "-out", crt, "-days", "365",
          "-subj", "/CN=" + dns, "-config", ext, "-extensions", "selfleaf"])


def _leaf(d, name, dns, ca, start, end, section="leaf"):
    """Leaf signed by ca with openssl ca (the only 3.0 tool that sets past dates)."""
    cadir = os.path.join(d, "ca-" + ca)
    os.makedirs(os.path.join(cadir, "newcerts"), exist_ok=True)
    db, serial = os.path.join(cadir, "index.txt"), os.path.join(cadir, "serial")
    if not os.path.exists(db):
        open(db, "w").close()
        with open(serial, "w") as f:
            f.write("%016X\n" % int.from_bytes(os.urandom(7), "big"))
    cnf = os.path.join(cadir, name + ".cnf")
    with open(cnf, "w") as f:
        f.write(CA_CNF.format(dir=cadir, db=db, serial=serial).replace("{name}", dns))
    key, csr, crt = (os.path.join(d, name + x) for x in (".key", ".csr", ".crt"))
    _genkey(key)
    _run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + dns])
    _run(["openssl", "ca", "-batch", "-config", cnf, "-name", "testca", "-notext",
          "-cert", os.path.join(d, ca + ".crt"), "-keyfile", os.path.join(d, ca + ".key"),
          "-in", csr, "-out", crt, "-startdate", start, "-enddate", end,
          "-extensions", section])


def _der(d, name):
    crt = os.path.join(d, name + ".crt")
    cert = _run(["openssl", "x509", "-in", crt, "-outform", "DER"])
    pub = _run(["openssl", "x509", "-in", crt, "-noout", "-pubkey"])
    spki = _run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub)
    return cert, spki


def generate(d):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    _root(d, "ca", "smtpc test CA")
    _root(d, "ca2", "smtpc untrusted CA")
    now0, now1 = _stamp(-1), _stamp(365)
    _leaf(d, "valid", HOST, "ca", now0, now1)
    _leaf(d, "expired", HOST, "ca", _stamp(-400), _stamp(-30))
    _leaf(d, "notyet", HOST, "ca", _stamp(30), _stamp(400))
    _leaf(d, "wrongname", OTHER, "ca", now0, now1)
    _leaf(d, "untrusted", HOST, "ca2", now0, now1)
    _leaf(d, "ta-wrongname", OTHER, "ca2", now0, now1)
    _leaf(d, "client", CLIENT, "ca", now0, now1, section="clientleaf")
    _selfsigned(d, "selfsigned", HOST)
    _selfsigned(d, "other", HOST)
    issuer = {"valid": "ca", "expired": "ca", "notyet": "ca", "wrongname": "ca",
              "untrusted": "ca2", "ta-wrongname": "ca2", "client": "ca"}
    names = ["ca", "ca2", "valid", "expired", "notyet", "wrongname", "untrusted",
             "ta-wrongname", "client", "selfsigned", "other"]
    index = {"dir": d, "host": HOST, "other": OTHER, "certs": {}, "tlsa": {}}
    for n in names:
        crt, key, chain = (os.path.join(d, n + x) for x in (".crt", ".key", ".chain"))
        with open(chain, "wb") as out:
            with open(crt, "rb") as f:
                out.write(f.read())
            if n in issuer:
                with open(os.path.join(d, issuer[n] + ".crt"), "rb") as f:
                    out.write(f.read())
        index["certs"][n] = {"crt": crt, "key": key, "chain": chain}
        cert, spki = _der(d, n)
        t = index["tlsa"]
        t[n + ".spki256"] = hashlib.sha256(spki).hexdigest()
        t[n + ".spki512"] = hashlib.sha512(spki).hexdigest()
        t[n + ".cert256"] = hashlib.sha256(cert).hexdigest()
        t[n + ".cert512"] = hashlib.sha512(cert).hexdigest()
        t[n + ".spki"] = spki.hex()
        t[n + ".cert"] = cert.hex()
    index["tlsa"]["nomatch256"] = hashlib.sha256(b"smtpc: matches nothing").hexdigest()
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: certs.py DIR\n")
        return 2
    index = generate(sys.argv[1])
    print(index["dir"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
