"""Start the emulator as a child process, for tests, benchmarks and demos."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 20.0
# Rate and concurrency limits off: callers that test limits turn them on.
NO_LIMITS = ("--requests-per-second=0", "--max-concurrency=0")


@dataclasses.dataclass
class EmulatorProcess:
    """A running emulator: its process, its base URL and its log file."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    folder: Path, *options: str, data_name: str = "send.sqlite3"
) -> EmulatorProcess:
    """Start `python -m send_emulator` on a free port, with data in `folder`.

    Waits for the line that says it listens; raises RuntimeError with the
    log when it does not start.
    """
    log_path = folder / "emulator.log"
    command = [
        sys.executable,
        "-m",
        "send_emulator",
        "--port=0",
        f"--data={folder / data_name}",
        "--log-level=WARNING",
        *options,
    ]
    with log_path.open("wb") as log:
        # The command is this interpreter and the caller's own options.
        process = subprocess.Popen(  # noqa: S603
            command, cwd=PACKAGE_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if "listening on " in line:
                url = line.rsplit(" ", 1)[-1].strip()
                return EmulatorProcess(process, url, log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the Send emulator did not start:\n{log_path.read_text()}")
