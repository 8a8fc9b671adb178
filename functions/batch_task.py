"""Entry point of the batch engine's Cloud Run job: one task of a batch file (shared/batch/task.py).

Deployed, this file sits at the container's root beside `shared` and `clients`
(functions/batch_task.Dockerfile); locally devstack/engine.py runs it as `python -m functions.batch_task`.
"""

import sys

from shared.batch import task

if __name__ == "__main__":
    sys.exit(task.main())
