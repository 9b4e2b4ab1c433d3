#!/usr/bin/env python3
"""A scratch-register device written from docs/protocol.md and proto/plexus.proto alone (no SDK).

One IO region "regs" (0x100 bytes, 4-byte accesses), one IRQ line "done":
  0x00 ID        read-only, the property "ident" (default 0x50594456, "PYDV")
  0x04 SCRATCH   read/write
  0x08 DMA_ADDR  low 32 bits of a guest physical address
  0x0c DMA_ADDR  high 32 bits
  0x10 DMA_LEN   bytes to write (<= max_dma_len)
  0x14 DMA_GO    write: DMA-by-message write of bytes (i * 7 + seed) & 0xff, seed = the value written,
                 then raise IRQ line 0
  0x18 STATUS    MemTx result of the last DMA (0 = OK)
  0x1c IRQ_ACK   write: lower IRQ line 0
  0x20 BASE      guest physical base of "regs" (low 32 bits) from Config.placement
  0x24 RAM       number of RAM grants in Config (all FD_NONE: this device does not announce CAP_RAM_FDS)
  0x28 PERIOD    write p: a tick every p ns of virtual time from now (0: none); with --lockstep only
  0x2c TICKS     ticks so far; IRQ line 0 rises at every 4th tick and drops two ticks later
Anything else is a decode error. Usage: pydev.py [--ring] [--lockstep] [--done FILE] (FILE gets "goodbye"
after a clean shutdown). With --ring the device offers CAP_RING and, when the hub's Config says so, carries on
over the shared-memory ring of docs/protocol.md section 12 (reading the hub's fixed-layout frames, sending
protobuf, and ringing the hub's bell after every frame). With --lockstep it offers CAP_LOCKSTEP and keeps its
ticks on the time the hub grants it (section 8, "Lockstep").
"""
import collections
import mmap
import os
import select
import socket
import struct
import sys

import zmq

import plexus_pb2 as P

REGION_SIZE = 0x100
CAP_RING = 32
CAP_LOCKSTEP = 64
NEVER = (1 << 64) - 1


