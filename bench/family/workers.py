"""The family's worker processes, whichever part (CPA or customer) runs them."""

import os


def single_threaded() -> None:
    """One thread per worker process: set before the pool spawns them (a spawned child imports numpy,
    and so OpenBLAS, while unpickling its task, before the task itself could set anything)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
