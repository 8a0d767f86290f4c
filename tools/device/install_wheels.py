#!/usr/bin/env python
"""Installs the wheels of .whl (tools/device/wheels.sh) that this Python lacks into a folder, for
PYTHONPATH. Uses `installer` (shipped in .whl): no network, no compiler, no dependency resolver, and no
tag check, which the cp310-tagged detectron2 wheel needs on 3.12. Prints one JSON line: what it
installed, what was already there, and the requirements of detectron2 and fvcore still missing.

    python tools/device/install_wheels.py .whl /tmp/wheels [--all]
"""
import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path


def dist_name(wheel):
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def installed(name):
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def install(wheel, target):
    from installer import install as _install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    scheme = {k: str(target) for k in ("purelib", "platlib")}
    scheme.update(scripts=str(target / "bin"), data=str(target / "data"), headers=str(target / "include"))
    dest = SchemeDictionaryDestination(scheme, interpreter=sys.executable, script_kind="posix")
    with WheelFile.open(wheel) as source:
        _install(source, dest, additional_metadata={})


def missing_requirements(names):
    """Requirements (markers applied, extras ignored) of `names` that no installed distribution meets."""
    from packaging.requirements import Requirement

    missing = []
    for name in names:
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                if not req.specifier.contains(metadata.version(req.name), prereleases=True):
                    missing.append(f"{name}: {req} (found {metadata.version(req.name)})")
            except metadata.PackageNotFoundError:
                missing.append(f"{name}: {req}")
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheels", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--all", action="store_true", help="install every wheel, even those already installed")
    args = ap.parse_args()
    wheels = sorted(args.wheels.glob("*.whl"))
    if not wheels:
        sys.exit(f"no wheels in {args.wheels}: run tools/device/wheels.sh and carry .whl")
    sys.path.insert(0, str(next(w for w in wheels if dist_name(w) == "installer")))  # zipimport
    args.target.mkdir(parents=True, exist_ok=True)
    done, present = [], []
    for wheel in wheels:
        if dist_name(wheel) == "installer" or (installed(dist_name(wheel)) and not args.all):
            present.append(wheel.name)
            continue
        install(wheel, args.target)
        done.append(wheel.name)
    sys.path.insert(0, str(args.target))
    metadata_names = [n for n in ("sal-detectron2", "fvcore", "hydra-core") if installed(n)]
    print(json.dumps({"installed": done, "already_present": present,
                      "missing_requirements": missing_requirements(metadata_names)}))


if __name__ == "__main__":
    main()
