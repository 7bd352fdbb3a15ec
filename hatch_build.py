"""Build hook: compile the C speedups (``src/zoomtrace/_speedups*.c``, one module) into the wheel.

The C module is optional: without a C compiler (or with ``ZOOMTRACE_PURE_PYTHON=1``) the wheel is pure Python
and Zoom uses the Python functions the C ones stand for (docs/ARCHITECTURE.md, "Native code"). An editable
install (``pip install -e``, as ``scripts/setup`` does) builds the module next to its source; run the setup
again after changing the C file.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: The module's C files; the first holds its init function (its name is the module's).
SOURCES = (
    Path("src/zoomtrace/_speedups.c"),
    Path("src/zoomtrace/_speedups_ids.c"),
    Path("src/zoomtrace/_speedups_scan.c"),
    Path("src/zoomtrace/_speedups_caller.c"),
    Path("src/zoomtrace/_speedups_span.c"),
    Path("src/zoomtrace/_speedups_encoder.c"),
)
PACKAGE_DIR = "zoomtrace"


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("ZOOMTRACE_PURE_PYTHON"):
            return
        sources = [Path(self.root) / source for source in SOURCES]
        name = sources[0].stem + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")
        if version == "editable":
            target = sources[0].with_name(name)
        else:
            target = Path(tempfile.mkdtemp(prefix="zoomtrace-build-")) / name
        problem = _compile(sources, target)
        if problem is not None:
            print(f"zoomtrace: C speedups not built ({problem}); the pure-Python code is used", file=sys.stderr)
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(target)] = f"{PACKAGE_DIR}/{name}"


def _compile(sources: list[Path], target: Path) -> str | None:
    """Compile ``sources`` and link them into the extension module ``target``; what went wrong, or None."""
    cc, ldshared = sysconfig.get_config_var("CC"), sysconfig.get_config_var("LDSHARED")
    if not cc or not ldshared:
        return "no C compiler known to this Python"
    include = sysconfig.get_paths()["include"]
    objects = [target.with_name(f"{source.stem}.o") for source in sources]
    steps = [
        *(
            [*shlex.split(cc), "-c", "-O3", "-fPIC", "-Wall", f"-I{include}", str(source), "-o", str(obj)]
            for source, obj in zip(sources, objects, strict=True)
        ),
        [*shlex.split(ldshared), *map(str, objects), "-o", str(target)],
    ]
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                return f"{shlex.join(step)}: {done.stderr.strip() or done.returncode}"
    except OSError as exc:
        return str(exc)
    finally:
        for obj in objects:
            obj.unlink(missing_ok=True)
    return None
