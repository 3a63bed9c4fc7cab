#!/usr/bin/env python3
"""Private real mail servers on loopback for smtpc's tests and demo.

Everything lives in one fresh temporary directory and listens on 127.0.0.1
only (nothing on *:25 or any other address):

  127.0.0.1:587   Postfix smtpd, submission: STARTTLS required, AUTH only after TLS
  127.0.0.1:465   Postfix smtpd, implicit TLS (smtpd_tls_wrappermode)
  127.0.0.1:P     Postfix smtpd, plaintext with AUTH offered (for --insecure-auth tests)
  127.0.0.1:A     Dovecot auth service (SASL for Postfix; passwd-file, {PLAIN} passwords,
                  mechanisms PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256 CRAM-MD5)
  127.0.0.1:C     capture.py: Postfix relays every message here (relayhost); stored
                  byte for byte
  127.0.0.1:CA    capture.py --auth: offers AUTH PLAIN LOGIN in plaintext and logs every
                  line it receives (proves what a client did not send)
  127.0.0.1:S...  Postfix smtp-sink instances with fault-injection flags (see SINKS)

The certificates come from a test CA made at start with the openssl CLI; the
server name is mail.smtpc.test (use --tls-name mail.smtpc.test --ca-file CA).

Command line:
  servers.py start [--dir DIR]   start everything, print the state as JSON
                                 (also saved in DIR/state.json)
  servers.py stop [DIR]          stop what `start` started (default: the last one
                                 started, remembered in $TMPDIR/smtpc-real-servers.current)
  servers.py status [DIR]        print the state JSON
Add --keep to stop to keep the directory.

From Python: `with Servers() as s: ...` (see class Servers).  Must run as root:
Postfix's master needs it.  Python 3 standard library only.
"""

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TLS_NAME = "mail.smtpc.test"
USER = "smtpc@smtpc.test"
PASSWORD = "Tr0ub4dor&3"
# A second account whose name needs SCRAM's "=2C"/"=3D" escaping (RFC 5802 5.1).
USER2 = "o=d,user@smtpc.test"
PASSWORD2 = "an0ther-Secret"
SUBMISSION_PORT = 587
SMTPS_PORT = 465
CURRENT = os.path.join(tempfile.gettempdir(), "smtpc-real-servers.current")

# Recipients that the Postfix instance rejects at RCPT (check_recipient_access).
REJECT_RCPT = "reject@smtpc.test"
DEFER_RCPT = "defer@smtpc.test"

# smtp-sink instances: name -> extra flags (see smtp-sink(1)).
SINKS = {
    "accept": [],                 # accepts everything
    "rcpt-soft": ["-r", "RCPT"],  # 450 4.3.0 to every RCPT (implies no PIPELINING)
    "rcpt-hard": ["-f", "RCPT"],  # 500 5.3.0 to every RCPT
    "mail-hard": ["-f", "MAIL"],
    "mail-421": ["-Q", "MAIL"],   # 421 and disconnect after MAIL
    "data-hard": ["-f", "DATA"],
    "dot-hard": ["-f", "."],      # message rejected after the final dot
    "dot-soft": ["-r", "."],
    "rcpt-drop": ["-q", "RCPT"],  # disconnect without a reply after RCPT
    "dot-drop": ["-q", "."],
    "quit-drop": ["-q", "QUIT"],  # disconnect without replying to QUIT
    "greet-421": ["-Q", "CONNECT"],
    "greet-hard": ["-f", "CONNECT"],
    "ehlo-hard": ["-f", "EHLO"],  # EHLO refused: HELO fallback
    "no-esmtp": ["-e"],
    "no-8bit": ["-8"],
    "no-pipe": ["-p"],
    "slow-data": ["-w", "4"],     # 4 s before the reply to DATA
    "abort-data": ["-A", "0"],    # 550 right after the 354, then stop reading
}


