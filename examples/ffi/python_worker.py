#!/usr/bin/env python3
"""A Python worker pool on boundflow's C ABI, with the standard library only (ctypes).

A feeder thread sends work items into `worker.step_processor.execution_request`; several worker
threads take them in batches with `boundflow_recv_many` and send results to
`worker.step_processor.result`; a collector takes the results. ctypes releases the GIL during
every foreign call, so the threads wait in parallel, and every wait is a short slice (100 ms) so
Ctrl-C stops the pool cleanly. At the end it checks that every item came back exactly once.

    cargo build -p boundflow-ffi
    python3 examples/ffi/python_worker.py target/debug/libboundflow_ffi.so config/presets [items] [workers]
"""
import ctypes
import struct
import sys
import threading
import time

OK, FULL, TIMEOUT, CLOSED = 0, 1, 2, 3
SLICE_MS = 100
BATCH = 32


class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("capacity", ctypes.c_size_t), ("len", ctypes.c_size_t)]


class Stats(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32)] + [
        (name, ctypes.c_uint64)
        for name in (
            "sent", "received", "full_events", "dropped_newest", "evicted", "discarded_at_close",
            "timeouts", "retries", "retries_exhausted", "closed_errors", "would_deadlock", "depth", "capacity",
        )
    ] + [("saturation", ctypes.c_double), ("high_water_mark", ctypes.c_uint64)]


def load(path):
    lib = ctypes.CDLL(path)
    u64, i32, size_t = ctypes.c_uint64, ctypes.c_int32, ctypes.c_size_t
    lib.boundflow_registry_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(u64)]
    lib.boundflow_sender_open.argtypes = [u64, ctypes.c_char_p, size_t, ctypes.POINTER(u64)]
    lib.boundflow_receiver_open.argtypes = [u64, ctypes.c_char_p, ctypes.POINTER(u64)]
    lib.boundflow_send_timeout.argtypes = [u64, ctypes.c_char_p, size_t, ctypes.c_uint32]
    lib.boundflow_recv_many.argtypes = [u64, ctypes.POINTER(Buffer), size_t, ctypes.POINTER(size_t), ctypes.c_uint32]
    lib.boundflow_receiver_close.argtypes = [u64, ctypes.c_uint32]
    lib.boundflow_stats.argtypes = [u64, ctypes.POINTER(Stats)]
    lib.boundflow_handle_free.argtypes = [u64]
    lib.boundflow_last_error.restype = ctypes.c_char_p
    for name in ("registry_open", "sender_open", "receiver_open", "send_timeout", "recv_many",
                 "receiver_close", "stats", "handle_free"):
        getattr(lib, "boundflow_" + name).restype = i32
    return lib


class Boundflow:
    def __init__(self, lib):
        self.lib = lib

    def check(self, status, what):
        if status != OK:
            raise RuntimeError(f"{what}: status {status}: {self.lib.boundflow_last_error().decode()}")

    def handle(self, call, *args):
        out = ctypes.c_uint64()
        self.check(call(*args, ctypes.byref(out)), call.__name__)
        return out.value

    def send(self, sender, payload, stop):
        """Sends, in short slices: TIMEOUT leaves the payload ours, so try again."""
        while not stop.is_set():
            status = self.lib.boundflow_send_timeout(sender, payload, len(payload), SLICE_MS)
            if status == OK:
                return True
            if status != TIMEOUT:
                self.check(status, "send_timeout")
        return False

    def batches(self, receiver, stop):
        """Yields lists of messages until the channel is closed and drained (or stop)."""
        storage = [(ctypes.c_uint8 * 64)() for _ in range(BATCH)]
        bufs = (Buffer * BATCH)()
        received = ctypes.c_size_t()
        while not stop.is_set():
            for buf, cell in zip(bufs, storage):
                buf.data, buf.capacity, buf.len = ctypes.cast(cell, ctypes.POINTER(ctypes.c_uint8)), 64, 0
            status = self.lib.boundflow_recv_many(receiver, bufs, BATCH, ctypes.byref(received), SLICE_MS)
            if status == TIMEOUT:
                continue  # a slice ended: Ctrl-C is noticed here
            if status == CLOSED:
                return
            self.check(status, "recv_many")
            yield [bytes(storage[i][: bufs[i].len]) for i in range(received.value)]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    items = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    bf = Boundflow(load(sys.argv[1]))
    lib = bf.lib
    registry = bf.handle(lib.boundflow_registry_open, sys.argv[2].encode(), b"test")
    work_name, result_name = b"worker.step_processor.execution_request", b"worker.step_processor.result"
    work_tx = bf.handle(lib.boundflow_sender_open, registry, work_name, 8)
    work_rx = bf.handle(lib.boundflow_receiver_open, registry, work_name)
    result_tx = bf.handle(lib.boundflow_sender_open, registry, result_name, 8)
    result_rx = bf.handle(lib.boundflow_receiver_open, registry, result_name)
    stop = threading.Event()
    results = []

    def feed():
        for item in range(items):
            if not bf.send(work_tx, struct.pack("<Q", item), stop):
                return
        # All work is queued: close, so workers drain it and then see CLOSED.
        bf.check(lib.boundflow_receiver_close(work_rx, 10_000), "receiver_close")

    def work():
        for batch in bf.batches(work_rx, stop):
            for msg in batch:
                (item,) = struct.unpack("<Q", msg)
                if not bf.send(result_tx, struct.pack("<Q", item * 2), stop):
                    return

    def collect():
        for batch in bf.batches(result_rx, stop):
            results.extend(struct.unpack("<Q", msg)[0] for msg in batch)
            if len(results) >= items:
                return

    started = time.monotonic()
    threads = [threading.Thread(target=feed), threading.Thread(target=collect)]
    threads += [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
        print("stopped by Ctrl-C", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started

    stats = Stats(size=ctypes.sizeof(Stats))
    bf.check(lib.boundflow_stats(result_rx, ctypes.byref(stats)), "stats")
    for handle in (work_tx, work_rx, result_tx, result_rx, registry):
        bf.check(lib.boundflow_handle_free(handle), "handle_free")
    expected = sorted(item * 2 for item in range(items))
    if sorted(results) != expected:
        missing = len(set(expected) - set(results))
        print(f"FAIL: {len(results)} results for {items} items, {missing} missing", file=sys.stderr)
        return 1
    if stats.sent != items or stats.received != items:
        print(f"FAIL: stats say sent {stats.sent}, received {stats.received}", file=sys.stderr)
        return 1
    print(f"python worker: {items} items through {workers} threads, each result once, "
          f"{items / elapsed:,.0f} items/s; the result channel saw {stats.full_events} full events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
