"""The package's layering, read from its import statements (function-level ones included): the plugin
never imports the research harness, no module imports a command module, and each layer imports only
those below it (LAYERS)."""
import ast
from pathlib import Path

import pytest

from coco_tree import ROOT

PACKAGE = Path(ROOT, "frn_det")
HARNESS = ("frn_det.study", "frn_det.benchmark")  # the study and the benchmarks: they import the plugin
COMMANDS = ("frn_det.train_net", "frn_det.predict.command", "frn_det.study.batch")  # setup.py's console scripts
# the package's layers, each importing only those before it (and the package itself, which registers)
LAYERS = ("frn_det.utils", "frn_det.layers", "frn_det.modeling", "frn_det.solver", "frn_det.data", "frn_det.config",
          "frn_det.engine", "frn_det.evaluation", "frn_det.export", "frn_det.predict", "frn_det.model_zoo",
          "frn_det.train_net", *HARNESS)


def _module(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports():
    """{module: the frn_det modules it imports}, relative imports resolved."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                names.add(".".join([*base, node.module] if node.module else base))
        out[module] = {n for n in names if n == "frn_det" or n.startswith("frn_det.")}
    return out


def _under(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_import_scan_sees_the_package():
    got = imports()
    assert "frn_det.study.batch" in got and "frn_det.layers.formula" in got
    assert "frn_det.engine.train_loop" in got["frn_det.study.batch_runs"]  # an absolute import
    assert "frn_det.layers.path_cpp" in got["frn_det"]  # a relative one
    assert [m for m in got if m != "frn_det" and _layer(m) is None] == []  # every module has its layer
    assert _layer("frn_det.modeling.build") < _layer("frn_det.config.to_frn") < _layer("frn_det.engine.trainer")


def _layer(name):
    return next((i for i, layer in enumerate(LAYERS) if _under(name, (layer,))), None)


@pytest.mark.parametrize("rule", ["plugin_without_harness", "no_command_imported", "layers_in_order"])
def test_layering(rule):
    bad = []
    for module, names in imports().items():
        for name in names:
            if rule == "plugin_without_harness":
                wrong = not _under(module, HARNESS) and _under(name, HARNESS)
            elif rule == "no_command_imported":  # a package (and its __main__) may expose its own command
                package = name.rpartition(".")[0]
                wrong = _under(name, COMMANDS) and module not in (name, package, package + ".__main__")
            else:
                wrong = None not in (_layer(module), _layer(name)) and _layer(name) > _layer(module)
            if wrong:
                bad.append(f"{module} imports {name}")
    assert not bad, bad