def log(msg):
    print("servers.py: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_ports(ports, timeout=30.0):
    deadline = time.time() + timeout
    pending = list(ports)
    while pending and time.time() < deadline:
        pending = [p for p in pending if not port_open(p)]
        if pending:
            time.sleep(0.1)
    return pending


def run(cmd, timeout=60):
    """Run a command; its output goes through a file, not a pipe, because
    daemons (dovecot, postfix) keep inherited descriptors open."""
    with tempfile.TemporaryFile() as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, text))
    return text


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def pid_alive(pid):
    """True while the process exists and is not a zombie awaiting its reaper."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def proc_environ_has(pid, entry):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return entry.encode() in f.read().split(b"\0")
    except OSError:
        return False


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------- certificates

def make_certs(d):
    """A test CA and a server certificate for TLS_NAME signed by it."""
    os.makedirs(d)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(d, "server.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt,
         "-days", "30", "-subj", "/CN=smtpc test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr,
         "-subj", "/CN=" + TLS_NAME])
    write(ext, "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage=serverAuth\n"
               "subjectAltName=DNS:%s,IP:127.0.0.1\n" % TLS_NAME)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "30", "-out", crt, "-extfile", ext])
    os.chmod(key, 0o600)
    os.chmod(ca_key, 0o600)
    return ca_crt, key, crt


# ---------------------------------------------------------------- dovecot

DOVECOT_CONF = """\
# Private Dovecot: only the auth service, for Postfix's SASL.
base_dir = {run}
state_dir = {state}
instance_name = smtpc-test-{tag}
protocols =
listen = 127.0.0.1
ssl = no
log_path = {log}
info_log_path = {log}
debug_log_path = {log}
default_internal_user = dovecot
default_login_user = dovenull
# PLAIN/LOGIN over the plaintext test port need this (Postfix tells Dovecot
# whether the client connection has TLS).
disable_plaintext_auth = no
auth_mechanisms = plain login scram-sha-1 scram-sha-256 cram-md5
auth_verbose = yes
# No failure delay and no per-IP penalty: the tests authenticate wrongly on
# purpose, and every client is 127.0.0.1.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
auth_username_chars =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


def setup_dovecot(d, port, tag):
    os.makedirs(d)
    for sub in ("run", "state"):
        os.makedirs(os.path.join(d, sub))
    passwd = os.path.join(d, "passwd")
    write(passwd, "%s:{PLAIN}%s\n%s:{PLAIN}%s\n" % (USER, PASSWORD, USER2, PASSWORD2))
    conf = os.path.join(d, "dovecot.conf")
    write(conf, DOVECOT_CONF.format(run=os.path.join(d, "run"),
                                    state=os.path.join(d, "state"),
                                    log=os.path.join(d, "dovecot.log"),
                                    passwd=passwd, port=port, tag=tag))
    return conf


# ---------------------------------------------------------------- postfix

MAIN_CF = """\
# Private Postfix instance for smtpc's tests (generated by servers.py).
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {top}
maillog_file = {maillog}
myhostname = {tls_name}
mydomain = smtpc.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtp_bind_address = 127.0.0.1
# Nothing is delivered locally: every message is relayed to the capture server.
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{capture_port}
smtp_tls_security_level = none
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
smtputf8_enable = yes
# Keep the message as the client sent it (the test compares it byte for byte):
# no header rewriting or added headers, no MIME conversion, no line folding.
local_header_rewrite_clients =
always_add_missing_headers = no
message_drop_headers =
disable_mime_output_conversion = yes
smtp_line_length_limit = 0
# Fast retries and no error pauses: this is a test bench.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
notify_classes =
# SASL through the private Dovecot.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth_port}
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
# TLS (per-port levels are in master.cf).
smtpd_tls_chain_files = {key}, {crt}
smtpd_tls_loglevel = 1
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_session_cache_database =
# Only authenticated clients may send; two recipients are always refused.
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
    check_recipient_access inline:{{ {{ {reject} = 550 5.1.1 No such user here }}, {{ {defer} = 450 4.2.1 Mailbox busy, try later }} }},
    permit_sasl_authenticated, reject
"""

