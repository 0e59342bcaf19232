"""Compiles the eBPF C sources of ``bpf/`` into objects, once, when fleetnet is built.

``python -m fleetnet.datapath.build`` (the Makefile's ``build`` target) turns every
``bpf/*.c`` entry file into ``bpf/*.o``; the loader only ever reads the objects, so starting a
cluster never runs a compiler. Headers live in ``bpf/lib/`` and are included by the entry files.

``clang -target bpf`` does not search the host's multiarch include directory (Debian keeps
``asm/types.h`` in ``/usr/include/<triple>``), so it is added from ``clang -print-multiarch``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetnet.errors import SystemFailure

BPF_DIR = Path(__file__).resolve().parent / "bpf"

# -mcpu=v2: clang 14 miscompiles these programs for v3 (a spilled register is read after a helper
# call clobbered it, which the verifier rejects); v2 still has 32-bit jumps and runs on 4.14+.
CFLAGS = ("-O2", "-g", "-target", "bpf", "-mcpu=v2", "-Wall", "-Werror", "-Wno-unused-function")


def _clang() -> str:
    clang = shutil.which("clang")
    if clang is None:
        raise SystemFailure("clang is not installed; install the Debian packages clang and libbpf-dev.")
    return clang


def multiarch_include(clang: str) -> Path | None:
    """The host's multiarch include directory (/usr/include/x86_64-linux-gnu), if it has one."""
    try:
        triple = subprocess.run([clang, "-print-multiarch"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path("/usr/include") / triple
    return path if triple and path.is_dir() else None


def compile_object(source: Path, output: Path, clang: str | None = None) -> None:
    """Compiles one entry file; raises SystemFailure with clang's first error on failure."""
    clang = clang or _clang()
    args = [clang, *CFLAGS, f"-I{source.parent}"]
    inc = multiarch_include(clang)
    if inc is not None:
        args.append(f"-I{inc}")
    args += ["-c", str(source), "-o", str(output)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        detail = ([line for line in lines if "error" in line] or lines or ["clang printed nothing"])[0]
        raise SystemFailure(f"compiling {source.name} failed: {detail.strip()}")


def build(src_dir: Path = BPF_DIR, out_dir: Path | None = None) -> list[Path]:
    """Compiles every ``*.c`` of src_dir into ``out_dir`` (default: beside the sources)."""
    out_dir = out_dir or src_dir
    sources = sorted(src_dir.glob("*.c"))
    if not sources:
        raise SystemFailure(f"no eBPF sources (*.c) found in {src_dir}; is the checkout complete?")
    clang = _clang()
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for source in sources:
        output = out_dir / f"{source.stem}.o"
        tmp = output.with_suffix(".o.tmp")
        compile_object(source, tmp, clang)
        tmp.replace(output)  # a half-written object never sits where the loader looks
        built.append(output)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fleetnet.datapath.build [SRC_DIR [OUT_DIR]]``; 0 on success, 1 on failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    src = Path(args[0]) if args else BPF_DIR
    out = Path(args[1]) if len(args) > 1 else None
    try:
        for obj in build(src, out):
            print(f"built {obj}")
    except SystemFailure as e:
        print(f"fleetnet: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
