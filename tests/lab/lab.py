#!/usr/bin/env python3
"""The direct-delivery lab: DNSSEC, DANE, MTA-STS and MX hosts on loopback.

Everything lives in one fresh temporary directory and listens on 127.0.0.0/8
only (checked after start):

  127.0.20.53:53   knotd: authoritative for the signed parent zone `test.`,
                   which delegates with DS to the signed children `dane.test.`
                   and `sts.test.`, without DS to the unsigned `insecure.test.`,
                   and with a DS that matches no key to the signed `bogus.test.`
                   (so it fails validation).  Knot signs by itself (policy
                   `lab`); the DS records are added to the parent with a knotc
                   transaction once the children are signed.
  127.0.20.54:53   unbound: validating recursor, stub zone `test.` at knot,
                   trust anchor for `test.` (the file tests pass to
                   `smtpc deliver --dnssec validate --trust-anchor FILE`).
  127.0.10.N:25    Postfix smtpd instances, one per MX host (see MX): each has
                   its own config/queue directory, STARTTLS with a certificate
                   from the test CA (one self-signed, one without STARTTLS) and
                   relays what it accepts to its own capture server
                   (../real/capture.py on 127.0.0.1:P, stored byte for byte),
                   so a test can tell which MX got a message.
  127.0.10.80:443  nginx: https://mta-sts.<domain>/.well-known/mta-sts.txt
                   (certificate from the test CA).
  127.0.10.81:443  a hostile MTA-STS policy host (`lab.py hostile-https`, for
                   tests/hostile): per Host, a redirect, a 1 GB body, an
                   endless body, an answer that never comes, a TLS handshake
                   that never completes (see HOSTILE_STS).
  127.0.10.99      nothing listens (the dead MX of fallback.test).
  127.0.9.1:25     a listener with a full accept queue: connections hang (the
                   first address of happy-mx.test, whose second is an MX).

The addresses avoid 127.0.0.53/54 (systemd-resolved's stub listeners).  The
zone data (which domain exercises what) is in zone_texts() and DOMAINS below and in the state
JSON ("domains").

Command line:
  lab.py start [--dir DIR]   start everything, print the state as JSON (also
                             saved in DIR/state.json)
  lab.py stop [DIR] [--keep] stop what `start` started (default: the last one
                             started, remembered in $TMPDIR/smtpc-lab.current)
  lab.py status [DIR]        print the state JSON
  lab.py check [DIR]         sanity checks of a running lab (DNS, STARTTLS,
                             HTTPS), one line each; exit 1 if one fails

From Python: `with Lab() as lab: ...`.  Must run as root (ports 25/53/443,
Postfix's master).  Python 3 standard library plus the openssl, kdig, knotc,
knotd, unbound, nginx and postfix programs (scripts/deps installs them).
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "real"))
# Process bookkeeping shared with the real-server setup.
from servers import proc_cmdline, proc_environ_has, signal_pid  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURE_PY = os.path.join(HERE, "..", "real", "capture.py")
CURRENT = os.path.join(tempfile.gettempdir(), "smtpc-lab.current")

KNOT_IP = "127.0.20.53"
UNBOUND_IP = "127.0.20.54"
HTTPS_IP = "127.0.10.80"
DEAD_IP = "127.0.10.99"
# A listener whose accept queue is full: SYNs to it are dropped, so a connect
# hangs until its timeout (a host that is down, for Happy Eyeballs).
BLACKHOLE_IP = "127.0.9.1"
TTL = 300

# MX hosts: one Postfix instance each, on port 25 (and `ports` if given:
# _2525._tcp.mx-ee.dane.test has a TLSA record that does not match, for
# --port).  tls: "ca" (certificate from the test CA for every name, chain
# includes the CA), "self" (self-signed, unrelated name: only DANE-EE can
# verify it), None (no STARTTLS offered).
MX = {
    "ee":    {"ip": "127.0.10.1", "names": ["mx-ee.dane.test"], "tls": "ca", "ports": [25, 2525]},
    "ta":    {"ip": "127.0.10.2", "names": ["mx-ta.dane.test"], "tls": "ca"},
    "bad":   {"ip": "127.0.10.3", "names": ["mx-bad.dane.test"], "tls": "ca"},
    "notls": {"ip": "127.0.10.4", "names": ["mx-notls.dane.test", "mx-notls.sts.test"],
              "tls": None},
    "sts":   {"ip": "127.0.10.5", "names": ["mx-sts.sts.test"], "tls": "ca"},
    "ss":    {"ip": "127.0.10.6", "names": ["mx-ss.dane.test"], "tls": "self"},
    "mx1":   {"ip": "127.0.10.7", "names": ["mx1.test", "mx.insecure.test", "mx.bogus.test"],
              "tls": "ca"},
    "mx2":   {"ip": "127.0.10.8", "names": ["mx2.test", "implicit.test"], "tls": "ca"},
}

# Signed zones get DS records in the parent; "bogus" gets a DS that matches
# none of its keys; "insecure" is not signed and has no DS.
CHILDREN = {"dane.test.": "signed", "sts.test.": "signed",
            "insecure.test.": "unsigned", "bogus.test.": "bogus"}

# MTA-STS policies served by nginx: domain -> (policy id, mode, [mx patterns]).
STS = {
    "enforce.sts.test": ("20261130a", "enforce", ["mx-sts.sts.test"]),
    "mismatch.sts.test": ("20261130b", "enforce", ["mx.elsewhere.test"]),
    "testing.sts.test": ("20261130c", "testing", ["mx-notls.sts.test"]),
    "downgrade.sts.test": ("20261130d", "enforce", ["mx-notls.sts.test"]),
}

# MTA-STS domains whose policy host is hostile (127.0.10.81, hostile_https()):
# domain -> (policy id, behaviour). Their MX is mx-sts.sts.test, which offers
# STARTTLS with a certificate from the test CA.
HOSTILE_HTTPS_IP = "127.0.10.81"
HOSTILE_STS = {
    "redirect.sts.test": ("20261201r", "redirect"),   # 301 to enforce.sts.test's policy
    "huge.sts.test": ("20261201h", "huge"),           # 200, Content-Length 1 GB
    "endless.sts.test": ("20261201e", "endless"),     # 200, no length, never ends
    "hang.sts.test": ("20261201g", "hang"),           # reads the request, never answers
    "hangtls.sts.test": ("20261201t", "hangtls"),     # TLS handshake never completes
}
# The valid enforce policy the hostile bodies start with (a client that cuts a
# 1 GB body at 64 KiB and parses the rest would take it for a policy).
HOSTILE_POLICY = (b"version: STSv1\r\nmode: enforce\r\nmx: mx-sts.sts.test\r\n"
                  b"max_age: 86400\r\n")

TLSRPT = {
    "ee.dane.test": "v=TLSRPTv1; rua=mailto:tlsrpt@dane.test",
    "enforce.sts.test": "v=TLSRPTv1; rua=mailto:tlsrpt@sts.test,https://tlsrpt.sts.test/v1",
}

# What each recipient domain is for (copied into the state JSON).
DOMAINS = {
    "ee.dane.test": "MX mx-ee.dane.test: TLSA 3 1 1 of its key (+ an unusable 1 1 1)",
    "ta.dane.test": "MX mx-ta.dane.test: TLSA 2 0 1 of the test CA",
    "mismatch.dane.test": "MX mx-bad.dane.test: TLSA 3 1 1 matching no key",
    "selfsigned.dane.test": "MX mx-ss.dane.test: self-signed cert, TLSA 3 1 1 of its key",
    "notls.dane.test": "MX mx-notls.dane.test: TLSA, but no STARTTLS offered",
    "bogushost.dane.test": "MX mx.bogus.test (address in the bogus zone)",
    "tlsa.insecure.test": "MX mx.insecure.test: mismatching TLSA in an unsigned zone",
    "bogus.test": "zone whose DS matches no key (validation fails)",
    "enforce.sts.test": "MTA-STS enforce, MX mx-sts.sts.test matches",
    "mismatch.sts.test": "MTA-STS enforce, MX mx-sts.sts.test does not match",
    "testing.sts.test": "MTA-STS testing, MX mx-notls.sts.test (no STARTTLS)",
    "downgrade.sts.test": "MTA-STS enforce, MX mx-notls.sts.test matches, no STARTTLS",
    "nullmx.test": "null MX (RFC 7505)",
    "implicit.test": "no MX, A record (implicit MX)",
    "cname.test": "CNAME cname2.test -> CNAME cname3.test -> MX mx1.test",
    "mxcname.test": "MX alias.test, a CNAME to mx1.test",
    "fallback.test": "MX 10 dead.test (nothing listens), MX 20 mx2.test",
    "plain.test": "MX mx1.test in a signed zone, no TLSA, no MTA-STS",
    "happy.test": "MX happy-mx.test: A 127.0.9.1 (connect hangs) and A of mx2",
    "bogustlsa.dane.test": "MX mx-bt.dane.test (secure A of mx1), its TLSA name a CNAME "
                           "into the bogus zone",
    "redirect.sts.test": "MTA-STS policy host answers 301 (hostile HTTPS)",
    "huge.sts.test": "MTA-STS policy host sends 1 GB (hostile HTTPS)",
    "endless.sts.test": "MTA-STS policy host sends a body without end (hostile HTTPS)",
    "hang.sts.test": "MTA-STS policy host never answers (hostile HTTPS)",
    "hangtls.sts.test": "MTA-STS policy host never completes TLS (hostile HTTPS)",
}


def log(msg):
    print("lab.py: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def run(cmd, timeout=60, check=True):
    """Run a command; output through a file, not a pipe, because daemons keep
    inherited descriptors open."""
    with tempfile.TemporaryFile() as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, text))
    return text


def write(path, data, mode=0o644):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.chmod(path, mode)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_ports(addrs, timeout=30.0):
    deadline = time.time() + timeout
    pending = list(addrs)
    while pending and time.time() < deadline:
        pending = [a for a in pending if not port_open(*a)]
        if pending:
            time.sleep(0.1)
    return pending


def proc_stat(pid):
    """(state, ppid, session) of a process, None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
        return f[0], int(f[1]), int(f[3])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


