"""Run the Send emulator: `python -m send_emulator --port 8085 --data send.db`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .runtime import Faults
from .server import Emulator, Server

logger = logging.getLogger("send_emulator")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m send_emulator",
        description="An emulator of Send's SOAP API (ClabService).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085, help="0 picks a free port")
    parser.add_argument("--data", required=True, help="SQLite file (created)")
    parser.add_argument("--token-ttl", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=10.0,
        help="per account; 0 turns the limit off",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=10,
        help="concurrent requests per account; 0 turns the limit off",
    )
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--lost-answer-rate", type=float, default=0.0)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _faults(args: argparse.Namespace) -> Faults:
    try:
        return Faults().updated(
            {
                "latencyMs": args.latency_ms,
                "errorRate": args.error_rate,
                "timeoutRate": args.timeout_rate,
                "lostAnswerRate": args.lost_answer_rate,
                "requestsPerSecond": args.requests_per_second,
                "maxConcurrency": args.max_concurrency,
            }
        )
    except ValueError as error:
        sys.exit(f"send emulator: {error}")


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    emulator = Emulator(args.data, token_ttl=args.token_ttl, faults=_faults(args))
    server = Server((args.host, args.port), emulator)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it must run off
        # the main thread, which is the one serving.
        emulator.release_hanging()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    port = server.server_address[1]
    print(f"send emulator listening on http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        logger.info("Send emulator stopped. port=%s", port)


if __name__ == "__main__":
    main()
