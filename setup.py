import glob
import os
import re
import shutil
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def get_version():
    """frn_det.__version__, read without importing frn_det (which needs torch and detectron2)."""
    with open(os.path.join(ROOT, "frn_det", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def get_model_zoo_configs():
    """The repo's configs/ as package data of frn_det.model_zoo, kept as one copy the way detectron2's
    setup.py does it: frn_det/model_zoo/configs is a link to configs/ (a copy where links fail)."""
    source = os.path.join(ROOT, "configs")
    destination = os.path.join(ROOT, "frn_det", "model_zoo", "configs")
    if os.path.isdir(source):  # an sdist's tree has the copy only
        if os.path.islink(destination):
            os.unlink(destination)
        elif os.path.isdir(destination):
            shutil.rmtree(destination)  # a stale copy
        try:
            os.symlink(os.path.join("..", "..", "configs"), destination)
        except OSError:
            shutil.copytree(source, destination)
    pkg_dir = os.path.dirname(destination)
    return [os.path.relpath(p, pkg_dir) for ext in ("yaml", "py")
            for p in glob.glob(os.path.join(destination, "**", f"*.{ext}"), recursive=True)]


def frn_cpu_extension():
    """The fused CPU FRN kernel (frn_det/layers/csrc), built against the torch importable at build time:
    the user's own with `pip install --no-build-isolation` (as tools/setup_env.sh does). Plain
    `pip install .` builds in an isolated environment without torch, so the kernel is left out; so it
    is when it fails to compile. frn_det then runs its PyTorch FRN path and says so at import."""
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        return {}
    omp = ["-fopenmp"] if sys.platform.startswith("linux") else []  # at::parallel_for's threads

    class OptionalBuildExtension(BuildExtension):
        def run(self):
            try:
                super().run()
            except Exception as e:  # noqa: BLE001  (compiler missing or failing: keep the install)
                print(f"WARNING: frn_det's C++ FRN kernel was not built ({e}); the PyTorch path is used")
                self.extensions = []  # nothing to copy into the package

    ext = CppExtension(
        "frn_det.layers._frn_cpu",
        ["frn_det/layers/csrc/frn_cpu.cpp"],
        depends=["frn_det/layers/csrc/frn_kernels.h"],
        # errno-free sqrt vectorizes; -g0: Python's -g made the .so 7.6 MB instead of 0.4 MB
        extra_compile_args=["-O3", "-g0", "-fno-math-errno"] + omp,
        extra_link_args=omp,
    )
    build_ext = OptionalBuildExtension.with_options(use_ninja=False)  # one source: ninja buys nothing
    return {"ext_modules": [ext], "cmdclass": {"build_ext": build_ext}}


# torch and detectron2 are deliberately not in install_requires (as detectron2 leaves out torch): users
# bring their own builds of both, and pip must not replace or add a torch next to theirs; detectron2 is
# not on PyPI under its own name. README "Install into your detectron2 environment" says what is needed.
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="frn_det",
    version=get_version(),
    description="Filter Response Normalization (Singh & Krishnan, CVPR 2020) for detectron2",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    packages=find_packages(include=["frn_det", "frn_det.*"]),
    package_data={"frn_det.model_zoo": get_model_zoo_configs()},
    python_requires=">=3.8",
    install_requires=["numpy", "Pillow>=9.1"],  # Image.Resampling
    # the real-photo look of the embedded shapes; image and video files for frn_det.predict (opencv-python
    # works as well: both provide cv2, so neither is required)
    extras_require={"real": ["scikit-image"], "predict": ["opencv-python-headless"]},
    entry_points={"console_scripts": ["frn-det-train = frn_det.train_net:cli", "frn-det-predict = frn_det.predict:cli",
                                      "frn-det-study = frn_det.study.batch:cli"]},
    **frn_cpu_extension(),
)
