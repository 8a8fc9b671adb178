"""Says clearly which prerequisite of the local stack is missing, and how to get it."""

import shutil
import sys

from devstack.emulators import MissingPrerequisite, firestore_command, pubsub_command


def main() -> int:
    problems = []
    if not shutil.which("java"):
        problems.append(
            "Java 11+ is missing (the Firestore and Pub/Sub emulators run on it): apt-get install default-jre-headless"
        )
    for command in (firestore_command, pubsub_command):
        try:
            command(0)
        except MissingPrerequisite as missing:
            problems.append(str(missing))
    if problems:
        print("Missing prerequisites:\n- " + "\n- ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
