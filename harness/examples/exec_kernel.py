#!/usr/bin/env python3
"""The Linux kernel as an exec target (docs/exec-protocol.md, version 1).

tcpconform starts this program inside the namespace of an exec target
(`--target exec:"python3 harness/examples/exec_kernel.py"`). It makes the
namespace's kernel the stack under test: the stack's address
($TCPCONFORM_ADDR, 198.51.100.1 or 2001:db8:1::1) is added to `lo`, so the
packets the harness forwards towards it are delivered locally instead, and
every socket call of the script runs on a real kernel socket. The result
is the `linux` target's, driven through the protocol path; the TUN device
on descriptor 3 is not used.

The conventions are the `linux` target's (harness/src/run/linux.rs): script
fds from 3 up (the lowest free one), bind/listen/connect use
$TCPCONFORM_ADDR:$TCPCONFORM_PORT, connect goes to
$TCPCONFORM_PEER_ADDR:$TCPCONFORM_PEER_PORT, written data is A..Z repeated,
every real socket is non-blocking and a call that would block on a socket
the script keeps blocking answers would_block (a blocking write made again
continues where it stopped).
"""

import errno
import fcntl
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys

VERSION = 1
O_NONBLOCK = os.O_NONBLOCK
WRITE_CHUNK = 64 * 1024
# Python names 95 ENOTSUP and 11 EAGAIN; scripts write these.
PREFERRED = {errno.EOPNOTSUPP: "EOPNOTSUPP", errno.EAGAIN: "EAGAIN"}

OPTS = {
    "SO_REUSEADDR": (socket.SOL_SOCKET, socket.SO_REUSEADDR),
    "SO_RCVBUF": (socket.SOL_SOCKET, socket.SO_RCVBUF),
    "SO_SNDBUF": (socket.SOL_SOCKET, socket.SO_SNDBUF),
    "SO_LINGER": (socket.SOL_SOCKET, socket.SO_LINGER),
    "SO_ERROR": (socket.SOL_SOCKET, socket.SO_ERROR),
    "TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
    "TCP_MAXSEG": (socket.IPPROTO_TCP, socket.TCP_MAXSEG),
}
SHUT = {"SHUT_RD": socket.SHUT_RD, "SHUT_WR": socket.SHUT_WR, "SHUT_RDWR": socket.SHUT_RDWR}


def errname(e):
    return PREFERRED.get(e, errno.errorcode.get(e, "EUNKNOWN"))


def err(e):
    return {"ret": -1, "errno": errname(e)}


def payload(start, end):
    return bytes(65 + (i % 26) for i in range(start, end))


class Sock:
    def __init__(self, s, bound=False):
        self.s = s
        self.nonblock = False  # as the script sees it; the real one always is
        self.bound = bound
        self.written = None  # (len, sent) of a pending blocking write


