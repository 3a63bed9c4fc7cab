#!/usr/bin/env python3
"""A scripted recursive resolver for the DNS backend tests (stdlib only).

Serves UDP and TCP on 127.0.0.1 (and ::1 when possible) on one random port,
plus a UDP port that reads queries and never answers. Prints one line
"PORT SILENT_PORT HAVE_V6" on stdout, then serves until killed or until its
stdin reaches end of file (the test process went away).

Answers come from the table below, under test. Every answer carries AD (as
from a validating resolver) unless the query name starts with "insecure".
Special names:
  drop.test.      never answered (timeouts)
  servfail.test.  SERVFAIL without extended error
  bogus.test.     SERVFAIL with EDE 6 (dnssec-bogus) and text
  expired.test.   SERVFAIL with EDE 7 (signature-expired) and text
  refused.test.   REFUSED
  big.test.       40 TXT records: truncated (TC) over UDP, whole over TCP
  badid.test.     over UDP, first an answer with a wrong ID, then the right one
  badq.test.      over UDP, first an answer for another question, then the right one
  flags.test.     TXT describing the query: "rd=1 ad=1 cd=0 edns=1 do=1"
"""
import selectors
import socket
import struct
import sys
import threading

A, CNAME, MX, TXT, AAAA, TLSA, OPT = 1, 5, 15, 16, 28, 52, 41
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5

TABLE = {
    ("a.test.", A): ["192.0.2.1", "192.0.2.2"],
    ("a.test.", AAAA): ["2001:db8::1"],
    ("insecure.test.", A): ["192.0.2.3"],
    ("mx.test.", MX): [(10, "Mail.Test."), (20, "mx2.test.")],
    ("nullmx.test.", MX): [(0, ".")],
    ("txt.test.", TXT): [[b"v=STSv1; ", b"id=1"], [b"other"]],
    ("_25._tcp.mail.test.", TLSA): [(3, 1, 1, bytes(range(32)))],
    ("alias.test.", CNAME): ["alias2.test."],
    ("alias2.test.", CNAME): ["a.test."],
    ("dangling.test.", CNAME): ["nowhere.test."],
    ("loop1.test.", CNAME): ["loop2.test."],
    ("loop2.test.", CNAME): ["loop1.test."],
    ("big.test.", TXT): [[bytes([0x61 + i % 26]) * 100] for i in range(40)],
}
EDE = {
    "bogus.test.": (6, "validation failure <bogus.test. A IN>: no signatures"),
    "expired.test.": (7, "signature expired"),
}


def enc_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def enc_rdata(qtype, value):
    if qtype == A:
        return socket.inet_pton(socket.AF_INET, value)
    if qtype == AAAA:
        return socket.inet_pton(socket.AF_INET6, value)
    if qtype == CNAME:
        return enc_name(value)
    if qtype == MX:
        return struct.pack("!H", value[0]) + enc_name(value[1])
    if qtype == TXT:
        return b"".join(bytes([len(s)]) + s for s in value)
    if qtype == TLSA:
        return bytes(value[:3]) + value[3]
    raise ValueError(qtype)


def enc_rr(name, qtype, value):
    rdata = enc_rdata(qtype, value)
    return enc_name(name) + struct.pack("!HHIH", qtype, 1, 300, len(rdata)) + rdata


def parse_query(msg):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    pos, labels = 12, []
    while msg[pos]:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    qname_wire = msg[12:pos + 1]
    qtype, qclass = struct.unpack("!HH", msg[pos + 1:pos + 5])
    pos += 5
    q = {"id": qid, "flags": flags, "qname": ".".join(labels).lower() + ".",
         "question": qname_wire + struct.pack("!HH", qtype, qclass), "qtype": qtype,
         "edns": False, "do": False, "size": 512}
    for _ in range(ar):  # queries carry at most an OPT record
        if msg[pos] != 0:
            break
        rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", msg[pos + 1:pos + 11])
        if rtype == OPT:
            q["edns"], q["do"], q["size"] = True, bool(ttl & 0x8000), max(rclass, 512)
        pos += 11 + rdlen
    return q


