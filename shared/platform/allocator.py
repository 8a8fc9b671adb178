"""The process's memory allocator, set once at start by the entry points (functions/main.py).

glibc gives the top of its heap back to the kernel whenever more than its trim threshold (128 kB
until the process frees a larger mmap-ed block) is free there, and the next allocation faults the
pages in again. A decision at 100 candidates allocates and frees temporaries of 50-300 kB
(shared/cpa/policies/thompson_integral.py), so each call paid about 40 page faults, a fifth of its
CPU. Freeing one mmap-ed block of 4 MB raises glibc's mmap threshold to 4 MB and its trim threshold
to 8 MB for the process (its documented dynamic threshold, mallopt(3)); other allocators ignore it.
"""

import numpy as np

_BLOCK_FLOATS = 1 << 19  # 4 MB


def keep_freed_memory_mapped() -> None:
    block = np.empty(_BLOCK_FLOATS)
    del block