class Shim:
    def __init__(self, env):
        self.v6 = env["TCPCONFORM_IP_VERSION"] == "6"
        self.family = socket.AF_INET6 if self.v6 else socket.AF_INET
        self.local = (env["TCPCONFORM_ADDR"], int(env["TCPCONFORM_PORT"]))
        self.peer = (env["TCPCONFORM_PEER_ADDR"], int(env["TCPCONFORM_PEER_PORT"]))
        self.fds = {}

    def lowest_free(self):
        fd = 3
        while fd in self.fds:
            fd += 1
        return fd

    def block(self, sock, e):
        return err(e) if sock.nonblock else {"would_block": True}

    def bind(self, sock):
        try:
            sock.s.bind(self.local)
        except OSError as e:
            return err(e.errno)
        sock.bound = True
        return {"ret": 0}

    def handle(self, req):
        call = req.get("call")
        if call == "socket":
            s = socket.socket(self.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            s.setblocking(False)
            fd = self.lowest_free()
            self.fds[fd] = Sock(s)
            return {"ret": fd}
        if call == "poll":
            return self.poll(req["fds"])
        if call == "sysctl":
            return self.sysctl(req["name"], req["value"])
        fd = req.get("fd")
        if call == "close":
            sock = self.fds.pop(fd, None)
            if sock is None:
                return err(errno.EBADF)
            try:
                os.close(sock.s.detach())
            except OSError as e:
                return err(e.errno)
            return {"ret": 0}
        sock = self.fds.get(fd)
        if sock is None:
            return err(errno.EBADF)
        method = getattr(self, "call_" + str(call), None)
        if method is None:
            return {"not_applicable": "call %r is not known to exec_kernel.py" % call}
        return method(sock, req)

    def call_bind(self, sock, req):
        return self.bind(sock)

    def implicit_bind(self, sock):
        """listen and connect bind first, like the linux target; None when bound."""
        if sock.bound:
            return None
        r = self.bind(sock)
        if r["ret"] == 0:
            return None
        r["note"] = "implicit bind to %s:%d failed" % self.local
        return r

    def call_listen(self, sock, req):
        r = self.implicit_bind(sock)
        if r is not None:
            return r
        backlog = max(0, min(req["backlog"], 2**31 - 1))
        try:
            sock.s.listen(backlog)
        except OSError as e:
            return err(e.errno)
        return {"ret": 0}

    def call_accept(self, sock, req):
        try:
            conn, _ = sock.s.accept()
        except BlockingIOError:
            return self.block(sock, errno.EAGAIN)
        except OSError as e:
            return err(e.errno)
        conn.setblocking(False)
        fd = self.lowest_free()
        self.fds[fd] = Sock(conn, bound=True)
        return {"ret": fd}

    def call_connect(self, sock, req):
        r = self.implicit_bind(sock)
        if r is not None:
            return r
        e = sock.s.connect_ex(self.peer)
        if e == 0:
            return {"ret": 0}
        if e in (errno.EINPROGRESS, errno.EALREADY):
            return self.block(sock, e)
        return err(e)

    def call_write(self, sock, req):
        length = req["len"]
        sent = 0
        if sock.written and sock.written[0] == length:
            sent = sock.written[1]
        sock.written = None
        while True:
            chunk = payload(sent, min(length, sent + WRITE_CHUNK))
            try:
                n = sock.s.send(chunk, socket.MSG_NOSIGNAL)
            except InterruptedError:
                continue
            except BlockingIOError:
                if not sock.nonblock:
                    sock.written = (length, sent)
                    return {"would_block": True}
                return {"ret": sent} if sent > 0 else err(errno.EAGAIN)
            except OSError as e:
                return {"ret": sent} if sent > 0 else err(e.errno)
            sent += n
            if sent >= length:
                return {"ret": sent}

    def call_read(self, sock, req):
        try:
            data = sock.s.recv(req["len"])
        except BlockingIOError:
            return self.block(sock, errno.EAGAIN)
        except OSError as e:
            return err(e.errno)
        return {"ret": len(data)}

    def call_shutdown(self, sock, req):
        try:
            sock.s.shutdown(SHUT[req["how"]])
        except OSError as e:
            return err(e.errno)
        return {"ret": 0}

    def call_setsockopt(self, sock, req):
        level, name = OPTS[req["opt"]]
        value = req["value"]
        try:
            if req["opt"] == "SO_LINGER":
                raw = struct.pack("ii", value["l_onoff"], value["l_linger"])
                sock.s.setsockopt(level, name, raw)
            else:
                if not -(2**31) <= value < 2**31:
                    return dict(err(errno.EINVAL), note="%s = %d does not fit an int" % (req["opt"], value))
                sock.s.setsockopt(level, name, value)
        except OSError as e:
            return err(e.errno)
        return {"ret": 0}

    def call_getsockopt(self, sock, req):
        opt = req["opt"]
        level, name = OPTS[opt]
        try:
            if opt == "SO_LINGER":
                onoff, secs = struct.unpack("ii", sock.s.getsockopt(level, name, 8))
                value = {"l_onoff": int(onoff != 0), "l_linger": secs}
            else:
                v = sock.s.getsockopt(level, name)
                value = (errname(v) if v else 0) if opt == "SO_ERROR" else v
        except OSError as e:
            return err(e.errno)
        return {"ret": 0, "value": value}

    def call_fcntl(self, sock, req):
        fd = sock.s.fileno()
        try:
            if req["cmd"] == "F_GETFL":
                flags = fcntl.fcntl(fd, fcntl.F_GETFL) & ~O_NONBLOCK
                return {"ret": flags | (O_NONBLOCK if sock.nonblock else 0)}
            fcntl.fcntl(fd, fcntl.F_SETFL, req["flags"] | O_NONBLOCK)
        except OSError as e:
            return err(e.errno)
        sock.nonblock = bool(req["flags"] & O_NONBLOCK)
        return {"ret": 0}

    def poll(self, entries):
        p = select.poll()
        for e in entries:
            sock = self.fds.get(e["fd"])
            if sock is not None:
                p.register(sock.s.fileno(), e["events"] & 0xFFFF)
        ready = dict(p.poll(0))
        revents = []
        for e in entries:
            sock = self.fds.get(e["fd"])
            if sock is None:
                revents.append(select.POLLNVAL)
            else:
                revents.append(ready.get(sock.s.fileno(), 0) & 0xFFFF)
        return {"ret": sum(1 for r in revents if r), "revents": revents}

    def sysctl(self, name, value):
        # The harness only sends names local to a network namespace, and
        # /proc/sys/net belongs to the namespace this process runs in.
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except FileNotFoundError:
            return {"not_applicable": "sysctl %s does not exist in this kernel" % name}
        except OSError as e:
            return {"not_applicable": "the kernel rejected %s=%s (%s)" % (name, value, errname(e.errno))}
        return {"ret": 0}


def take_stack_address(env):
    """Makes the kernel of the namespace own the stack's address."""
    ip = shutil.which("ip")
    if ip is None:
        sys.exit("exec_kernel.py: the iproute2 `ip` tool is not on PATH")
    v6 = env["TCPCONFORM_IP_VERSION"] == "6"
    cmd = [ip]
    if v6:
        cmd += ["-6", "addr", "add", env["TCPCONFORM_ADDR"] + "/128", "dev", "lo", "nodad"]
    else:
        cmd += ["addr", "add", env["TCPCONFORM_ADDR"] + "/32", "dev", "lo"]
    subprocess.run(cmd, check=True)


def main():
    env = os.environ
    if env.get("TCPCONFORM_PROTOCOL") != str(VERSION):
        sys.exit("exec_kernel.py speaks protocol %d, the harness %s" % (VERSION, env.get("TCPCONFORM_PROTOCOL")))
    take_stack_address(env)
    shim = Shim(env)
    out = sys.stdout
    out.write(json.dumps({"v": VERSION, "hello": "exec_kernel.py: Linux %s" % os.uname().release}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        answer = shim.handle(req)
        answer["id"] = req["id"]
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