# ---------------------------------------------------------------- DNS helpers

def name_wire(name):
    out = b""
    for label in name.rstrip(".").lower().split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dnskey_rdata(flags, proto, alg, b64):
    return struct.pack("!HBB", flags, proto, alg) + base64.b64decode(b64)


def key_tag(rdata):
    """RFC 4034 appendix B."""
    acc = 0
    for i, b in enumerate(rdata):
        acc += b if i & 1 else b << 8
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def ds_of(owner, flags, proto, alg, b64):
    """RFC 4034 5.1.4 with SHA-256 (digest type 2): (tag, alg, 2, hex)."""
    rdata = dnskey_rdata(flags, proto, alg, b64)
    digest = hashlib.sha256(name_wire(owner) + rdata).hexdigest().upper()
    return key_tag(rdata), alg, 2, digest


def kdig(server, qtype, name, *opts, timeout=30):
    return run(["kdig", "@" + server, "+time=2", "+retry=1", *opts, qtype, name],
               timeout=timeout, check=False)


def kdig_status(out):
    """(rcode, flags) from kdig's header lines."""
    rcode, flags = None, ""
    for ln in out.splitlines():
        if "status:" in ln and rcode is None:
            rcode = ln.split("status:", 1)[1].replace(",", ";").split(";")[0].strip()
        if ln.startswith(";; Flags:") and not flags:
            flags = ln.split(";; Flags:", 1)[1].split(";")[0].strip()
    return rcode, flags.split()


def kdig_answer(out, qtype):
    """Answer records of one type: list of rdata field lists."""
    recs, section = [], None
    for ln in out.splitlines():
        if ln.startswith(";; ") and ln.rstrip().endswith("SECTION:"):
            section = ln[3:].split()[0]
            continue
        f = ln.split()
        if section == "ANSWER" and len(f) >= 4 and not ln.startswith(";") and f[3] == qtype:
            recs.append(f[4:])
    return recs


