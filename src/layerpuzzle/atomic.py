"""Atomic writes: nothing half-written is ever taken for a finished artifact.

Every artifact is written to a temporary sibling path ``.<name>.tmp-XXXXXXXX``
and renamed into place only once it is complete (rename is atomic on POSIX
within one filesystem).  Before the rename:

* permissions are set to what the user's umask gives (``0o666 & ~umask`` for
  files, ``0o777 & ~umask`` for directories and executable files).  Writers
  such as ``safetensors`` (>= 0.6) write their own temporary file with mode
  0600 and rename it over ours, so this is done after the writer, not before;
* every file and directory written is flushed with ``fsync``; after the rename
  the parent directory is flushed too, so that after a host crash the artifact
  is either absent or whole, never an empty file under the final name.

A job killed inside the block leaves its temporary sibling behind (for a model,
a full copy of the weights).  The next atomic write of the same path removes
such leftovers first (:func:`remove_stale`), and so does
:func:`layerpuzzle.jobs.run_job` for every declared output when the job starts;
the audit does not count them as artifacts (:func:`is_temporary`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

TMP_INFIX = ".tmp-"
# tempfile's random suffix: 8 characters of [a-z0-9_]
_SUFFIX = r"[a-z0-9_]{8}"
# any path component written by this module (the audit's test: looser on the suffix length)
_TMP_COMPONENT = re.compile(r"^\..+\.tmp-[a-z0-9_]+$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is, or lies inside, an atomic write's temporary ``.<name>.tmp-XXXX`` path."""
    return any(_TMP_COMPONENT.match(part) for part in Path(path).parts)


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """The temporary siblings of ``path`` an interrupted atomic write of it left (``.<name>.tmp-XXXXXXXX``)."""
    final = Path(path)
    if not final.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{final.name}{TMP_INFIX}") + _SUFFIX + "$")
    return sorted(p for p in final.parent.iterdir() if pattern.match(p.name))


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove what interrupted atomic writes of ``path`` left (files or whole directories); return them.

    Only one job writes a given path (Snakemake's outputs are unique), so a sibling
    temporary of ``path`` that exists when a new write starts is a killed job's leftover.
    """
    removed = []
    for p in stale_temporaries(path):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        log.warning("removed %s, left by an interrupted write of %s", p, Path(path).name)
        removed.append(p)
    return removed


def _fsync(path: str | os.PathLike, directory: bool = False) -> None:
    """``fsync`` a file or a directory (its entries) by path."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError as err:
        # some filesystems cannot fsync a directory; the file data were still flushed
        if not (directory and err.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def _file_mode(path: Path, mask: int) -> int:
    executable = os.lstat(path).st_mode & 0o111
    return (0o777 if executable else 0o666) & ~mask


def _publish_tree(root: Path, mask: int) -> None:
    """Set umask permissions on, and fsync, every file and directory under ``root`` (bottom-up).

    Symlinks (e.g. a ``local`` model's files) are left alone: their targets are not ours.
    """
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISREG(st.st_mode):
                os.chmod(p, _file_mode(p, mask))
                _fsync(p)
            elif stat.S_ISDIR(st.st_mode):
                os.chmod(p, 0o777 & ~mask)
                _fsync(p, directory=True)
    os.chmod(root, 0o777 & ~mask)
    _fsync(root, directory=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` when the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    mask = _umask()
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{TMP_INFIX}", dir=final.parent))
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700: artifacts are shared on clusters
    try:
        yield tmp
        _publish_tree(tmp, mask)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync(final.parent, directory=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` when the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    mask = _umask()
    fd, name = tempfile.mkstemp(prefix=f".{final.name}{TMP_INFIX}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600
    try:
        yield tmp
        os.chmod(tmp, _file_mode(tmp, mask))  # again: the writer may have replaced the file (safetensors: 0600)
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent, directory=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)
