"""A local MongoDB-compatible server for development (SecantusDB, a dev requirement).

    make mongo-dev            # or: .venv/bin/python scripts/mongo_dev.py [--port 27017]

Serves on 127.0.0.1 with its data in instance/mongo-dev, and prints the MONGO_URI to put in
.env. Stop it with Ctrl-C. For production use a real MongoDB.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Start the server and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--data", type=Path, default=ROOT / "instance" / "mongo-dev")
    args = parser.parse_args()
    try:
        from secantus import SecantusDBServer
    except ImportError:
        print("SecantusDB is missing: run `make install-dev` first.", file=sys.stderr)
        return 1
    args.data.mkdir(parents=True, exist_ok=True, mode=0o700)
    server = SecantusDBServer(host="127.0.0.1", port=args.port, storage_path=str(args.data))
    try:
        server.start()
    except OSError as exc:
        print(f"Could not listen on 127.0.0.1:{args.port} ({exc}); try --port.", file=sys.stderr)
        return 1
    print(f"MongoDB-compatible development server on 127.0.0.1:{args.port}, data in {args.data}")
    print(
        f"Put this in .env (or export it), then restart the app:\n  MONGO_URI=mongodb://127.0.0.1:{args.port}/app"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
