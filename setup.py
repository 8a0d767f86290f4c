from setuptools import find_packages, setup

# detectron2 and torch are deliberately not in install_requires: detectron2 is not on PyPI under its
# own name, and users usually bring their own builds of both. tools/setup_env.sh installs them.
setup(
    name="frn_det",
    version="0.1.0",
    description="Filter Response Normalization (Singh & Krishnan, CVPR 2020) for detectron2",
    packages=find_packages(include=["frn_det", "frn_det.*"]),
    python_requires=">=3.8",
    install_requires=["numpy"],
)
