"""The build step (no root): objects from sources, one line per object, one sentence on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleetnet.datapath import build
from fleetnet.errors import SystemFailure

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang (make deps)")


def test_build_compiles_every_entry_file(tmp_path: Path) -> None:
    src = tmp_path / "bpf"
    shutil.copytree(build.BPF_DIR, src, ignore=shutil.ignore_patterns("*.o"))
    assert build.build(src, tmp_path / "out") == [tmp_path / "out" / "bpf_lxc.o"]
    assert (tmp_path / "out" / "bpf_lxc.o").read_bytes()[:4] == b"\x7fELF"


def test_a_compile_error_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.c").write_text("int f(void) { return undefined_thing; }\n")
    with pytest.raises(SystemFailure, match=r"compiling broken\.c failed: .*undefined_thing"):
        build.build(tmp_path)
    assert not list(tmp_path.glob("*.o*"))


def test_main_prints_one_line_per_object_or_the_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bpf"
    shutil.copytree(build.BPF_DIR, src, ignore=shutil.ignore_patterns("*.o"))
    assert build.main([str(src), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == f"built {tmp_path / 'out' / 'bpf_lxc.o'}\n"
    assert build.main([str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fleetnet: no eBPF sources") and err.count("\n") == 1
