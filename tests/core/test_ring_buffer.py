"""Bounded buffers between stages: newest-wins (drops counted), fifo, lossless (blocking), close, threads."""

from __future__ import annotations

import threading
import time

import pytest

from src.core.runtime.ring_buffer import BufferClosed, RingBuffer


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="mode"):
        RingBuffer(2, "oldest")  # type: ignore[arg-type]


def test_newest_put_drops_oldest_and_get_returns_newest() -> None:
    buf: RingBuffer[int] = RingBuffer(2, "newest")
    for i in range(5):
        assert buf.put(i) is True
    assert len(buf) == 2
    assert buf.dropped == 3  # 0, 1, 2 pushed out by puts
    assert buf.get(timeout=0) == 4
    assert buf.dropped == 4  # 3 skipped by the get
    assert len(buf) == 0
    assert buf.put_count == 5


def test_newest_get_times_out_with_none() -> None:
    buf: RingBuffer[int] = RingBuffer(2, "newest")
    t0 = time.monotonic()
    assert buf.get(timeout=0.05) is None
    assert time.monotonic() - t0 >= 0.04


def test_newest_get_batch_is_one_item() -> None:
    buf: RingBuffer[int] = RingBuffer(4, "newest")
    for i in range(3):
        buf.put(i)
    assert buf.get_batch(3, timeout=0) == [2]
    assert buf.dropped == 2


def test_fifo_drops_oldest_and_keeps_order() -> None:
    buf: RingBuffer[int] = RingBuffer(3, "fifo")
    for i in range(5):
        assert buf.put(i)
    assert buf.dropped == 2
    assert [buf.get(timeout=0) for _ in range(3)] == [2, 3, 4]
    assert buf.dropped == 2  # fifo gets never drop


def test_lossless_put_blocks_while_full_and_times_out() -> None:
    buf: RingBuffer[int] = RingBuffer(2, "lossless")
    assert buf.put(0) and buf.put(1)
    t0 = time.monotonic()
    assert buf.put(2, timeout=0.1) is False  # full: blocked, then gave up
    assert time.monotonic() - t0 >= 0.09
    assert buf.dropped == 0 and len(buf) == 2


def test_lossless_blocked_put_resumes_when_consumer_reads() -> None:
    buf: RingBuffer[int] = RingBuffer(2, "lossless")
    buf.put(0)
    buf.put(1)
    done = threading.Event()

    def producer() -> None:
        buf.put(2)  # blocks until there is room
        done.set()

    t = threading.Thread(target=producer, name="test-producer")
    t.start()
    assert not done.wait(0.15), "put must block while the buffer is full"
    assert buf.get(timeout=1) == 0
    assert done.wait(2), "put must resume once there is room"
    t.join(2)
    assert [buf.get(timeout=0), buf.get(timeout=0)] == [1, 2]


def test_lossless_order_and_nothing_dropped_with_slow_consumer() -> None:
    buf: RingBuffer[int] = RingBuffer(4, "lossless")
    n = 200

    def producer() -> None:
        for i in range(n):
            assert buf.put(i)
        buf.close()

    t = threading.Thread(target=producer, name="test-producer")
    t.start()
    got = []
    while True:
        try:
            batch = buf.get_batch(4, timeout=1)
        except BufferClosed:
            break
        assert len(batch) <= 4
        got.extend(batch)
        if len(got) % 50 == 0:
            time.sleep(0.01)
    t.join(2)
    assert got == list(range(n))
    assert buf.dropped == 0


def test_close_drains_then_raises() -> None:
    for mode in ("newest", "fifo", "lossless"):
        buf: RingBuffer[int] = RingBuffer(4, mode)  # type: ignore[arg-type]
        buf.put(1)
        buf.put(2)
        buf.close()
        assert buf.closed
        assert buf.put(3) is False, mode
        first = buf.get(timeout=0)
        assert first == (2 if mode == "newest" else 1)
        if mode != "newest":
            assert buf.get(timeout=0) == 2
        with pytest.raises(BufferClosed):
            buf.get(timeout=0)
        with pytest.raises(BufferClosed):
            buf.get_batch(4, timeout=0)


def test_close_wakes_a_blocked_reader_and_a_blocked_writer() -> None:
    reader_buf: RingBuffer[int] = RingBuffer(2, "lossless")
    writer_buf: RingBuffer[int] = RingBuffer(1, "lossless")
    writer_buf.put(0)
    outcome: dict[str, object] = {}

    def reader() -> None:
        try:
            reader_buf.get(timeout=10)
            outcome["reader"] = "item"
        except BufferClosed:
            outcome["reader"] = "closed"

    def writer() -> None:
        outcome["writer"] = writer_buf.put(1, timeout=10)

    threads = [threading.Thread(target=reader, name="test-reader"), threading.Thread(target=writer, name="test-writer")]
    for t in threads:
        t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    reader_buf.close()
    writer_buf.close()
    for t in threads:
        t.join(8)
        assert not t.is_alive()
    assert time.monotonic() - t0 < 5  # woken by close, well before their 10 s timeouts
    assert outcome == {"reader": "closed", "writer": False}


def test_clear_empties() -> None:
    buf: RingBuffer[int] = RingBuffer(4, "fifo")
    buf.put(1)
    buf.clear()
    assert len(buf) == 0 and buf.get(timeout=0) is None


def test_lossless_several_producers_every_item_once_in_per_producer_order() -> None:
    buf: RingBuffer[tuple[int, int]] = RingBuffer(8, "lossless")
    producers, per = 4, 2000

    def produce(p: int) -> None:
        for i in range(per):
            assert buf.put((p, i), timeout=10)

    threads = [threading.Thread(target=produce, args=(p,), name=f"test-producer-{p}") for p in range(producers)]
    for t in threads:
        t.start()
    got: list[tuple[int, int]] = []
    while len(got) < producers * per:
        got.extend(buf.get_batch(8, timeout=5))
    for t in threads:
        t.join(5)
    assert len(got) == producers * per and len(set(got)) == producers * per
    for p in range(producers):
        seq = [i for q, i in got if q == p]
        assert seq == list(range(per))
    assert buf.dropped == 0 and buf.put_count == producers * per


@pytest.mark.parametrize("mode", ["newest", "fifo"])
def test_dropping_modes_with_several_producers_account_for_every_item(mode: str) -> None:
    buf: RingBuffer[tuple[int, int]] = RingBuffer(2, mode)  # type: ignore[arg-type]
    producers, per = 4, 3000
    stop = threading.Event()
    got: list[tuple[int, int]] = []

    def consume() -> None:
        while not stop.is_set() or len(buf):
            item = buf.get(timeout=0.01)
            if item is not None:
                got.append(item)

    def produce(p: int) -> None:
        for i in range(per):
            buf.put((p, i))

    consumer = threading.Thread(target=consume, name="test-consumer")
    consumer.start()
    threads = [threading.Thread(target=produce, args=(p,), name=f"test-producer-{p}") for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    stop.set()
    consumer.join(10)
    assert not consumer.is_alive()
    assert buf.put_count == producers * per
    assert len(got) + buf.dropped + len(buf) == producers * per
    assert len(set(got)) == len(got)  # nothing delivered twice
    for p in range(producers):  # each producer's items arrive in order, with gaps where dropped
        seq = [i for q, i in got if q == p]
        assert seq == sorted(seq)
