"""lib.clients.knack_pages.in_order: pages asked for ahead, given out in order, bounded, cancelled
on close."""

import threading
from concurrent.futures import ThreadPoolExecutor

from lib.clients.knack_pages import in_order as _in_order


def test_pages_are_asked_for_before_the_first_is_taken_and_come_out_in_order():
    asked: list[int] = []
    release = threading.Event()
    lock = threading.Lock()

    def fetch(n: int) -> int:
        with lock:
            asked.append(n)
        release.wait(5)
        return n * 10

    with ThreadPoolExecutor(4) as pool:
        ordered = _in_order(pool, fetch, range(2, 12), 3)
        # before anything is taken, the first three are already submitted (and no more)
        for _ in range(100):
            with lock:
                if len(asked) == 3:
                    break
            threading.Event().wait(0.01)
        with lock:
            assert sorted(asked) == [2, 3, 4]
        release.set()
        assert list(ordered) == [(n, n * 10) for n in range(2, 12)]


def test_close_cancels_what_is_pending():
    started = threading.Event()
    gate = threading.Event()
    ran: list[int] = []

    def fetch(n: int) -> int:
        ran.append(n)
        started.set()
        gate.wait(5)
        return n

    with ThreadPoolExecutor(1) as pool:  # one worker: the others wait in the queue
        ordered = _in_order(pool, fetch, range(100), 4)
        assert started.wait(5)
        ordered.close()  # never iterated: the queued requests are cancelled all the same
        gate.set()
    assert ran == [0]  # only the request that had started ran; the 3 queued were cancelled
