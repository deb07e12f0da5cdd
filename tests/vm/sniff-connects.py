#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""tests/vm/sniff-connects.py PORT - what an NVMe/TCP host puts on the wire.

Watches the guest's loopback (AF_PACKET) for TCP connections to PORT and
prints, for each, one line once the host has sent its ICReq and the first
capsule (the Fabrics Connect command) on it:

  conn SRC SPORT tos 0xNN icreq hdgst H ddgst D connect qid Q sqsize S cattr 0xNN kato K flags 0xNN

tos is the IPv4 TOS (IPv6 traffic class) of the ICReq's packet; hdgst and
ddgst the digests the ICReq asks for; qid, sqsize, cattr (bit 2: SQ flow
control disabled) and kato (ms) are the Connect command's fields; flags are
the capsule PDU's (bit 0 HDGSTF, bit 1 DDGSTF: digests in use). Prints
`ready` once it listens, and runs until killed. The tests/vm/6N-our-host-*
tests use it to check that a host's fabrics options reach the wire, whichever
target is on the other end.
"""
import mmap
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
PACKET_HOST = 0
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V2 = 1
TP_STATUS_USER = 1
# The ring: 4096 frames of 4 KiB (each packet's first 4 KiB less headers;
# the tests need a connection's first 200 bytes).
FRAME = 4096
BLOCK = 1 << 20
NBLOCKS = 16
NFRAMES = BLOCK // FRAME * NBLOCKS


def ring(s):
    """Gives the packet socket s a ring (TPACKET_V2) and returns it (mmap).

    A packet socket without a ring holds on to the packet itself, whose
    pages the sender may have written anew by the time it is read (an NVMe/TCP
    host reuses a command's PDU buffer for the next command): what would be read
    then is not what went on the wire. The ring (TPACKET_V2) copies each
    packet as it is captured: on lo, before the receiver sees it.
    """
    s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
    s.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", BLOCK, NBLOCKS, FRAME, NFRAMES))
    return mmap.mmap(s.fileno(), BLOCK * NBLOCKS, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def packets(s, ring):
    """The packets captured on s, as (data, pkttype), in order."""
    i = 0
    while True:
        off = i * FRAME
        # struct tpacket2_hdr, then struct sockaddr_ll at 32.
        if not struct.unpack_from("I", ring, off)[0] & TP_STATUS_USER:
            select.select([s], [], [])
            continue
        snaplen, mac = struct.unpack_from("IH", ring, off + 8)
        pkttype = ring[off + 32 + 10]
        data = ring[off + mac:off + mac + snaplen]
        struct.pack_into("I", ring, off, 0)  # back to the kernel
        i = (i + 1) % NFRAMES
        yield data, pkttype


def main():
    port = int(sys.argv[1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    capture = packets(s, ring(s))
    s.bind(("lo", 0))
    print("ready", flush=True)
    conns = {}  # (src, sport) -> what the host sent so far
    for data, pkttype in capture:
        # On lo every packet is seen leaving and arriving: keep one.
        if pkttype != PACKET_HOST or len(data) < 14:
            continue
        ethertype = struct.unpack_from("!H", data, 12)[0]
        if ethertype == 0x0800:
            ihl = (data[14] & 0x0F) * 4
            if data[23] != 6:
                continue
            tos = data[15]
            src = socket.inet_ntop(socket.AF_INET, data[26:30])
            l4 = 14 + ihl
            end = 14 + struct.unpack_from("!H", data, 16)[0]
        elif ethertype == 0x86DD:
            if data[20] != 6:  # no extension headers on this path
                continue
            tos = ((data[14] & 0x0F) << 4) | (data[15] >> 4)
            src = socket.inet_ntop(socket.AF_INET6, data[22:38])
            l4 = 14 + 40
            end = l4 + struct.unpack_from("!H", data, 18)[0]
        else:
            continue
        sport, dport, seq = struct.unpack_from("!HHI", data, l4)
        if dport != port:
            continue
        key = (src, sport)
        tcpflags = data[l4 + 13]
        if tcpflags & 0x02:  # SYN: a new connection
            conns[key] = {"next": (seq + 1) & 0xFFFFFFFF, "buf": b"", "tos": None, "done": False}
            continue
        c = conns.get(key)
        start = l4 + (data[l4 + 12] >> 4) * 4
        if c is None or c["done"] or end <= start:
            continue
        if seq != c["next"]:
            if (seq - c["next"]) & 0x80000000:
                continue  # a retransmission of bytes already seen
            c["done"] = True
            print("conn %s %d: bytes lost (the sniffer fell behind)" % key, flush=True)
            continue
        if c["tos"] is None:
            c["tos"] = tos
        # The payload as captured (at most a frame's worth: enough).
        c["buf"] += data[start:end]
        c["next"] = (c["next"] + end - start) & 0xFFFFFFFF
        buf = c["buf"]
        if len(buf) < 128 + 72:
            continue
        c["done"] = True
        # The first bytes a host sends are its ICReq (type 0, hlen 128), then
        # a command capsule (type 4, hlen 72) with the Connect command
        # (opcode 0x7f, fctype 1).
        if buf[0] != 0x00 or buf[2] != 128:
            print("conn %s %d: no ICReq first: %s" % (src, sport, buf[:16].hex()), flush=True)
            continue
        cap = buf[128:]
        if cap[0] != 0x04 or cap[8] != 0x7F or cap[12] != 0x01:
            print("conn %s %d: no Connect capsule after the ICReq: %s" % (src, sport, cap[:16].hex()), flush=True)
            continue
        dgst = buf[11]
        sqe = cap[8:72]
        qid, sqsize = struct.unpack_from("<HH", sqe, 42)
        cattr = sqe[46]
        kato = struct.unpack_from("<I", sqe, 48)[0]
        print(
            "conn %s %d tos 0x%02x icreq hdgst %d ddgst %d connect qid %d sqsize %d cattr 0x%02x kato %d flags 0x%02x"
            % (src, sport, c["tos"], dgst & 1, (dgst >> 1) & 1, qid, sqsize, cattr, kato, cap[1]),
            flush=True,
        )


if __name__ == "__main__":
    main()
