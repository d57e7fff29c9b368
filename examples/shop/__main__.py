"""`python -m examples.shop [--port 5000]`: run the support desk on Flask's server."""

from __future__ import annotations

import argparse

from .app import create_app

DEFAULT_PORT = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description="the feedbackguard example support desk")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    create_app().run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
