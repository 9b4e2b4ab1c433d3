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
Anything else is a decode error. Usage: pydev.py [--done FILE] (FILE gets "goodbye" after a clean shutdown).
"""
import collections
import os
import sys

import zmq

import plexus_pb2 as P

REGION_SIZE = 0x100


class Device:
    def __init__(self, endpoint):
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

    def send(self, **kw):
        self.sock.send(P.Envelope(**kw).SerializeToString())

    def recv(self):
        env = P.Envelope()
        env.ParseFromString(self.sock.recv())
        return env

    def log(self, level, text):
        self.send(log=P.Log(level=level, text=text))

    def set_irq(self, level):
        if level != self.irq_level:
            self.irq_level = level
            self.send(irq=P.Irq(line=0, op=P.IRQ_SET, level=level))

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
        self.send(hello=P.Hello(major=1, minor=0, capabilities=P.CAP_DMA_MESSAGE,
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
        else:
            return P.MEMTX_DECODE_ERROR
        return P.MEMTX_OK

    # --- run loop --------------------------------------------------------------------------------------------
    def handle(self, env):
        """Handle one hub message; returns False when the device should exit."""
        kind = env.WhichOneof("msg")
        if kind == "read":
            r = env.read
            data, res = self.read(r.addr) if r.region == 0 else (0, P.MEMTX_DECODE_ERROR)
            self.send(reply=P.MmioReply(seq=r.seq, data=data, result=res))
        elif kind == "write":
            w = env.write
            res = self.write(w.addr, w.data) if w.region == 0 else P.MEMTX_DECODE_ERROR
            if not w.posted:
                self.send(reply=P.MmioReply(seq=w.seq, result=res))
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
    if len(argv) >= 3 and argv[1] == "--done":
        done = argv[2]
    endpoint = os.environ.get("PLEXUS_ENDPOINT")
    if not endpoint:
        sys.stderr.write("pydev: PLEXUS_ENDPOINT is not set (run me from the plexus hub)\n")
        return 2
    dev = Device(endpoint)
    dev.handshake()
    dev.run()
    dev.close()
    if done:
        with open(done, "w") as f:
            f.write("goodbye\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
