from __future__ import annotations

from feedbackguard.cli import main

main()
