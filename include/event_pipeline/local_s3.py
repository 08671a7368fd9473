"""The local S3 endpoint for the demo and tests: moto's server mode on 127.0.0.1.

    python -m event_pipeline.local_s3 start [--port 5555]   # background, writes a pid file
    python -m event_pipeline.local_s3 stop
    python -m event_pipeline.local_s3 serve                  # foreground
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from event_pipeline.settings import DEFAULT_BUCKET, LOCAL_S3_PORT, get_settings

# moto accepts any credentials; these only have to be the same on both sides.
LOCAL_KEY = "local-access-key"
LOCAL_SECRET = "local-secret-key"


def endpoint_url(port: int = LOCAL_S3_PORT) -> str:
    return f"http://127.0.0.1:{port}"


def connection_json(port: int = LOCAL_S3_PORT, bucket: str = DEFAULT_BUCKET) -> str:
    """The AIRFLOW_CONN_EVENTS_S3 value that points at the local endpoint."""
    import json

    return json.dumps(
        {
            "conn_type": "aws",
            "login": LOCAL_KEY,
            "password": LOCAL_SECRET,
            "extra": {"endpoint_url": endpoint_url(port), "bucket": bucket, "region_name": "us-east-1"},
        }
    )


def is_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(endpoint_url(port), timeout=1):
            return True
    except Exception as exc:  # moto answers 200 on / ; any HTTP error still means it's listening
        return hasattr(exc, "code")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_bucket(port_or_url: int | str, bucket: str = DEFAULT_BUCKET) -> None:
    """Create the bucket if missing (no region: us-east-1 buckets take no location constraint)."""
    import s3fs

    url = endpoint_url(port_or_url) if isinstance(port_or_url, int) else port_or_url
    fs = s3fs.S3FileSystem(key=LOCAL_KEY, secret=LOCAL_SECRET, client_kwargs={"endpoint_url": url},
                           skip_instance_cache=True)
    if not fs.exists(bucket):
        fs.mkdir(bucket)


def serve(port: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    create_bucket(port)
    print(f"local S3 endpoint on {endpoint_url(port)}, bucket {DEFAULT_BUCKET!r}", flush=True)
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        time.sleep(0.2)
    server.stop()


def _pidfile() -> Path:
    return get_settings().home / "local_s3.pid"


def start(port: int) -> None:
    if is_up(port):
        print(f"local S3 endpoint already running on {endpoint_url(port)}")
        create_bucket(port)
        return
    pidfile = _pidfile()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    log = open(pidfile.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "event_pipeline.local_s3", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pidfile.write_text(str(proc.pid))
    for _ in range(100):
        if is_up(port):
            print(f"local S3 endpoint started on {endpoint_url(port)} (pid {proc.pid})")
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"local S3 endpoint did not start; see {pidfile.with_suffix('.log')}")


def stop() -> None:
    pidfile = _pidfile()
    if not pidfile.exists():
        print("local S3 endpoint not running (no pid file)")
        return
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        print(f"stopped local S3 endpoint (pid {pid})")
    except ProcessLookupError:
        print("local S3 endpoint was not running")
    pidfile.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m event_pipeline.local_s3", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "serve", "env"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_S3_PORT", LOCAL_S3_PORT)))
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port)
    elif args.command == "start":
        start(args.port)
    elif args.command == "stop":
        stop()
    else:
        print(connection_json(args.port))


if __name__ == "__main__":
    main()
