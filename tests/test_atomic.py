"""Atomic writes (layerpuzzle.atomic): umask permissions, fsync before the rename, leftovers of killed jobs.

Permissions are checked on real writers (safetensors' ``save_file``, which writes
its own 0600 temporary and renames it over ours; ``save_pretrained`` through
``save_checkpoint``).  The fsync order is observed by recording every
``os.fsync`` (resolved to its path through /proc/self/fd) and ``os.replace``.
Leftovers are made the way a killed job makes them: a child process SIGKILLs
itself inside the ``with`` block.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from layerpuzzle import atomic
from layerpuzzle.atomic import atomic_dir, atomic_file, is_temporary, remove_stale, stale_temporaries, write_json
from layerpuzzle.models.checkpoint import save_checkpoint
from layerpuzzle.models.random_models import build_random_model

SRC = Path(atomic.__file__).resolve().parents[1]


@pytest.fixture
def umask():
    """Set the process umask for one test, restore it afterwards."""
    old = os.umask(0o077)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


# ---------------------------------------------------------------- 6: permissions from the umask
@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                     (0o002, 0o664, 0o775)], ids=["022", "027", "002"])
def test_safetensors_artifact_gets_the_umask_permissions(tmp_path, umask, mask, file_mode, dir_mode):
    """safetensors >= 0.6 renames its own 0600 temporary over ours: the mode is set after the writer."""
    umask(mask)
    path = tmp_path / "calib" / "c.safetensors"
    with atomic_file(path) as tmp:
        save_file({"x": torch.arange(4.0)}, str(tmp))  # safetensors renames its own 0600 file over tmp
    assert mode(path) == file_mode
    assert torch.equal(load_file(str(path))["x"], torch.arange(4.0))
    write_json(tmp_path / "r.json", {"a": 1})
    assert mode(tmp_path / "r.json") == file_mode


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)],
                         ids=["022", "027"])
def test_checkpoint_directory_gets_the_umask_permissions(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    model, tok = build_random_model("llama", seed=1)
    out = save_checkpoint(model, tok, tmp_path / "ckpt", card="# c\n", layer_map=[], extra_json={"x.json": {}})
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in files) and len(files) >= 5
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(file_mode) for p in files}
    assert mode(out) == dir_mode
    assert all(mode(d) == dir_mode for d in out.rglob("*") if d.is_dir())


def test_symlinks_in_a_directory_output_are_left_alone(tmp_path, umask):
    """A `local` model's files are symlinked: their targets are the user's, never chmod-ed."""
    umask(0o022)
    source = tmp_path / "user_model.safetensors"
    source.write_bytes(b"weights")
    os.chmod(source, 0o600)
    with atomic_dir(tmp_path / "dense") as tmp:
        os.symlink(source, tmp / "model.safetensors")
    assert mode(source) == 0o600 and (tmp_path / "dense" / "model.safetensors").read_bytes() == b"weights"


# ---------------------------------------------------------------- 8: fsync, then rename, then the directory
@pytest.fixture
def calls(monkeypatch):
    """Record ("fsync", path) and ("replace", src, dst) in the order they happen."""
    seen: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        seen.append(("replace", str(src), str(dst)))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_atomic_file_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path, calls):
    final = tmp_path / "scores.safetensors"
    with atomic_file(final) as tmp:
        save_file({"x": torch.ones(3)}, str(tmp))
        tmp_name = str(tmp)
    # safetensors fsyncs/renames its own temporaries: look at ours only
    ours = [c for c in calls if c[-1] in (tmp_name, str(final), str(tmp_path))]
    assert ours == [("fsync", tmp_name), ("replace", tmp_name, str(final)), ("fsync", str(tmp_path))]


def test_checkpoint_files_and_directories_are_fsynced_before_the_rename(tmp_path, calls):
    model, tok = build_random_model("llama", seed=1)
    out = save_checkpoint(model, tok, tmp_path / "ckpt", card="# c\n")
    replaces = [i for i, c in enumerate(calls) if c[0] == "replace" and c[2] == str(out)]
    assert len(replaces) == 1
    r = replaces[0]
    tmp_dir = calls[r][1]
    before = [c[1] for c in calls[:r] if c[0] == "fsync"]
    written = sorted(p.name for p in out.iterdir())
    # every file of the checkpoint, under its temporary name, and the temporary directory itself
    assert sorted(Path(p).name for p in before if Path(p).parent == Path(tmp_dir)) == written
    assert before[-1] == tmp_dir
    assert calls[r + 1:] == [("fsync", str(tmp_path))]  # then the parent, so the rename itself is durable


# ---------------------------------------------------------------- 7: leftovers of a killed job
def killed_write(final: Path, kind: str) -> Path:
    """Start a write of ``final`` in a child process that SIGKILLs itself mid-write; return its leftover."""
    code = f"""
import os, signal
from layerpuzzle.atomic import atomic_dir, atomic_file
if {kind!r} == "dir":
    with atomic_dir({str(final)!r}) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half of the weights")
        os.kill(os.getpid(), signal.SIGKILL)
else:
    with atomic_file({str(final)!r}) as tmp:
        tmp.write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
"""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == -signal.SIGKILL, res.stderr
    left = stale_temporaries(final)
    assert len(left) == 1 and is_temporary(left[0]) and not final.exists()
    return left[0]


def test_next_write_removes_what_a_killed_write_left(tmp_path):
    final = tmp_path / "pruned" / "sp30"
    left = killed_write(final, "dir")
    assert (left / "model.safetensors").read_bytes() == b"half of the weights"
    unrelated = [tmp_path / "pruned" / ".sp3.tmp-abcdefgh", tmp_path / "pruned" / "sp30.tmp-abcdefgh",
                 tmp_path / "pruned" / ".sp30.tmp-abc"]  # another path's temporary; not a temporary name
    for p in unrelated:
        p.mkdir()
    with atomic_dir(final) as tmp:
        (tmp / "model.safetensors").write_bytes(b"all of the weights")
    assert not left.exists() and (final / "model.safetensors").read_bytes() == b"all of the weights"
    assert all(p.exists() for p in unrelated)
    assert sorted(p.name for p in final.parent.iterdir()) == sorted(["sp30", *(p.name for p in unrelated)])

    f = tmp_path / "calib" / "c.safetensors"
    left = killed_write(f, "file")
    write_json(f, {"ok": True})
    assert not left.exists() and sorted(p.name for p in f.parent.iterdir()) == ["c.safetensors"]


def test_remove_stale_and_is_temporary(tmp_path):
    final = tmp_path / "x.parquet"
    assert remove_stale(final) == []
    (tmp_path / ".x.parquet.tmp-k2_9zzab").write_bytes(b"?")
    assert [p.name for p in remove_stale(final)] == [".x.parquet.tmp-k2_9zzab"]
    assert not any(tmp_path.iterdir())
    assert is_temporary("results/m/pruned/.sp30.tmp-abcdefgh/model.safetensors")
    assert is_temporary("results/m/calib/.c.bin.tmp-abc123")
    assert not is_temporary("results/m/pruned/sp30/model.safetensors")
    assert not is_temporary("results/m/tmp-run/a.tmp-x")