def resolve(q):
    """(rcode, answer records) following CNAMEs like a recursive resolver."""
    name, qtype, records = q["qname"], q["qtype"], []
    if name == "flags.test." and qtype == TXT:
        f = q["flags"]
        text = "rd=%d ad=%d cd=%d edns=%d do=%d" % (
            f >> 8 & 1, f >> 5 & 1, f >> 4 & 1, q["edns"], q["do"])
        return NOERROR, [enc_rr(name, TXT, [text.encode()])]
    for _ in range(8):
        if (name, qtype) in TABLE:
            return NOERROR, records + [enc_rr(name, qtype, v) for v in TABLE[(name, qtype)]]
        if (name, CNAME) in TABLE and qtype != CNAME:
            target = TABLE[(name, CNAME)][0]
            records.append(enc_rr(name, CNAME, target))
            name = target
            continue
        break
    exists = any(n == name for n, _ in TABLE) or name in ("flags.test.",)
    return (NOERROR if exists else NXDOMAIN), records


def answer(q, tcp):
    name = q["qname"]
    if name == "drop.test.":
        return None
    ede = EDE.get(name)
    if ede or name == "servfail.test.":
        rcode, records = SERVFAIL, []
    elif name == "refused.test.":
        rcode, records = REFUSED, []
    else:
        rcode, records = resolve(q)
    flags = 0x8000 | 0x0080 | (q["flags"] & 0x0100) | rcode  # QR RA RD
    if rcode in (NOERROR, NXDOMAIN) and not name.startswith("insecure"):
        flags |= 0x0020  # AD
    opt = b""
    if q["edns"]:
        options = b""
        if ede:
            data = struct.pack("!H", ede[0]) + ede[1].encode()
            options = struct.pack("!HH", 15, len(data)) + data
        opt = b"\0" + struct.pack("!HHIH", OPT, 1232, 0x8000 if q["do"] else 0,
                                  len(options)) + options
    body = b"".join(records)
    msg = struct.pack("!HHHHHH", q["id"], flags, 1, len(records), 0, 1 if opt else 0)
    msg += q["question"] + body + opt
    if not tcp and len(msg) > q["size"]:
        # RFC 2181 9: set TC and leave the answer out; the client retries over TCP.
        msg = struct.pack("!HHHHHH", q["id"], flags | 0x0200, 1, 0, 0, 1 if opt else 0)
        msg += q["question"] + opt
    return msg


def serve_tcp_conn(conn):
    with conn:
        while True:
            hdr = conn.recv(2, socket.MSG_WAITALL)
            if len(hdr) < 2:
                return
            msg = conn.recv(struct.unpack("!H", hdr)[0], socket.MSG_WAITALL)
            try:
                resp = answer(parse_query(msg), True)
            except (IndexError, struct.error):
                return
            if resp is not None:
                conn.sendall(struct.pack("!H", len(resp)) + resp)


def on_udp(sock):
    msg, peer = sock.recvfrom(65535)
    try:
        q = parse_query(msg)
    except (IndexError, struct.error):
        return
    resp = answer(q, False)
    if resp is None:
        return
    if q["qname"] in ("badid.test.", "badq.test."):
        sock.sendto(spoof(q), peer)
    sock.sendto(resp, peer)


def spoof(q):
    """An answer with data that must not be accepted: wrong ID, or the
    right ID for another question."""
    qid, name = q["id"], q["qname"]
    question = q["question"]
    if name == "badid.test.":
        qid = (qid + 1) & 0xFFFF
    else:
        question = enc_name("bado.test.") + question[-4:]
    rr = enc_rr(name, A, "192.0.2.66")
    return struct.pack("!HHHHHH", qid, 0x81A0, 1, 1, 0, 0) + question + rr


def bind_pair(family, host, port):
    u = socket.socket(family, socket.SOCK_DGRAM)
    t = socket.socket(family, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        u.bind((host, port))
        t.bind((host, u.getsockname()[1]))
        t.listen(16)
        return u, t
    except OSError:
        u.close()
        t.close()
        return None


def main():
    for _ in range(50):
        v4 = bind_pair(socket.AF_INET, "127.0.0.1", 0)
        if v4:
            break
    else:
        sys.exit("fakedns: cannot bind")
    port = v4[0].getsockname()[1]
    v6 = bind_pair(socket.AF_INET6, "::1", port) if socket.has_ipv6 else None
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    sel = selectors.DefaultSelector()
    for pair in (v4, v6):
        if pair:
            sel.register(pair[0], selectors.EVENT_READ, "udp")
            sel.register(pair[1], selectors.EVENT_READ, "tcp")
    sel.register(silent, selectors.EVENT_READ, "silent")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    print(port, silent.getsockname()[1], 1 if v6 else 0, flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "udp":
                on_udp(key.fileobj)
            elif key.data == "tcp":
                conn, _ = key.fileobj.accept()
                threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()
            elif key.data == "silent":
                key.fileobj.recvfrom(65535)
            elif not sys.stdin.buffer.read1(4096):
                return


if __name__ == "__main__":
    main()
