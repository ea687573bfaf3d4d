"""Interrupted writes: a process killed in the middle of writing a .mlc leaves the target
untouched (the old file stays byte-identical, or no file appears); a full disk is reported
as WriteError and leaves nothing behind."""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from medcodec.io import atomic
from medcodec import api
from medcodec.errors import WriteError

# Encodes, then writes the file slowly (a pause between parts) and says when it is halfway.
WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from medcodec import api
    from medcodec.format import writer
    real = writer.atomic_write
    def slow(path, parts, overwrite=False):
        def gen():
            for i, p in enumerate(parts):
                if i == 3:
                    print("WRITING", flush=True)
                    time.sleep(60)
                yield p
        return real(path, gen(), overwrite)
    writer.atomic_write = slow
    img = (np.arange(64 * 64 * 3).reshape(3, 64, 64) % 251).astype(np.uint16)
    api.compress(img, sys.argv[1], iterations=2, overwrite=True)
""")


@pytest.mark.parametrize("existing", [True, False])
def test_kill_during_write_leaves_target_intact(tmp_path, tiny_model_id, existing):
    target = tmp_path / "vol.mlc"
    old = b"the user's previous file"
    if existing:
        target.write_bytes(old)
    env = dict(os.environ, MEDCODEC_CHECKPOINTS=os.environ["MEDCODEC_CHECKPOINTS"])
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if existing:
        assert target.read_bytes() == old
    else:
        assert not target.exists()
    # the killed writer's temporary file is hidden beside the target, never at its name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "vol.mlc"]
    assert leftovers and all(n.startswith(".vol.mlc.") for n in leftovers)


def test_disk_full_raises_write_error_and_leaves_nothing(tmp_path, tiny_model_id, monkeypatch):
    target = tmp_path / "full.mlc"
    target.write_bytes(b"keep me")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(WriteError, match="No space left"):
        api.compress(np.ones((32, 32), np.uint16), target, iterations=1, overwrite=True)
    assert target.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["full.mlc"]
