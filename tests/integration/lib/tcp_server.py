# SPDX-License-Identifier: Apache-2.0
"""tcp_server.py - the host's end of the virtio-net tests' TCP transfers (vhost_user_net.sh,
linux_vmm_net.sh), run inside the test's network namespace. Serves one connection on ADDR:PORT.

    python3 tcp_server.py recv ADDR PORT SIZE PATH
        takes up to SIZE bytes, hashing them on the way; writes "BYTES SHA256\n" to PATH at the
        end, and the count so far to PATH.progress at every MiB (the test watches it).
    python3 tcp_server.py send ADDR PORT 0 PATH
        sends the bytes of the file PATH, then shuts down its sending side.
"""
import hashlib
import socket
import sys

mode, addr, path = sys.argv[1], sys.argv[2], sys.argv[5]
port, size = int(sys.argv[3]), int(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
c, _ = s.accept()
if mode == "recv":
    h, got, mark = hashlib.sha256(), 0, 0
    while got < size:
        b = c.recv(min(1 << 20, size - got))
        if not b:
            break
        h.update(b)
        got += len(b)
        if got >= mark:
            with open(path + ".progress", "w") as f:
                f.write(str(got))
            mark = got + (1 << 20)
    with open(path, "w") as f:
        f.write("%d %s\n" % (got, h.hexdigest()))
else:
    with open(path, "rb") as f:
        c.sendall(f.read())
    c.shutdown(socket.SHUT_WR)
c.close()
