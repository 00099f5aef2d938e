"""The public producer's bearer tokens, re-read while the process runs.

Kubernetes mounts a Secret as a directory with one file per key and replaces the files (an
atomic symlink swap) when the Secret changes; environment variables never change. So the
producer reads its accepted tokens from such a directory (`PUBLISH_TOKENS_DIR`: the current
token and the previous one during a rotation) and reads them again whenever a file there
changes. A file that does not hold a valid token (mid-update, or empty) is skipped; if no valid
token is left, the last good set stays in force, so the producer never opens up.
"""

from __future__ import annotations

import hmac
import threading
from pathlib import Path


def valid_token(raw: str) -> bool:
    """32-256 letters and digits."""
    return 32 <= len(raw) <= 256 and raw.isalnum()


def fingerprint(path: Path) -> tuple[int, int, int]:
    """What changes when Kubernetes (or anyone) replaces the file behind `path`."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class TokenFiles:
    """The tokens held by the files of one directory (names not starting with a dot)."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._seen: tuple = ()
        self._tokens: tuple[bytes, ...] = ()
        if not self.current():
            raise ValueError(f"no file in {directory} holds a token")

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if not p.name.startswith(".") and p.is_file())

    def current(self) -> tuple[bytes, ...]:
        """The accepted tokens, re-read when any file changed (by inode, size or mtime)."""
        try:
            files = self._files()
            seen = tuple((p.name, *fingerprint(p)) for p in files)
        except OSError:
            return self._tokens
        with self._lock:
            if seen != self._seen:
                read = []
                for path in files:
                    try:
                        text = path.read_text().strip()
                    except OSError:
                        continue
                    if valid_token(text):
                        read.append(text.encode())
                if read:
                    self._seen, self._tokens = seen, tuple(read)
            return self._tokens

    def accepts(self, given: str) -> bool:
        """True when `given` equals one of the tokens (each compared in constant time)."""
        found = False
        for token in self.current():
            found |= hmac.compare_digest(given.encode(), token)
        return found
