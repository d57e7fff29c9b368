"""Worker entry point for process managers: the same as `feedbackguard worker`."""

from __future__ import annotations

from feedbackguard.cli.worker import worker

if __name__ == "__main__":
    worker()
