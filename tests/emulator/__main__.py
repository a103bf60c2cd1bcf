"""Run the local dbt Cloud in the foreground: `python -m tests.emulator --port 8765 --token T`."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from .cloud import LocalDbtCloud


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    parser.add_argument("--token", default="local-token", help="the API token clients must send")
    parser.add_argument("--account-id", type=int, default=1)
    parser.add_argument("--root", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument("--job", action="append", default=[], metavar="COMMAND", help="define a job of one step")
    parser.add_argument("--first-run-id", type=int, default=1001, help="the first run id (70403103922468: 14 digits)")
    parser.add_argument(
        "--cell-host", help="the account's cell host (e.g. localhost): 401 'Invalid token.' under any other host"
    )
    parser.add_argument("--webhook", metavar="URL", help="send dbt Cloud's job webhooks to this URL (e.g. a relay's)")
    parser.add_argument("--webhook-secret", default="local-webhook-secret", help="the webhook's signing secret")
    args = parser.parse_args(argv)
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    with LocalDbtCloud(
        args.root,
        token=args.token,
        account_id=args.account_id,
        port=args.port,
        host=args.host,
        tls=tls,
        first_run_id=args.first_run_id,
    ) as cloud:
        cloud.api.cell_host = args.cell_host
        for command in args.job:
            print(f"job {cloud.add_job([command])}: {command}", flush=True)
        if args.webhook:
            cloud.webhooks.subscribe(args.webhook, args.webhook_secret)
            print(f"webhooks to {args.webhook}", flush=True)
        print(cloud.base_url, flush=True)
        while not stopped.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
