"""`seqzoo serve` in its own process, as users run it: started on free ports, stopped with SIGTERM."""

import pathlib
import re
import signal
import subprocess
import sys

SEQZOO = str(pathlib.Path(sys.executable).with_name("seqzoo"))


class ServerProcess:
    """`seqzoo serve --models-dir MODELS_DIR [FLAGS]` on free ports; `.rest_port`, `.grpc_port`.

    Its log goes to `log_path`; `stop()` sends SIGTERM and returns the exit code and its
    stdout.
    """

    def __init__(self, models_dir, log_path, *flags: str):
        self.log_path = pathlib.Path(log_path)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [SEQZOO, "serve", "--models-dir", str(models_dir), "--port", "0", "--rest_api_port",
             "0", "--file_system_poll_wait_seconds", "0", *flags],
            stdout=subprocess.PIPE, stderr=self._log, text=True)
        banner = self.process.stdout.readline()
        match = re.search(r"gRPC on [\d.]+:(\d+), REST on http://[\d.]+:(\d+)/", banner)
        if match is None:
            self.process.kill()
            raise RuntimeError(f"seqzoo serve did not start: {banner!r}\n{self.log()}")
        self.grpc_port, self.rest_port = int(match[1]), int(match[2])

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def terminate(self) -> None:
        """SIGTERM, once: a second one stops the server without draining."""
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        out, _ = self.process.communicate(timeout=timeout)
        self._log.close()
        return self.process.returncode, out

    def stop(self, timeout: float = 120) -> tuple[int, str]:
        self.terminate()
        return self.wait(timeout)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
