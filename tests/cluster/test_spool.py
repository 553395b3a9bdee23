"""The analysis node's event spool: order, acknowledgement, survival of a restart, the size bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cluster.spool import EventSpool


def test_entries_come_back_in_order_until_acknowledged(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path / "cam", max_bytes=10_000)
    seqs = [spool.append(f"event {i}".encode()) for i in range(3)]
    assert seqs == [1, 2, 3]
    assert spool.peek() == (1, b"event 0")
    assert spool.peek() == (1, b"event 0")  # peeking does not take it
    spool.ack(1)
    assert spool.peek() == (2, b"event 1")
    spool.ack(3)  # out of order: 2 stays first
    assert spool.peek() == (2, b"event 1")
    spool.ack(2)
    assert spool.peek() is None and spool.pending == 0 and spool.size_bytes == 0
    assert (spool.stats.appended, spool.stats.acked, spool.stats.dropped) == (3, 3, 0)


def test_a_restarted_node_replays_what_it_had_and_continues_the_numbering(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path / "cam", max_bytes=10_000)
    for i in range(4):
        spool.append(f"event {i}".encode())
    spool.ack(1)
    (tmp_path / "cam" / "0000000000000009.tmp").write_bytes(b"torn wri")  # a crash mid-write
    again = EventSpool(tmp_path / "cam", max_bytes=10_000)
    assert again.pending == 3 and again.peek() == (2, b"event 1")
    assert again.append(b"event 4") == 5
    assert not list((tmp_path / "cam").glob("*.tmp"))
    order = []
    while (entry := again.peek()) is not None:
        order.append(entry[1])
        again.ack(entry[0])
    assert order == [b"event 1", b"event 2", b"event 3", b"event 4"]


def test_a_full_spool_gives_up_its_oldest_entries(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path / "cam", max_bytes=100)
    for i in range(5):
        spool.append(bytes([65 + i]) * 30)  # 150 bytes offered, 100 kept at most
    assert spool.size_bytes <= 100 and spool.stats.dropped == 2
    assert spool.peek() == (3, b"C" * 30)
    with pytest.raises(ValueError, match="larger than the spool"):
        spool.append(b"x" * 101)
    assert spool.pending == 3