# ---------------------------------------------------------------- certificates

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def make_ca(d):
    key, crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    run(["openssl", "req", "-x509", *EC, "-keyout", key, "-out", crt, "-days", "30",
         "-subj", "/CN=smtpc lab test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    os.chmod(key, 0o600)
    return key, crt


def make_cert(d, tag, names, ca_key, ca_crt):
    """Key, certificate for names signed by the CA, and a chain file
    (key, leaf, CA: DANE-TA needs the anchor in the presented chain)."""
    key, csr, crt = (os.path.join(d, tag + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(d, tag + ".ext")
    run(["openssl", "req", "-new", *EC, "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0]])
    write(ext, "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage=serverAuth\n"
               "subjectAltName=%s\n" % ",".join("DNS:" + n for n in names))
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "30", "-out", crt, "-extfile", ext])
    return key, crt, chain_file(d, tag, key, [crt, ca_crt])


def make_selfsigned(d, tag, name):
    key, crt = os.path.join(d, tag + ".key"), os.path.join(d, tag + ".pem")
    run(["openssl", "req", "-x509", *EC, "-keyout", key, "-out", crt, "-days", "30",
         "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name])
    return key, crt, chain_file(d, tag, key, [crt])


def chain_file(d, tag, key, certs):
    path = os.path.join(d, tag + ".chain.pem")
    data = b""
    for p in [key] + certs:
        with open(p, "rb") as f:
            data += f.read()
    write(path, data, 0o600)
    os.chmod(key, 0o600)
    return path


def spki_sha256(key):
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                         stdout=subprocess.PIPE, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def cert_sha256(crt):
    der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"],
                         stdout=subprocess.PIPE, check=True).stdout
    return hashlib.sha256(der).hexdigest()


# ---------------------------------------------------------------- zones

def soa(zone):
    return ("$ORIGIN %s\n$TTL %d\n"
            "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n"
            "@ NS ns.test.\n" % (zone, TTL))


def zone_texts(tlsa):
    """Zone file text per zone.  tlsa: name -> list of "U S M HEX"."""
    z = {}
    ip = {n: m["ip"] for m in MX.values() for n in m["names"]}

    def a(name):
        return "%s. A %s\n" % (name, ip[name])

    def tlsa_rrs(host):
        out = "".join("_25._tcp.%s. TLSA %s\n" % (host, r) for r in tlsa.get(host, []))
        return out + "".join("_2525._tcp.%s. TLSA %s\n" % (host, r)
                             for r in tlsa.get(host + ":2525", []))

    def sts(domain):
        pid = STS[domain][0]
        return ('_mta-sts.%s. TXT "v=STSv1; id=%s"\nmta-sts.%s. A %s\n'
                % (domain, pid, domain, HTTPS_IP))

    def rpt(domain):
        return '_smtp._tls.%s. TXT "%s"\n' % (domain, TLSRPT[domain]) if domain in TLSRPT else ""

    t = soa("test.") + "ns A %s\n" % KNOT_IP
    for child in CHILDREN:
        t += "%s NS ns.test.\n" % child
    t += ("nullmx MX 0 .\n"
          "implicit A %s\n" % MX["mx2"]["ip"] +
          "cname CNAME cname2.test.\ncname2 CNAME cname3.test.\ncname3 MX 10 mx1.test.\n"
          "mxcname MX 10 alias.test.\nalias CNAME mx1.test.\n"
          "fallback MX 10 dead.test.\nfallback MX 20 mx2.test.\n"
          "dead A %s\n" % DEAD_IP +
          "plain MX 10 mx1.test.\n" + a("mx1.test") + a("mx2.test") +
          "happy MX 10 happy-mx.test.\nhappy-mx A %s\nhappy-mx A %s\n"
          % (BLACKHOLE_IP, MX["mx2"]["ip"]))
    z["test."] = t

    t = soa("dane.test.")
    for dom, host in (("ee", "mx-ee"), ("ta", "mx-ta"), ("mismatch", "mx-bad"),
                      ("selfsigned", "mx-ss"), ("notls", "mx-notls")):
        name = host + ".dane.test"
        t += "%s MX 10 %s.\n" % (dom, name) + a(name) + tlsa_rrs(name)
    t += "bogushost MX 10 mx.bogus.test.\n" + rpt("ee.dane.test")
    # TLSA lookup that ends in the bogus zone (the host's A record is secure).
    t += ("bogustlsa MX 10 mx-bt.dane.test.\nmx-bt A %s\n"
          "_25._tcp.mx-bt CNAME _25._tcp.mx.bogus.test.\n" % MX["mx1"]["ip"])
    z["dane.test."] = t

    t = soa("sts.test.") + a("mx-sts.sts.test") + a("mx-notls.sts.test")
    for dom in STS:
        host = "mx-notls.sts.test" if dom in ("testing.sts.test", "downgrade.sts.test") \
            else "mx-sts.sts.test"
        t += "%s. MX 10 %s.\n" % (dom, host) + sts(dom) + rpt(dom)
    for dom, (pid, _) in HOSTILE_STS.items():
        t += ('%s. MX 10 mx-sts.sts.test.\n_mta-sts.%s. TXT "v=STSv1; id=%s"\n'
              "mta-sts.%s. A %s\n" % (dom, dom, pid, dom, HOSTILE_HTTPS_IP))
    z["sts.test."] = t

    z["insecure.test."] = (soa("insecure.test.") + "tlsa MX 10 mx.insecure.test.\n" +
                           a("mx.insecure.test") + tlsa_rrs("mx.insecure.test"))
    z["bogus.test."] = (soa("bogus.test.") + "@ MX 10 mx.bogus.test.\n" + a("mx.bogus.test") +
                        "".join("_25._tcp.mx TLSA %s\n" % r
                                for r in tlsa.get("mx-bt.dane.test", [])))
    return z


KNOT_CONF = """\
# Private knotd for the smtpc lab (generated by lab.py).
server:
    rundir: "{d}/run"
    pidfile: "{d}/run/knot.pid"
    listen: {ip}@53
    udp-workers: 1
    tcp-workers: 1
    background-workers: 2
control:
    listen: "{d}/run/knot.sock"
database:
    storage: "{d}/db"
log:
  - target: "{d}/knot.log"
    any: info
policy:
  - id: lab
    algorithm: ecdsap256sha256
    ksk-lifetime: 0
    zsk-lifetime: 0
    dnskey-ttl: {ttl}
    zone-max-ttl: {ttl}
    propagation-delay: 0
    nsec3: off
template:
  - id: default
    storage: "{d}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: changes
zone:
{zones}"""


UNBOUND_CONF = """\
# Private validating unbound for the smtpc lab (generated by lab.py).
server:
    interface: {ip}
    port: 53
    outgoing-interface: {ip}
    do-ip6: no
    interface-automatic: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    logfile: "{d}/unbound.log"
    use-syslog: no
    log-time-ascii: yes
    verbosity: 1
    # Every query is logged: tests check which resolver smtpc asked what.
    log-queries: yes
    val-log-level: 2
    ede: yes
    num-threads: 1
    so-reuseport: no
    # unbound serves test. as a built-in empty zone (RFC 6761); the lab needs
    # it resolved, and knot lives on loopback.
    local-zone: "test." transparent
    do-not-query-localhost: no
    # Nothing outside test. is resolved: no query ever leaves loopback.
    local-zone: "." refuse
    trust-anchor-file: "{ta}"
    module-config: "validator iterator"
    cache-max-ttl: 60
    cache-max-negative-ttl: 10
    prefetch: no
    # Keep knot's (canonical) order of addresses: the hanging one first.
    rrset-roundrobin: no
remote-control:
    control-enable: no
stub-zone:
    name: "test."
    stub-addr: {knot}@53
    stub-prime: no
"""


NGINX_CONF = """\
# Private nginx for the smtpc lab (generated by lab.py).
daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format lab '$host $ssl_server_name "$request" $status';
    access_log {d}/access.log lab;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type text/plain;
    server {{
        listen {ip}:443 ssl;
        server_name _;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        # One directory per virtual host: www/mta-sts.DOMAIN/.well-known/...
        root {www}/$host;
        location = /.well-known/mta-sts.txt {{ }}
        location / {{ return 404; }}
    }}
}}
"""


MAIN_CF = """\
# Private Postfix MX instance for the smtpc lab (generated by lab.py).
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {top}
maillog_file = {d}/maillog
myhostname = {name}
mydomain = test
myorigin = $myhostname
# The smtpd service binds {ip}:25 (master.cf); Postfix refuses an
# inet_interfaces address not configured on an interface (127.0.0.0/8 is one
# route on lo, only 127.0.0.1 is an address).
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_bind_address = 127.0.0.1
# An MX for any test domain: nothing is delivered locally, everything accepted
# is relayed to this instance's capture server.
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{capture_port}
smtp_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
smtputf8_enable = yes
local_header_rewrite_clients =
always_add_missing_headers = no
disable_mime_output_conversion = yes
smtp_line_length_limit = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtpd_error_sleep_time = 0
notify_classes =
smtpd_tls_session_cache_database =
smtpd_tls_loglevel = 1
# Received: says whether the message came over TLS.
smtpd_tls_received_header = yes
{tls}"""

MASTER_CF = """\
{smtpd}cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


# ---------------------------------------------------------------- the lab

class Lab:
    """Start/stop the whole lab.  `state` holds everything a test needs."""

    def __init__(self, directory=None, state=None):
        self.state = state or {}
        self.dir = directory or self.state.get("dir")
        self.procs = []

    # -- start

    def listen_addrs(self):
        addrs = [(KNOT_IP, 53), (UNBOUND_IP, 53), (HTTPS_IP, 443), (HOSTILE_HTTPS_IP, 443)]
        return addrs + [(m["ip"], p) for m in MX.values() for p in m.get("ports", [25])]

    def start(self, wait_busy=0.0):
        if os.geteuid() != 0:
            raise RuntimeError("must run as root (ports 25/53/443, Postfix's master)")
        deadline = time.time() + wait_busy
        while True:
            busy = [a for a in self.listen_addrs() if port_open(*a)]
            if not busy or time.time() >= deadline:
                break
            time.sleep(1)
        if busy:
            raise RuntimeError("address(es) already in use (a previous lab? try: %s stop): %s"
                               % (sys.argv[0], busy))
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="smtpc-lab-")
        else:
            os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)  # Postfix and nginx workers drop privileges
        d = self.dir
        self.state = {
            "dir": d, "dns": {"knot": KNOT_IP, "unbound": UNBOUND_IP},
            "https_ip": HTTPS_IP, "dead_ip": DEAD_IP, "blackhole_ip": BLACKHOLE_IP,
            "domains": DOMAINS,
            "sts": {k: {"id": v[0], "mode": v[1], "mx": v[2]} for k, v in STS.items()},
            "tlsrpt": TLSRPT, "mx": {}, "tlsa": {}, "ds": {}, "pids": {},
            "postfix_configs": [], "logs": {},
        }
        self._save()
        write(CURRENT, d + "\n")
        try:
            self._start_all()
        except BaseException:
            self._dump_logs()
            self.stop(keep=True)
            log("start failed; the lab's files are kept in " + d)
            raise
        self._save()
        return self.state

    def _start_all(self):
        certs = self._make_certs()
        self._start_knot()
        self._start_unbound()
        self._start_mx(certs)
        self._start_nginx(certs)
        self._spawn("blackhole", [sys.executable, os.path.abspath(__file__), "blackhole",
                                  BLACKHOLE_IP, "25"])
        self._wait_blackhole()
        self._spawn("hostile-https", [sys.executable, os.path.abspath(__file__),
                                      "hostile-https", HOSTILE_HTTPS_IP, "443",
                                      certs["hostile-https"][2]])
        missing = wait_ports(self.listen_addrs() +
                             [("127.0.0.1", m["capture_port"]) for m in self.state["mx"].values()])
        if missing:
            raise RuntimeError("not listening after 30 s: %s" % missing)
        self._check_listeners()
        self._check_dns()

    def _wait_blackhole(self, timeout=10):
        ready = os.path.join(self.dir, "blackhole.out")
        deadline = time.time() + timeout
        text = b""
        while time.time() < deadline:
            with open(ready, "rb") as f:
                text = f.read()
            if b"ready" in text:
                return
            time.sleep(0.05)
        raise RuntimeError("the blackhole listener on %s:25 did not start: %s"
                           % (BLACKHOLE_IP, text.decode(errors="replace")[-500:]))

    def _spawn(self, name, cmd):
        logf = open(os.path.join(self.dir, name + ".out"), "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             cwd=self.dir, start_new_session=True)
        logf.close()
        self.procs.append(p)
        self.state["pids"][name] = p.pid
        self._save()
        return p

    def _make_certs(self):
        d = os.path.join(self.dir, "tls")
        os.makedirs(d)
        ca_key, ca_crt = make_ca(d)
        self.state["ca_file"] = ca_crt
        certs = {}
        for tag, m in MX.items():
            if m["tls"] == "ca":
                certs[tag] = make_cert(d, tag, m["names"], ca_key, ca_crt)
            elif m["tls"] == "self":
                certs[tag] = make_selfsigned(d, tag, "unrelated-name.invalid")
        certs["https"] = make_cert(d, "https", ["mta-sts." + dom for dom in STS],
                                   ca_key, ca_crt)
        certs["hostile-https"] = make_cert(d, "hostile-https",
                                           ["mta-sts." + dom for dom in HOSTILE_STS],
                                           ca_key, ca_crt)
        # A key no server uses, for TLSA records that must not match.
        other = os.path.join(d, "unused.key")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", other])
        ee = spki_sha256(certs["ee"][0])
        wrong = spki_sha256(other)
        self.state["tlsa"] = {
            "mx-ee.dane.test": ["3 1 1 " + ee, "1 1 1 " + ee],  # PKIX-EE: unusable for SMTP
            "mx-ee.dane.test:2525": ["3 1 1 " + wrong],
            "mx-ta.dane.test": ["2 0 1 " + cert_sha256(ca_crt)],
            "mx-bad.dane.test": ["3 1 1 " + wrong],
            "mx-ss.dane.test": ["3 1 1 " + spki_sha256(certs["ss"][0])],
            "mx-notls.dane.test": ["3 1 1 " + wrong],
            "mx.insecure.test": ["3 1 1 " + wrong],
            # Served under _25._tcp.mx.bogus.test (bogus), reached by a CNAME; it
            # matches mx1's key, so only a client that ignored the bogus status
            # (and did DANE with it, or no DANE at all) would deliver.
            "mx-bt.dane.test": ["3 1 1 " + spki_sha256(certs["mx1"][0])],
        }
        return certs

    # -- knot

    def _knotc(self, *args):
        return run(["knotc", "-c", self.state["knot_config"], "-t", "10", *args])

    def _start_knot(self):
        d = os.path.join(self.dir, "knot")
        for sub in ("run", "db", "zones"):
            os.makedirs(os.path.join(d, sub))
        zones = ""
        for name in ["test."] + list(CHILDREN):
            zones += "  - domain: %s\n" % name
            if CHILDREN.get(name) != "unsigned":
                zones += "    dnssec-signing: on\n    dnssec-policy: lab\n"
        for name, text in zone_texts(self.state["tlsa"]).items():
            write(os.path.join(d, "zones", name + "zone"), text)
        conf = os.path.join(d, "knot.conf")
        write(conf, KNOT_CONF.format(d=d, ip=KNOT_IP, ttl=TTL, zones=zones))
        self.state["knot_config"] = conf
        self.state["logs"]["knot"] = os.path.join(d, "knot.log")
        run(["knotc", "-c", conf, "conf-check"])
        self._spawn("knotd", ["knotd", "-c", conf])
        if wait_ports([(KNOT_IP, 53)]):
            raise RuntimeError("knotd does not listen on %s:53" % KNOT_IP)
        keys = {z: self._wait_signed(z) for z in ["test."] + list(CHILDREN)
                if CHILDREN.get(z) != "unsigned"}
        # DS records in the parent, by a knotc transaction (knot re-signs).
        self._knotc("zone-begin", "test.")
        try:
            for child, kind in CHILDREN.items():
                if kind == "unsigned":
                    continue
                for flags, proto, alg, b64 in keys[child]:
                    if flags != 257:
                        continue
                    tag, alg, dt, digest = ds_of(child, flags, proto, alg, b64)
                    if kind == "bogus":  # the right key tag, a digest of nothing
                        digest = hashlib.sha256(b"no such key").hexdigest().upper()
                    ds = "%d %d %d %s" % (tag, alg, dt, digest)
                    self.state["ds"][child] = ds
                    self._knotc("zone-set", "test.", child, str(TTL), "DS", ds)
            self._knotc("zone-commit", "test.")
        except BaseException:
            self._knotc("zone-abort", "test.")
            raise
        for child, ds in self.state["ds"].items():
            self._wait_dns(KNOT_IP, "DS", child, lambda out, ds=ds: kdig_answer(out, "RRSIG") and
                           [r[0] for r in kdig_answer(out, "DS")] == [ds.split()[0]], "+dnssec")
        self._write_trust_anchor(keys["test."])

    def _wait_signed(self, zone, timeout=60):
        """DNSKEYs of a zone once knot serves it signed: [(flags, proto, alg, b64)]."""
        deadline = time.time() + timeout
        while True:
            out = kdig(KNOT_IP, "DNSKEY", zone, "+dnssec", "+norecurse")
            keys = [(int(f[0]), int(f[1]), int(f[2]), "".join(f[3:]))
                    for f in kdig_answer(out, "DNSKEY")]
            if keys and kdig_answer(out, "RRSIG") and any(k[0] == 257 for k in keys):
                return keys
            if time.time() > deadline:
                raise RuntimeError("zone %s not signed after %d s:\n%s" % (zone, timeout, out))
            time.sleep(0.2)

    def _wait_dns(self, server, qtype, name, ok, *opts, timeout=30):
        deadline = time.time() + timeout
        while True:
            out = kdig(server, qtype, name, *opts)
            if ok(out):
                return out
            if time.time() > deadline:
                raise RuntimeError("@%s %s %s: unexpected answer:\n%s" % (server, qtype, name, out))
            time.sleep(0.2)

    def _write_trust_anchor(self, keys):
        """The KSK of test., as DNSKEY (the format of dns-root-data's
        root.key) and as DS, for unbound and `--trust-anchor`."""
        ta = os.path.join(self.dir, "test.key")
        ta_ds = os.path.join(self.dir, "test.ds")
        k = [k for k in keys if k[0] == 257]
        write(ta, "".join("test. IN DNSKEY %d %d %d %s\n" % kk for kk in k))
        write(ta_ds, "".join("test. IN DS %d %d %d %s\n" % ds_of("test.", *kk) for kk in k))
        self.state["trust_anchor"] = ta
        self.state["trust_anchor_ds"] = ta_ds

    # -- unbound

    def _start_unbound(self):
        d = os.path.join(self.dir, "unbound")
        os.makedirs(d)
        conf = os.path.join(d, "unbound.conf")
        write(conf, UNBOUND_CONF.format(ip=UNBOUND_IP, d=d, knot=KNOT_IP,
                                        ta=self.state["trust_anchor_ds"]))
        self.state["unbound_config"] = conf
        self.state["logs"]["unbound"] = os.path.join(d, "unbound.log")
        run(["unbound-checkconf", conf])
        self._spawn("unbound", ["unbound", "-d", "-c", conf])
        if wait_ports([(UNBOUND_IP, 53)]):
            raise RuntimeError("unbound does not listen on %s:53" % UNBOUND_IP)

    def _check_dns(self):
        """unbound validates: AD for the signed zones, SERVFAIL for the bogus
        one, no AD for the unsigned one."""
        def secure(out):
            rc, flags = kdig_status(out)
            return rc == "NOERROR" and "ad" in flags
        for name in ("ee.dane.test", "enforce.sts.test", "plain.test"):
            self._wait_dns(UNBOUND_IP, "MX", name, secure, "+dnssec")
        self._wait_dns(UNBOUND_IP, "MX", "bogus.test",
                       lambda out: kdig_status(out)[0] == "SERVFAIL", "+dnssec")
        self._wait_dns(UNBOUND_IP, "MX", "tlsa.insecure.test",
                       lambda out: kdig_status(out)[0] == "NOERROR" and
                       "ad" not in kdig_status(out)[1], "+dnssec")

    # -- MX hosts

    def _start_mx(self, certs):
        for tag, m in MX.items():
            d = os.path.join(self.dir, "mx", tag)
            os.makedirs(os.path.join(d, "etc"))
            os.makedirs(os.path.join(d, "queue"), 0o755)
            os.chmod(os.path.dirname(d), 0o755)
            os.chmod(d, 0o755)
            cport = free_port()
            cdir = os.path.join(d, "capture")
            self._spawn("capture-" + tag, [sys.executable, CAPTURE_PY, "--port", str(cport),
                                           "--dir", cdir])
            tls = "smtpd_tls_security_level = none\n"
            if m["tls"]:
                tls = ("smtpd_tls_security_level = may\n"
                       "smtpd_tls_chain_files = %s\n" % certs[tag][2])
            conf = os.path.join(d, "etc")
            write(os.path.join(conf, "main.cf"), MAIN_CF.format(
                d=d, top=self.dir, name=m["names"][0], ip=m["ip"], capture_port=cport, tls=tls))
            smtpd = "".join("%s:%d inet n - n - - smtpd\n" % (m["ip"], port)
                            for port in m.get("ports", [25]))
            write(os.path.join(conf, "master.cf"), MASTER_CF.format(smtpd=smtpd))
            self.state["mx"][tag] = {
                "ip": m["ip"], "names": m["names"], "tls": m["tls"],
                "ports": m.get("ports", [25]),
                "capture_port": cport, "capture_dir": cdir, "config": conf,
                "log": os.path.join(d, "maillog"),
                "cert": certs[tag][1] if tag in certs else None}
            self.state["postfix_configs"].append(conf)
        self._save()
        # `postfix check` creates the queue directories; each postfix command
        # takes a few seconds, so the instances start in parallel.
        confs = self.state["postfix_configs"]
        for action in ("check", "start"):
            procs = []
            for c in confs:
                out = open(os.path.join(os.path.dirname(c), "postfix-%s.out" % action), "ab")
                procs.append((c, subprocess.Popen(["postfix", "-c", c, action],
                                                  stdin=subprocess.DEVNULL, stdout=out,
                                                  stderr=subprocess.STDOUT)))
                out.close()
            bad = [c for c, p in procs if p.wait(timeout=120) != 0]
            if bad:
                raise RuntimeError("postfix %s failed for %s (see postfix-%s.out and maillog "
                                   "beside them; Postfix logs to syslog before its own log "
                                   "runs)" % (action, bad, action))

    # -- nginx

    def _start_nginx(self, certs):
        d = os.path.join(self.dir, "nginx")
        www = os.path.join(self.dir, "www")
        for sub in ("tmp", www):
            os.makedirs(os.path.join(d, sub), 0o755)
        for dom, (pid, mode, mxs) in STS.items():
            wk = os.path.join(www, "mta-sts." + dom, ".well-known")
            os.makedirs(wk)
            for p in (os.path.dirname(wk), wk):
                os.chmod(p, 0o755)
            body = "version: STSv1\r\nmode: %s\r\n" % mode
            body += "".join("mx: %s\r\n" % mx for mx in mxs) + "max_age: 86400\r\n"
            write(os.path.join(wk, "mta-sts.txt"), body)
        os.chmod(www, 0o755)
        key, crt = certs["https"][0], certs["https"][1]
        conf = os.path.join(d, "nginx.conf")
        write(conf, NGINX_CONF.format(d=d, ip=HTTPS_IP, crt=crt, key=key, www=www))
        self.state["nginx_config"] = conf
        self.state["logs"]["nginx_access"] = os.path.join(d, "access.log")
        self.state["logs"]["nginx_error"] = os.path.join(d, "error.log")
        run(["nginx", "-t", "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")])
        self._spawn("nginx", ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")])

    def _check_listeners(self):
        """Every socket of our processes must be on 127.0.0.0/8."""
        out = run(["ss", "-Hlntup"], check=False)
        ours = self._our_pids()
        for line in out.splitlines():
            f = line.split()
            if len(f) < 5:
                continue
            local = f[4]
            for pid in ours:
                if "pid=%d," % pid in line and not local.startswith("127."):
                    raise RuntimeError("our process listens off loopback: " + line)

    # -- stop

    def _our_pids(self):
        """Live pids of everything this lab started, found by what marks them
        as ours (never by a bare name): the spawned processes (and their
        session: nginx workers), and Postfix processes whose MAIL_CONFIG is one
        of our config directories."""
        tokens = {"knotd": "knot.conf", "unbound": "unbound.conf", "nginx": "nginx.conf",
                  "blackhole": "lab.py", "hostile-https": "lab.py"}
        sessions = set()
        for name, pid in self.state.get("pids", {}).items():
            token = tokens.get(name, "capture.py")
            if pid and pid_alive(pid) and token in proc_cmdline(pid):
                sessions.add(pid)
        confs = ["MAIL_CONFIG=" + c for c in self.state.get("postfix_configs", [])]
        pids = set(sessions)
        for ent in os.listdir("/proc"):
            if not ent.isdigit():
                continue
            pid = int(ent)
            st = proc_stat(pid)
            if pid == os.getpid() or st is None or st[0] == "Z":
                continue
            if st[2] in sessions or any(proc_environ_has(pid, c) for c in confs):
                pids.add(pid)
        return pids

    def _wait_gone(self, timeout):
        deadline = time.time() + timeout
        while True:
            for p in self.procs:
                p.poll()
            left = self._our_pids()
            if not left or time.time() > deadline:
                return left
            time.sleep(0.05)

    def stop(self, keep=False):
        """Stop every process this lab started: SIGTERM, SIGKILL after 10 s."""
        for conf in self.state.get("postfix_configs", []):
            if os.path.exists(os.path.join(conf, "main.cf")):
                subprocess.run(["postfix", "-c", conf, "stop"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        for pid in self._our_pids():
            signal_pid(pid, signal.SIGTERM)
        left = self._wait_gone(10)
        for pid in left:
            signal_pid(pid, signal.SIGKILL)
        if left and self._wait_gone(3):
            log("warning: processes still running after stop: %s" % sorted(self._our_pids()))
        d = self.state.get("dir")
        try:
            with open(CURRENT) as f:
                if f.read().strip() == d:
                    os.unlink(CURRENT)
        except OSError:
            pass
        if d and not keep:
            shutil.rmtree(d, ignore_errors=True)

    # -- helpers for tests

    def _save(self):
        if self.dir:
            write(os.path.join(self.dir, "state.json"), json.dumps(self.state, indent=1))

    def _dump_logs(self):
        paths = list(self.state.get("logs", {}).values())
        paths += [m["log"] for m in self.state.get("mx", {}).values()]
        paths += [os.path.join(self.dir or "", n + ".out") for n in self.state.get("pids", {})]
        for path in paths:
            if path and os.path.exists(path) and os.path.getsize(path):
                with open(path, errors="replace") as f:
                    log("--- %s ---\n%s" % (path, f.read()[-2000:]))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def captured(self, tag):
        """(envelope, message bytes) received by MX `tag`, in arrival order."""
        directory = self.state["mx"][tag]["capture_dir"]
        out = []
        if not os.path.isdir(directory):
            return out
        for name in sorted(os.listdir(directory)):
            if name.endswith(".eml"):
                base = os.path.join(directory, name[:-4])
                if not os.path.exists(base + ".json"):
                    continue
                with open(base + ".json") as f:
                    env = json.load(f)
                with open(base + ".eml", "rb") as f:
                    out.append((env, f.read()))
        return out

    def where(self, needle):
        """{mx tag: [message bytes]} of every captured message containing needle."""
        out = {}
        for tag in self.state["mx"]:
            got = [data for _, data in self.captured(tag) if needle in data]
            if got:
                out[tag] = got
        return out

    def unbound_log_size(self):
        try:
            return os.path.getsize(self.state["logs"]["unbound"])
        except OSError:
            return 0

    def unbound_queries(self, offset):
        """[(client ip, name, type)] unbound logged since offset."""
        out = []
        try:
            with open(self.state["logs"]["unbound"], "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return out
        for ln in text.splitlines():
            f = ln.split(" info: ", 1)
            if len(f) == 2:
                w = f[1].split()
                if len(w) == 4 and w[3] == "IN" and w[0].count(".") == 3:
                    out.append((w[0], w[1].rstrip(".").lower(), w[2]))
        return out

    def https_hits(self, host):
        """Requests nginx logged so far for one virtual host (mta-sts.DOMAIN)."""
        try:
            with open(self.state["logs"]["nginx_access"]) as f:
                return sum(1 for ln in f if ln.split(" ", 1)[0] == host)
        except OSError:
            return 0

    # -- sanity checks (lab.py check; run.py's first cases)

    def checks(self):
        """[(name, function)]: each function raises on failure."""
        s = self.state
        ub, kn = s["dns"]["unbound"], s["dns"]["knot"]

        def dns(server, qtype, name, rcode, ad):
            def f():
                out = kdig(server, qtype, name, "+dnssec")
                rc, flags = kdig_status(out)
                if rc != rcode or (ad is not None and ("ad" in flags) != ad):
                    raise RuntimeError("got %s %s, expected %s ad=%s:\n%s"
                                       % (rc, flags, rcode, ad, out))
                return "%s %s" % (rc, " ".join(flags))
            return f

        def tlsa_present(name):
            def f():
                out = kdig(ub, "TLSA", "_25._tcp." + name, "+dnssec")
                recs = [" ".join(r[:3]) + " " + "".join(r[3:]).lower()
                        for r in kdig_answer(out, "TLSA")]
                want = sorted(s["tlsa"][name])
                if sorted(recs) != want:
                    raise RuntimeError("TLSA %s: %s, expected %s" % (name, recs, want))
                return "%d records" % len(recs)
            return f

        out = [
            ("unbound: signed parent test. is secure (AD)",
             dns(ub, "SOA", "test", "NOERROR", True)),
            ("unbound: DANE domain MX is secure (AD)",
             dns(ub, "MX", "ee.dane.test", "NOERROR", True)),
            ("unbound: DANE TLSA is secure (AD)",
             dns(ub, "TLSA", "_25._tcp.mx-ee.dane.test", "NOERROR", True)),
            ("unbound: TLSA records as generated", tlsa_present("mx-ee.dane.test")),
            ("unbound: MTA-STS TXT is secure (AD)",
             dns(ub, "TXT", "_mta-sts.enforce.sts.test", "NOERROR", True)),
            ("unbound: insecure zone answers without AD",
             dns(ub, "TLSA", "_25._tcp.mx.insecure.test", "NOERROR", False)),
            ("unbound: bogus zone is SERVFAIL", dns(ub, "MX", "bogus.test", "SERVFAIL", None)),
            ("unbound: bogus SERVFAIL carries EDE 6 (DNSSEC Bogus)", self.check_ede),
            ("unbound: MX host in the bogus zone is SERVFAIL",
             dns(ub, "A", "mx.bogus.test", "SERVFAIL", None)),
            ("unbound: null MX domain secure", dns(ub, "MX", "nullmx.test", "NOERROR", True)),
            ("unbound: secure NXDOMAIN", dns(ub, "MX", "nosuch.test", "NXDOMAIN", True)),
            ("knot: bogus zone served (no validation)",
             dns(kn, "MX", "bogus.test", "NOERROR", False)),
        ]
        for tag, m in s["mx"].items():
            out.append(("MX %s (%s): SMTP%s" % (tag, m["names"][0],
                                                " + STARTTLS" if m["tls"] else ", no STARTTLS"),
                        lambda tag=tag: self.check_smtp(tag)))
        out.append(("nginx: MTA-STS policies over HTTPS (test CA)", self.check_https))
        out.append(("blackhole %s:25: connecting hangs" % BLACKHOLE_IP, self.check_blackhole))
        out.append(("unbound: happy-mx.test lists the hanging address first",
                    self.check_happy_order))
        return out

    def check_blackhole(self):
        t = time.time()
        try:
            socket.create_connection((BLACKHOLE_IP, 25), timeout=1.5).close()
        except socket.timeout:
            return "connect timed out after %.1f s" % (time.time() - t)
        raise RuntimeError("connected")

    def check_happy_order(self):
        out = kdig(self.state["dns"]["unbound"], "A", "happy-mx.test")
        addrs = [r[0] for r in kdig_answer(out, "A")]
        if addrs != [BLACKHOLE_IP, MX["mx2"]["ip"]]:
            raise RuntimeError("order %s" % addrs)
        return " ".join(addrs)

    def check_ede(self):
        out = kdig(self.state["dns"]["unbound"], "MX", "bogus.test", "+dnssec")
        ede = [ln for ln in out.splitlines() if ln.startswith(";; EDE:")]
        if not ede or not ede[0].split()[2] == "6":
            raise RuntimeError("no EDE 6:\n" + out)
        return ede[0][3:]

    def check_smtp(self, tag):
        """EHLO offers STARTTLS exactly when it should; then openssl s_client
        verifies the certificate the way a sender would: DANE with the
        host's TLSA records (which must fail for mx-bad), else PKIX with the
        test CA for the MX name."""
        m = self.state["mx"][tag]
        with smtplib.SMTP(m["ip"], 25, local_hostname="check.test", timeout=10) as c:
            c.ehlo()
            has = c.has_extn("starttls")
        if has != bool(m["tls"]):
            raise RuntimeError("STARTTLS offered: %s" % has)
        if not has:
            return "no STARTTLS"
        name = m["names"][0]
        cmd = ["openssl", "s_client", "-connect", "%s:25" % m["ip"], "-starttls", "smtp",
               "-servername", name, "-verify_return_error", "-brief"]
        tlsa = self.state["tlsa"].get(name)
        if tlsa:
            # RFC 7672 3.1.1: no name checks for DANE-EE (OpenSSL checks by default).
            cmd += ["-dane_tlsa_domain", name, "-dane_ee_no_namechecks"]
            for r in tlsa:
                cmd += ["-dane_tlsa_rrdata", r]
        else:
            cmd += ["-CAfile", self.state["ca_file"], "-verify_hostname", name]
        p = subprocess.run(cmd, input=b"QUIT\r\n", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        out = p.stdout.decode(errors="replace")
        ok = "Verification: OK" in out
        if ok != (tag != "bad"):
            raise RuntimeError("openssl s_client verification %s:\n%s"
                               % ("passed" if ok else "failed", out[-1500:]))
        lines = [ln for ln in out.splitlines() if ln.startswith(("DANE TLSA", "Verified peername",
                                                                 "Protocol version"))]
        return "; ".join(lines) if ok else "DANE verification fails as intended"

    def check_https(self):
        ctx = ssl.create_default_context(cafile=self.state["ca_file"])
        seen = []
        for dom, (pid, mode, mxs) in STS.items():
            host = "mta-sts." + dom
            with socket.create_connection((HTTPS_IP, 443), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as t:
                    t.sendall(("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: %s\r\n"
                               "Connection: close\r\n\r\n" % host).encode())
                    data = b""
                    while True:
                        chunk = t.recv(4096)
                        if not chunk:
                            break
                        data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or ("mode: " + mode).encode() not in body:
                raise RuntimeError("%s: %r" % (host, data[:300]))
            seen.append(mode)
        return ", ".join(seen)


def blackhole(ip, port):
    """Listen with a full accept queue and never accept: the kernel then
    drops new SYNs, so connecting hangs like a host that is down."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(0)
    fillers = []
    for _ in range(4):  # the queue holds backlog + 1; extra SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex((ip, port))
        fillers.append(c)
    time.sleep(0.3)
    probe = socket.socket()
    probe.settimeout(1)
    try:
        probe.connect((ip, port))
        raise SystemExit("blackhole: a connection went through")
    except socket.timeout:
        pass
    print("ready", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])


def hostile_https(ip, port, chain):
    """A hostile MTA-STS policy host: TLS with a certificate from the test CA for
    every mta-sts.<HOSTILE_STS domain>, then per Host header what HOSTILE_STS
    says. One thread per connection; nothing is kept."""
    import threading
    by_sni = {"mta-sts." + d: b for d, (_, b) in HOSTILE_STS.items()}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain)

    def sni(sock, name, _ctx):
        if by_sni.get(name) == "hangtls":
            time.sleep(60)       # the client's handshake timeout fires first
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None
    ctx.sni_callback = sni

    def stream(t, head, prefix, total):
        t.sendall(head + prefix)
        sent = len(prefix)
        pad = b"mx: pad.example\r\n" * 4096
        while total is None or sent < total:
            chunk = pad if total is None else pad[:total - sent]
            t.sendall(chunk)
            sent += len(chunk)

    def serve(raw):
        try:
            raw.settimeout(120)
            with ctx.wrap_socket(raw, server_side=True) as t:
                req = b""
                while b"\r\n\r\n" not in req and len(req) < 65536:
                    chunk = t.recv(4096)
                    if not chunk:
                        return
                    req += chunk
                host = ""
                for ln in req.split(b"\r\n")[1:]:
                    if ln.lower().startswith(b"host:"):
                        host = ln[5:].strip().decode(errors="replace").split(":")[0]
                what = by_sni.get(host.lower())
                if what == "redirect":
                    t.sendall(b"HTTP/1.1 301 Moved Permanently\r\nLocation: "
                              b"https://mta-sts.enforce.sts.test/.well-known/mta-sts.txt\r\n"
                              b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                elif what == "huge":
                    stream(t, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: 1073741824\r\nConnection: close\r\n\r\n",
                           HOSTILE_POLICY, 1 << 30)
                elif what == "endless":
                    stream(t, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              b"Connection: close\r\n\r\n", HOSTILE_POLICY, None)
                elif what == "hang":
                    t.recv(1)    # until the client gives up and closes
                else:
                    t.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def load(directory=None):
    if directory is None:
        with open(CURRENT) as f:
            directory = f.read().strip()
    with open(os.path.join(directory, "state.json")) as f:
        return Lab(state=json.load(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start")
    p.add_argument("--dir", help="directory to create (default: a fresh temp dir)")
    p = sub.add_parser("stop")
    p.add_argument("dir", nargs="?")
    p.add_argument("--keep", action="store_true", help="keep the directory")
    for name in ("status", "check"):
        p = sub.add_parser(name)
        p.add_argument("dir", nargs="?")
    p = sub.add_parser("blackhole", help="(internal) the hanging listener")
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p = sub.add_parser("hostile-https", help="(internal) the hostile MTA-STS policy host")
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p.add_argument("chain")
    a = ap.parse_args()
    if a.cmd == "hostile-https":
        hostile_https(a.ip, a.port, a.chain)
        return 0
    if a.cmd == "blackhole":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
        blackhole(a.ip, a.port)
        return 0
    try:
        if a.cmd == "start":
            lab = Lab(a.dir)
            lab.start()
            print(json.dumps(lab.state, indent=1))
        elif a.cmd == "stop":
            load(a.dir).stop(keep=a.keep)
        elif a.cmd == "status":
            print(json.dumps(load(a.dir).state, indent=1))
        else:
            failed = 0
            for name, fn in load(a.dir).checks():
                try:
                    print("ok   %s: %s" % (name, fn()))
                except Exception as e:  # noqa: BLE001 - report every failure
                    failed += 1
                    print("FAIL %s: %s" % (name, e))
            return 1 if failed else 0
    except (RuntimeError, OSError) as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
