"""``python -m minicnn.exercises.worker FOLDER NAME ...``: the process that runs a learner's code (see ``runner``)."""
import sys

from .runner import worker

if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
