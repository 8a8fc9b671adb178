"""bench.instance_threads reads each thread's CPU from /proc: a thread that used CPU shows it."""

import os
import threading
import time

from bench.instance_threads import thread_ticks


def test_a_threads_cpu_is_counted_under_its_own_id():
    ids = {}

    def spin():
        ids["tid"] = threading.get_native_id()
        started = time.thread_time()
        while time.thread_time() - started < 0.3:
            pass
        ids["ticks"] = thread_ticks(os.getpid())[ids["tid"]]

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    assert ids["ticks"] >= 0.25 * os.sysconf("SC_CLK_TCK")
    assert threading.get_native_id() in thread_ticks(os.getpid())
