"""Reading a file a user or a setting names, safely: only a regular file, only up to a limit.

A path can name a FIFO (opening it waits for a writer that may never come), a device such as
``/dev/zero`` (reading it never ends) or a directory; a file can be far larger than anything
the project reads. :func:`read_regular_file` refuses all of these with one line, and checks
the type on the open descriptor, so the file cannot be swapped between check and read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mash.errors import MashError

__all__ = ["FileRefused", "read_regular_file"]


class FileRefused(MashError, ValueError):
    """The path cannot be read as asked; the message is one line naming it."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The whole content of the regular file at ``path``, at most ``limit`` bytes."""
    # O_NONBLOCK: opening a FIFO with no writer would otherwise wait for ever.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path} is not a regular file")
        if info.st_size > limit:
            raise FileRefused(f"{path} is {info.st_size} bytes, more than the {limit} allowed")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may have grown since fstat
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefused(f"{path} is more than the {limit} bytes allowed")
    return b"".join(chunks)
