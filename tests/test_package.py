"""The house rules of the package, checked: which way imports point, no import cycles, module
length, and a start-up that loads no torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "speechseq"

# Modules over 400 lines, each with the reason it stays whole.
LONGER = {
    "asr/train.py": "one loop's named functions, plus the share of a global batch that each "
    "torchrun rank trains on (the only loop that runs under DistributedDataParallel)",
    "data/preparers.py": "one preparer per public dataset layout, each short and independent",
    "training.py": "what both loops share, in one place: EpochLoop and Checkpointer",
    "asr/jobs.py": "a folder job from inputs to report",
    "asr/transcriber.py": "one class: loading, the stream of pieces pooled into batches, and "
    "the batches decoded two at a time on a CPU",
    "tts/train.py": "one loop's named functions, plus the listener that scores the voice as it "
    "trains (the synthesized samples it hears also go to TensorBoard)",
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """``speechseq.asr.train`` → its file, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, at module level or inside functions."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1]])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in modules and m != name}


def _area(name: str) -> str:
    """cli, asr, tts, or core (the top-level modules, models and data)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("cli", "asr", "tts") else "core"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_imports_point_one_way(graph):
    """cli → asr | tts → core/models/data; tts may use asr, asr never uses tts."""
    allowed = {
        "cli": {"cli", "asr", "tts", "core"},
        "tts": {"tts", "asr", "core"},
        "asr": {"asr", "core"},
        "core": {"core"},
    }
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        # the package's face (lazy names) and ``python -m speechseq`` sit above everything
        if _area(target) not in allowed[_area(name)]
        and name not in ("speechseq", "speechseq.__main__")
    ]
    assert not wrong
    # models never import training code, the CLI or anything but models and the core's leaves
    for name, targets in graph.items():
        if name.startswith("speechseq.models"):
            assert all(t.startswith("speechseq.models") for t in targets), (name, targets)


def test_no_module_imports_one_that_imports_it_back(graph):
    cycles = []

    def visit(name: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for target in sorted(graph[name]):
            if target in on_path:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in done:
                visit(target, [*path, target], on_path | {target}, done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name], {name}, done)
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    real = [
        c for c in cycles if not any(a.startswith(f"{b}.") for a, b in zip(c, c[1:], strict=False))
    ]
    assert not real


def test_no_module_is_long_without_a_stated_reason():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= set(LONGER), long
    assert all(n <= 1.2 * MAX_LINES for n in long.values()), long


@pytest.mark.parametrize(
    "code",
    [
        "import speechseq",
        "import speechseq.cli",
        "from speechseq import pretrained; pretrained.default_recognizer_path()",
    ],
)
def test_start_up_loads_no_torch(code):
    check = f"{code}\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", check], check=True)


def test_help_runs_without_torch():
    check = (
        "import sys\nfrom speechseq.cli import main\nsys.argv = ['speechseq', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "transcribe" in result.stdout and "synthesize" in result.stdout


def test_the_lazy_names_load_on_use():
    import speechseq

    assert speechseq.Transcriber.__module__ == "speechseq.asr.transcriber"
    assert speechseq.Speaker.__module__ == "speechseq.tts.speaker"
    with pytest.raises(AttributeError):
        speechseq.NoSuchName  # noqa: B018