class Ring:
    """The device's end of the hub's shared-memory ring (docs/protocol.md section 12)."""

    def __init__(self, fds):
        self.mem, self.hub_bell, self.dev_bell = fds
        self.m = mmap.mmap(self.mem, os.fstat(self.mem).st_size)
        # The shared words through a view of 8-byte items: each is read and written by one 8-byte move (struct's
        # pack_into and unpack_from go byte by byte, and the hub could see half of a new index).
        self.words = memoryview(self.m).cast("Q")
        magic, version, slot, self.n = struct.unpack_from("<IIII", self.m, 0)
        off0, off1 = struct.unpack_from("<QQ", self.m, 16)
        if magic != 0x52584C50 or version != 1 or slot != 64:
            raise SystemExit("pydev: not a plexus ring (magic %#x version %d slot %d)" % (magic, version, slot))
        self.rx_slots, self.tx_slots = off0, off1     # ring 0 carries hub -> device, ring 1 device -> hub
        self.rx_tail = self.u64(256)
        self.tx_head = self.u64(320)
        self.frame = b""

    def u64(self, off):
        return self.words[off // 8]

    def put64(self, off, v):
        self.words[off // 8] = v

    def ring_hub(self):
        # Always ring: a spurious bell is harmless, and Python has no fence to make the sleep-word check safe.
        os.write(self.hub_bell, struct.pack("<Q", 1))

    def wait_bell(self):
        self.put64(128, 1)                           # the device sleeps (a 4-byte word; the rest is padding)
        select.select([self.dev_bell], [], [], 0.001)  # a missed bell costs at most a millisecond
        self.put64(128, 0)
        try:
            os.read(self.dev_bell, 8)
        except BlockingIOError:
            pass

    def send(self, payload):
        n = self.n
        piece_max = n // 4 * 64 - 8
        off = 0
        while True:
            piece = payload[off:off + piece_max]
            off += len(piece)
            more = off < len(payload)
            need = (8 + len(piece) + 63) // 64
            pos = self.tx_head % n
            pad = n - pos if need > n - pos else 0
            while n - (self.tx_head - self.u64(384)) < need + pad:
                self.wait_bell()
            if pad:
                struct.pack_into("<II", self.m, self.tx_slots + pos * 64, 0, 2)
                self.tx_head += pad
                pos = 0
            base = self.tx_slots + pos * 64
            struct.pack_into("<II", self.m, base, len(piece), 1 if more else 0)
            self.m[base + 8:base + 8 + len(piece)] = piece
            self.tx_head += need
            self.put64(320, self.tx_head)
            self.ring_hub()
            if not more:
                return

    def recv(self):
        """The next whole frame from the hub (blocking)."""
        n = self.n
        while True:
            head = self.u64(192)
            if head == self.rx_tail:
                self.wait_bell()
                continue
            pos = self.rx_tail % n
            base = self.rx_slots + pos * 64
            length, flags = struct.unpack_from("<II", self.m, base)
            if flags & 2:
                self.rx_tail += n - pos
            else:
                self.frame += bytes(self.m[base + 8:base + 8 + length])
                self.rx_tail += (8 + length + 63) // 64
            self.put64(256, self.rx_tail)
            if not flags & 3:
                frame, self.frame = self.frame, b""
                return frame


def decode_fixed(b):
    """A fixed-layout frame from the hub (first byte 0) as an Envelope."""
    kind, a, u, now = struct.unpack_from("<xBHIQ", b, 0)
    if kind == 1:
        seq, addr = struct.unpack_from("<QQ", b, 16)
        return P.Envelope(now_ns=now, read=P.MmioRead(seq=seq, region=u, addr=addr, size=a))
    if kind == 3:
        seq, addr, data = struct.unpack_from("<QQQ", b, 16)
        return P.Envelope(now_ns=now, write=P.MmioWrite(seq=seq, region=u, addr=addr, size=a & 0x7FFF, data=data,
                                                        posted=bool(a & 0x8000)))
    if kind == 6:
        (seq,) = struct.unpack_from("<Q", b, 16)
        return P.Envelope(now_ns=now, dma_reply=P.DmaReply(seq=seq, result=a, data=bytes(b[24:24 + u])))
    raise SystemExit("pydev: fixed-layout frame of type %d from the hub" % kind)


class Device:
    def __init__(self, endpoint, ring=False, lockstep=False):
        self.want_ring = ring
        self.lockstep = lockstep
        self.ring = None
        self.now = 0
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PAIR)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.connect(endpoint)
        self.pending = collections.deque()   # hub messages that arrived while waiting for a DmaReply
        self.dma_seq = 0
        self.max_dma_len = 0
        self.ident = 0x50594456
        self.reset()

    def reset(self):
        self.scratch = 0
        self.dma_addr = 0
        self.dma_len = 0
        self.status = 0
        self.irq_level = 0
        self.period = 0
        self.ticks = 0
        self.next_tick = 0

    def send(self, **kw):
        frame = P.Envelope(**kw).SerializeToString()
        if self.ring:
            self.ring.send(frame)
        else:
            self.sock.send(frame)

    def recv(self):
        if self.ring:
            frame = self.ring.recv()
            if frame[:1] == b"\0":
                return decode_fixed(frame)
        else:
            frame = self.sock.recv()
        env = P.Envelope()
        env.ParseFromString(frame)
        return env

    def move_to_ring(self):
        """Config.ring: the ring's three descriptors are the first packet on the fd socket."""
        fd = int(os.environ["PLEXUS_FD_SOCKET"])
        self.fdsock = socket.socket(fileno=fd)
        _, fds, _, _ = socket.recv_fds(self.fdsock, 16, 3)
        if len(fds) != 3:
            raise SystemExit("pydev: expected 3 ring descriptors, got %d" % len(fds))
        self.ring = Ring(fds)

    def log(self, level, text):
        self.send(log=P.Log(level=level, text=text))

    def set_irq(self, level, at_ns=0):
        if level != self.irq_level:
            self.irq_level = level
            self.send(irq=P.Irq(line=0, op=P.IRQ_SET, level=level, at_ns=at_ns))

    def next_event(self):
        return self.next_tick if self.period else NEVER

    def grant(self, until):
        """TimeGrant: do the ticks due up to `until` (lines stamped with their time), then say when the next is."""
        while self.period and self.next_tick <= until:
            self.ticks += 1
            if self.ticks % 4 == 0:
                self.set_irq(1, self.next_tick)
            elif self.ticks % 4 == 2:
                self.set_irq(0, self.next_tick)
            self.next_tick += self.period
        self.now = until
        self.send(time_reached=P.TimeReached(now_ns=until, next_event_ns=self.next_event()))

    def dma_write(self, addr, data):
        self.dma_seq += 1
        seq = self.dma_seq
        self.send(dma=P.DmaRequest(seq=seq, addr=addr, len=len(data), write=True, data=data))
        while True:
            env = self.recv()
            if env.WhichOneof("msg") == "dma_reply" and env.dma_reply.seq == seq:
                return env.dma_reply.result
            self.pending.append(env)     # handled after the DMA completes, in order

    # --- handshake -------------------------------------------------------------------------------------------
    def handshake(self):
        caps = P.CAP_DMA_MESSAGE | (CAP_RING if self.want_ring and os.environ.get("PLEXUS_FD_SOCKET") else 0)
        if self.lockstep:
            caps |= CAP_LOCKSTEP
        self.send(hello=P.Hello(major=1, minor=0, capabilities=caps,
                                name=os.environ.get("PLEXUS_DEVICE_NAME", ""), model="plexus,py-scratch",
                                pid=os.getpid()))
        rules = P.AccessRules(min_access_size=4, max_access_size=4)
        self.send(declare=P.Declare(
            regions=[P.RegionDecl(name="regs", size=REGION_SIZE, kind=P.REGION_IO, endianness=P.LITTLE,
                                  valid=rules, impl=rules, has_read=True, has_write=True)],
            irqs=["done"],
            props=[P.PropDecl(name="ident", default_value="0x50594456", has_default=True,
                              description="value of the ID register")]))
        hello = None
        while True:
            env = self.recv()
            kind = env.WhichOneof("msg")
            if kind == "hello":
                hello = env.hello
                if hello.major != 1:
                    raise SystemExit("hub speaks protocol %d, this device 1" % hello.major)
            elif kind == "config":
                if hello is None:
                    raise SystemExit("Config before Hello")
                return self.configure(env.config)
            elif kind == "error":
                raise SystemExit("hub refused the device: %s" % env.error.text)
            # anything else before Config is not expected; ignore it

    def configure(self, cfg):
        if cfg.ring:
            self.move_to_ring()
        self.max_dma_len = cfg.max_dma_len
        self.base = 0
        for pl in cfg.placement:
            if pl.region == 0:
                self.base = pl.guest_base
        self.n_ram = len(cfg.ram)
        for g in cfg.ram:
            if g.fd_kind != P.FD_NONE or cfg.n_passed_fds:
                self.send(error=P.Error(code=22, text="RAM grant '%s' carries a descriptor without CAP_RAM_FDS"
                                        % g.name))
                raise SystemExit(1)
        for p in cfg.props:
            if p.key == "ident":
                try:
                    self.ident = int(p.value, 0) & 0xffffffff
                except ValueError:
                    self.send(error=P.Error(code=22, text="ident: not a number: %r" % p.value))
                    raise SystemExit(1)
        self.log(6, "py-scratch '%s' up, id 0x%08x" % (cfg.name, self.ident))
        self.send(ready=P.Ready())

    # --- registers -------------------------------------------------------------------------------------------
    def read(self, addr):
        if addr == 0x00:
            return self.ident, P.MEMTX_OK
        if addr == 0x04:
            return self.scratch, P.MEMTX_OK
        if addr == 0x08:
            return self.dma_addr & 0xffffffff, P.MEMTX_OK
        if addr == 0x0c:
            return self.dma_addr >> 32, P.MEMTX_OK
        if addr == 0x10:
            return self.dma_len, P.MEMTX_OK
        if addr == 0x18:
            return self.status, P.MEMTX_OK
        if addr == 0x20:
            return self.base & 0xffffffff, P.MEMTX_OK
        if addr == 0x24:
            return self.n_ram, P.MEMTX_OK
        if addr == 0x2c and self.lockstep:
            return self.ticks, P.MEMTX_OK
        return 0, P.MEMTX_DECODE_ERROR

    def write(self, addr, value):
        value &= 0xffffffff
        if addr == 0x04:
            self.scratch = value
        elif addr == 0x08:
            self.dma_addr = (self.dma_addr & ~0xffffffff) | value
        elif addr == 0x0c:
            self.dma_addr = (self.dma_addr & 0xffffffff) | (value << 32)
        elif addr == 0x10:
            self.dma_len = value
        elif addr == 0x14:
            if self.dma_len == 0 or self.dma_len > self.max_dma_len:
                self.status = P.MEMTX_ERROR
                return P.MEMTX_ERROR
            data = bytes((i * 7 + value) & 0xff for i in range(self.dma_len))
            self.status = self.dma_write(self.dma_addr, data)
            if self.status == P.MEMTX_OK:
                self.set_irq(1)
        elif addr == 0x1c:
            self.set_irq(0)
        elif addr == 0x28 and self.lockstep:
            self.period = value
            self.next_tick = self.now + value
        else:
            return P.MEMTX_DECODE_ERROR
        return P.MEMTX_OK

    # --- run loop --------------------------------------------------------------------------------------------
    def handle(self, env):
        """Handle one hub message; returns False when the device should exit."""
        kind = env.WhichOneof("msg")
        self.now = max(self.now, env.now_ns)
        # in lockstep a reply says when the device next needs time (0 when not in lockstep: not given)
        nxt = self.next_event() if self.lockstep else 0
        if kind == "read":
            r = env.read
            data, res = self.read(r.addr) if r.region == 0 else (0, P.MEMTX_DECODE_ERROR)
            self.send(reply=P.MmioReply(seq=r.seq, data=data, result=res, next_event_ns=nxt))
        elif kind == "write":
            w = env.write
            res = self.write(w.addr, w.data) if w.region == 0 else P.MEMTX_DECODE_ERROR
            if not w.posted:
                nxt = self.next_event() if self.lockstep else 0
                self.send(reply=P.MmioReply(seq=w.seq, result=res, next_event_ns=nxt))
        elif kind == "time_grant":
            self.grant(env.time_grant.until_ns)
        elif kind == "write_batch":
            for w in env.write_batch.writes:
                self.write(w.addr, w.data)
        elif kind == "reset":
            self.reset()
        elif kind == "shutdown":
            self.send(goodbye=P.Goodbye(status=0))
            return False
        elif kind == "error":
            raise SystemExit("hub error: %s" % env.error.text)
        elif kind is not None:
            self.log(4, "unexpected %s message ignored" % kind)
        return True

    def run(self):
        while True:
            env = self.pending.popleft() if self.pending else self.recv()
            if not self.handle(env):
                return

    def close(self):
        self.sock.close()       # LINGER lets the Goodbye go out
        self.ctx.term()


def main(argv):
    done = None
    ring = "--ring" in argv
    lockstep = "--lockstep" in argv
    argv = [a for a in argv if a not in ("--ring", "--lockstep")]
    if len(argv) >= 3 and argv[1] == "--done":
        done = argv[2]
    endpoint = os.environ.get("PLEXUS_ENDPOINT")
    if not endpoint:
        sys.stderr.write("pydev: PLEXUS_ENDPOINT is not set (run me from the plexus hub)\n")
        return 2
    dev = Device(endpoint, ring, lockstep)
    dev.handshake()
    dev.run()
    dev.close()
    if done:
        with open(done, "w") as f:
            f.write("goodbye\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