# No "pickup" (nothing is submitted through sendmail/maildrop) and no port 25.
MASTER_CF = """\
127.0.0.1:{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
127.0.0.1:{smtps} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
127.0.0.1:{plain} inet n - n - - smtpd
  -o syslog_name=postfix/plain
  -o smtpd_tls_security_level=may
  -o smtpd_tls_auth_only=no
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
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


def setup_postfix(top, d, ports, key, crt):
    conf = os.path.join(d, "etc")
    os.makedirs(conf)
    # The queue root belongs to root; `postfix check` makes the rest.
    os.makedirs(os.path.join(d, "queue"), 0o755)
    write(os.path.join(conf, "main.cf"), MAIN_CF.format(
        queue=os.path.join(d, "queue"), data=os.path.join(d, "data"), top=top,
        maillog=os.path.join(d, "maillog"), tls_name=TLS_NAME,
        capture_port=ports["capture"], auth_port=ports["auth"], key=key, crt=crt,
        reject=REJECT_RCPT, defer=DEFER_RCPT))
    write(os.path.join(conf, "master.cf"), MASTER_CF.format(
        submission=ports["submission"], smtps=ports["smtps"], plain=ports["plain"]))
    return conf


# ---------------------------------------------------------------- the set

class Servers:
    """Start/stop the whole set.  `state` holds everything a test needs."""

    def __init__(self, directory=None, state=None):
        self.state = state or {}
        self.dir = directory or self.state.get("dir")
        self.procs = []

    # -- start

    def start(self, wait_busy=0.0):
        """Start everything.  If 587/465 are taken (another run of the suite),
        wait up to wait_busy seconds for them to become free."""
        if os.geteuid() != 0:
            raise RuntimeError("must run as root (Postfix's master needs it)")
        deadline = time.time() + wait_busy
        while True:
            busy = [p for p in (SUBMISSION_PORT, SMTPS_PORT) if port_open(p)]
            if not busy or time.time() >= deadline:
                break
            time.sleep(1)
        if busy:
            raise RuntimeError("127.0.0.1 port(s) %s already in use (a previous run? "
                               "try: %s stop)" % (busy, sys.argv[0]))
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="smtpc-real-")
        else:
            os.makedirs(self.dir)
        # Postfix and Dovecot drop privileges: they must reach their files.
        os.chmod(self.dir, 0o755)
        d = self.dir
        ports = {"submission": SUBMISSION_PORT, "smtps": SMTPS_PORT,
                 "plain": free_port(), "auth": free_port(), "capture": free_port(),
                 "capture_auth": free_port(), "sinks": {}}
        for name in SINKS:
            ports["sinks"][name] = free_port()
        ca, key, crt = make_certs(os.path.join(d, "tls"))
        pwfile = os.path.join(d, "password")
        write(pwfile, PASSWORD + "\n", 0o600)
        pwfile2 = os.path.join(d, "password2")
        write(pwfile2, PASSWORD2 + "\n", 0o600)
        self.state = {
            "dir": d, "tls_name": TLS_NAME, "ca_file": ca,
            "user": USER, "password": PASSWORD, "password_file": pwfile,
            "user2": USER2, "password2": PASSWORD2, "password_file2": pwfile2,
            "reject_rcpt": REJECT_RCPT, "defer_rcpt": DEFER_RCPT,
            "ports": ports, "capture_dir": os.path.join(d, "capture"),
            "capture_auth_dir": os.path.join(d, "capture-auth"),
            "capture_auth_log": os.path.join(d, "capture-auth.log"),
            "postfix_config": os.path.join(d, "postfix", "etc"),
            "postfix_log": os.path.join(d, "postfix", "maillog"),
            "dovecot_config": None, "dovecot_log": os.path.join(d, "dovecot", "dovecot.log"),
            "sink_dirs": {}, "pids": {},
        }
        self._save()
        write(CURRENT, d + "\n")
        try:
            self._start_all(ca, key, crt)
        except BaseException:
            self._dump_logs()
            self.stop(keep=True)
            raise
        self._save()
        return self.state

    def _start_all(self, ca, key, crt):
        s, ports = self.state, self.state["ports"]
        self._spawn("capture", [sys.executable, os.path.join(HERE, "capture.py"),
                                "--port", str(ports["capture"]), "--dir", s["capture_dir"]])
        self._spawn("capture_auth", [sys.executable, os.path.join(HERE, "capture.py"),
                                     "--port", str(ports["capture_auth"]),
                                     "--dir", s["capture_auth_dir"], "--auth",
                                     "--log", s["capture_auth_log"]])
        self._start_sinks()
        self._start_dovecot()
        self._start_postfix(key, crt)
        want = [ports["submission"], ports["smtps"], ports["plain"], ports["auth"],
                ports["capture"], ports["capture_auth"]] + list(ports["sinks"].values())
        missing = wait_ports(want)
        if missing:
            raise RuntimeError("ports not listening after 30 s: %s" % missing)
        self._check_listeners()

    def _spawn(self, name, cmd, cwd=None):
        logf = open(os.path.join(self.dir, name + ".out"), "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             cwd=cwd or self.dir, start_new_session=True)
        logf.close()
        self.procs.append(p)
        self.state["pids"][name] = p.pid
        self._save()
        return p

    def _start_sinks(self):
        sink_user = None
        if os.geteuid() == 0:
            sink_user = "postfix"  # smtp-sink refuses to run as root without -u
        uid = pwd.getpwnam(sink_user).pw_uid if sink_user else None
        for name, flags in SINKS.items():
            dump = os.path.join(self.dir, "sink", name)
            os.makedirs(dump)
            if uid is not None:
                os.chown(dump, uid, -1)
                os.chown(os.path.dirname(dump), 0, -1)
            os.chmod(os.path.dirname(dump), 0o755)
            self.state["sink_dirs"][name] = dump
            cmd = ["smtp-sink", "-4", "-h", "sink.smtpc.test", "-t", "60",
                   "-d", dump + "/%H%M%S."] + flags
            if sink_user:
                cmd += ["-u", sink_user]
            cmd += ["127.0.0.1:%d" % self.state["ports"]["sinks"][name], "64"]
            self._spawn("sink-" + name, cmd)

    def _start_dovecot(self):
        d = os.path.join(self.dir, "dovecot")
        conf = setup_dovecot(d, self.state["ports"]["auth"], os.path.basename(self.dir))
        self.state["dovecot_config"] = conf
        self._save()
        run(["dovecot", "-c", conf])

    def _start_postfix(self, key, crt):
        pdir = os.path.join(self.dir, "postfix")
        os.makedirs(pdir)
        os.chmod(pdir, 0o755)
        conf = setup_postfix(self.dir, pdir, self.state["ports"], key, crt)
        self.state["postfix_config"] = conf
        self._save()
        # `postfix check` creates the queue directories with the right owners.
        run(["postfix", "-c", conf, "check"])
        run(["postfix", "-c", conf, "start"])

    def _check_listeners(self):
        """Every TCP listener of our processes must be on 127.0.0.1."""
        try:
            out = run(["ss", "-Hltnp"])
        except (RuntimeError, FileNotFoundError):
            return
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 4 and f[3].endswith(":25") and not f[3].startswith("127.0.0.1"):
                log("warning: something else listens on %s (not ours): %s" % (f[3], line))
        for pid in self._our_pids():
            for line in out.splitlines():
                if "pid=%d," % pid in line and "127.0.0.1:" not in line.split()[3]:
                    raise RuntimeError("our process listens off loopback: " + line)

    # -- stop

    def _our_pids(self):
        """Live pids of every process this set started, found by what marks them
        as ours (never by a bare name): the spawned sinks and capture servers,
        Postfix processes (MAIL_CONFIG is our config directory), and Dovecot's
        master (our config file) and children (our instance name)."""
        pids = set()
        for pid in self.state.get("pids", {}).values():
            cmd = proc_cmdline(pid) if pid else ""
            if pid_alive(pid) and ("smtp-sink" in cmd or "capture.py" in cmd):
                pids.add(pid)
        conf = self.state.get("postfix_config")
        dconf = self.state.get("dovecot_config")
        dtitle = "dovecot-smtpc-test-%s/" % os.path.basename(self.state.get("dir") or "-")
        for ent in os.listdir("/proc"):
            if not ent.isdigit():
                continue
            pid = int(ent)
            if pid == os.getpid() or not pid_alive(pid):
                continue
            if conf and proc_environ_has(pid, "MAIL_CONFIG=" + conf):
                pids.add(pid)
            elif dconf and (dconf in proc_cmdline(pid) or
                            proc_cmdline(pid).startswith(dtitle)):
                pids.add(pid)
        return pids

    def _wait_gone(self, timeout):
        deadline = time.time() + timeout
        while True:
            for p in self.procs:
                reap(p.pid)
            left = self._our_pids()
            if not left or time.time() > deadline:
                return left
            time.sleep(0.05)

    def stop(self, keep=False):
        """Stop every process this set started: SIGTERM, SIGKILL after 10 s."""
        s = self.state
        conf = s.get("postfix_config")
        if conf and os.path.exists(os.path.join(conf, "main.cf")):
            subprocess.run(["postfix", "-c", conf, "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        for pid in self._our_pids():
            signal_pid(pid, signal.SIGTERM)  # sinks, capture servers, Dovecot's master
        left = self._wait_gone(10)
        for pid in left:
            signal_pid(pid, signal.SIGKILL)
        if left and self._wait_gone(3):
            log("warning: processes still running after stop: %s" % sorted(self._our_pids()))
        d = s.get("dir")
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
        for name in ("postfix_log", "dovecot_log"):
            path = self.state.get(name)
            if path and os.path.exists(path):
                with open(path, errors="replace") as f:
                    log("--- %s ---\n%s" % (path, f.read()[-3000:]))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def captured(self, directory=None):
        """List of (envelope dict, message bytes) in arrival order."""
        directory = directory or self.state["capture_dir"]
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

    def wait_captured(self, count, timeout=30.0, directory=None):
        deadline = time.time() + timeout
        while True:
            got = self.captured(directory)
            if len(got) >= count or time.time() > deadline:
                return got
            time.sleep(0.1)

    def sink_dumps(self, name):
        """Contents (bytes) of the smtp-sink dump files of one sink, oldest first."""
        d = self.state["sink_dirs"][name]
        files = [os.path.join(d, f) for f in os.listdir(d)]
        files.sort(key=os.path.getmtime)
        out = []
        for path in files:
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def log_size(self):
        try:
            return os.path.getsize(self.state["postfix_log"])
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.state["postfix_log"], "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def load(directory=None):
    if directory is None:
        with open(CURRENT) as f:
            directory = f.read().strip()
    with open(os.path.join(directory, "state.json")) as f:
        return Servers(state=json.load(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start")
    p.add_argument("--dir", help="directory to create (default: a fresh temp dir)")
    p = sub.add_parser("stop")
    p.add_argument("dir", nargs="?")
    p.add_argument("--keep", action="store_true", help="keep the directory")
    p = sub.add_parser("status")
    p.add_argument("dir", nargs="?")
    a = ap.parse_args()
    try:
        if a.cmd == "start":
            s = Servers(a.dir)
            s.start()
            print(json.dumps(s.state, indent=1))
        elif a.cmd == "stop":
            load(a.dir).stop(keep=a.keep)
        else:
            print(json.dumps(load(a.dir).state, indent=1))
    except (RuntimeError, OSError) as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
