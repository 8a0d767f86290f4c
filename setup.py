import sys

from setuptools import find_packages, setup


def frn_cpu_extension():
    """The fused CPU FRN kernel (frn_det/layers/csrc), built when torch is importable at build time
    (tools/setup_env.sh installs with --no-build-isolation). Without it, or if it fails to compile,
    frn_det runs its pure-PyTorch FRN path."""
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
        extra_compile_args=["-O3", "-fno-math-errno"] + omp,  # errno-free sqrt vectorizes
        extra_link_args=omp,
    )
    build_ext = OptionalBuildExtension.with_options(use_ninja=False)  # one file: ninja buys nothing
    return {"ext_modules": [ext], "cmdclass": {"build_ext": build_ext}}


# detectron2 and torch are deliberately not in install_requires: detectron2 is not on PyPI under its
# own name, and users usually bring their own builds of both. tools/setup_env.sh installs them.
setup(
    name="frn_det",
    version="0.1.0",
    description="Filter Response Normalization (Singh & Krishnan, CVPR 2020) for detectron2",
    packages=find_packages(include=["frn_det", "frn_det.*"]),
    python_requires=">=3.8",
    install_requires=["numpy"],
    **frn_cpu_extension(),
)
