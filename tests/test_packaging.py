"""The package as pip installs it (pyproject.toml): the plain install is the app and the command line
without TensorFlow or Keras, at requirements.txt's versions; every subpackage and every bundled model
file goes in; the entry points exist; importing the package loads none of its layers."""
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT, run_script

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def requirement_lines(name: str) -> set[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return {normal(line) for line in lines if line and not line.startswith("-r")}


def normal(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).replace('"', "'").lower()


def package_name(requirement: str) -> str:
    return re.split(r"[=<>;!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_plain_install_has_no_tensorflow_and_the_pins_are_requirements_txt():
    base = {normal(r) for r in PROJECT["dependencies"]}
    train = {normal(r) for r in PROJECT["optional-dependencies"]["train"]}
    assert not {package_name(r) for r in base} & {"tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "torch"}
    assert {"ai-edge-litert", "numpy", "pillow", "pydicom", "customtkinter", "tkinterdnd2", "fpdf2"} <= \
        {package_name(r) for r in base}
    assert {"tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "matplotlib"} <= {package_name(r) for r in train}
    # the same versions as requirements.txt, which setup.sh installs: nothing more, nothing less
    assert base | train == requirement_lines("requirements.txt")
    assert {normal(r) for r in PROJECT["optional-dependencies"]["dev"]} == requirement_lines("requirements-dev.txt")


def test_every_subpackage_and_bundled_model_is_packaged():
    subpackages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "fracture_detection").rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == subpackages | {"fracture_detection.weights"}
    assert SETUPTOOLS["package-dir"]["fracture_detection.weights"] == "weights"
    patterns = SETUPTOOLS["package-data"]["fracture_detection.weights"]
    models = [p.name for p in (ROOT / "weights").iterdir() if p.suffix in (".tflite", ".json")]
    assert models and all(any(p.match(pat) for pat in patterns) for p in (ROOT / "weights").iterdir()
                          if p.name in models)
    from fracture_detection.app import desktop
    assert all((desktop.ICON_DIR / name).is_file() for name in desktop.ICONS.values())


def test_the_keras_files_stay_in_the_clone_and_the_weights_within_their_budget():
    """weights/ keeps the fracture models' .keras files to fine-tune from (the clone), but the wheel and
    the standalone build (which copies the installed package's weights) carry the .tflite files only."""
    from pathlib import PurePath
    patterns = SETUPTOOLS["package-data"]["fracture_detection.weights"]
    assert not any(PurePath(f"fracture_{p}.keras").match(pat) for p in ("elbow", "hand", "shoulder")
                   for pat in patterns)
    assert '--add-data "$package/weights:' in (ROOT / "scripts" / "build_app.sh").read_text()  # the installed copy
    size = sum(f.stat().st_size for f in (ROOT / "weights").iterdir() if f.is_file())
    assert size <= 100e6, f"weights/ holds {size / 1e6:.1f} MB, over its 100 MB budget"


def test_keras_files_are_stored_deflated_and_read_back_alike(tmp_path):
    import zipfile
    from fracture_detection.io import files
    path = tmp_path / "m.keras"
    payload = {"config.json": b'{"a": 1}' * 50, "model.weights.h5": bytes(range(256)) * 400}
    with zipfile.ZipFile(path, "w") as z:  # as Keras writes it: stored, not compressed
        for name, data in payload.items():
            z.writestr(name, data)
    before = path.stat().st_size
    files.deflate_zip(path)
    with zipfile.ZipFile(path) as z:
        assert [i.filename for i in z.infolist()] == list(payload)
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
        assert {name: z.read(name) for name in payload} == payload
    assert path.stat().st_size < before and not list(tmp_path.glob(".*"))  # no temporary file left
    for bundled in (ROOT / "weights").glob("*.keras"):  # the bundle's, as save_model writes them
        with zipfile.ZipFile(bundled) as z:
            assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist()), bundled.name


def test_entry_points_and_version():
    import fracture_detection
    from fracture_detection import cli
    assert re.fullmatch(r"\d+\.\d+\.\d+", fracture_detection.__version__)
    for target in [*PROJECT["scripts"].values(), *PROJECT["gui-scripts"].values()]:
        module, func = target.split(":")
        assert module == "fracture_detection.cli" and callable(getattr(cli, func)), target
    assert set(PROJECT["scripts"]) == {"fracture-screen"} and set(PROJECT["gui-scripts"]) == {"fracture-screen-gui"}
    for script in ("predictions.py", "GUI.py"):
        assert run_script(script, "--version").stdout.strip() == f"fracture-screening {fracture_detection.__version__}"


def test_importing_the_package_loads_no_layer():
    code = ("import sys, fracture_detection; "
            "print(sorted(m for m in sys.modules if m.startswith('fracture_detection.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_default_weights_fall_back_to_the_installed_copy(tmp_path, monkeypatch):
    from fracture_detection.models import artifacts
    installed = tmp_path / "installed"
    installed.mkdir()
    (installed / "body_part.json").write_text("{}")
    monkeypatch.setattr(artifacts, "INSTALLED_WEIGHTS", installed)
    assert artifacts.default_weights() == artifacts.CHECKOUT_WEIGHTS   # a checkout's own weights first
    monkeypatch.setattr(artifacts, "CHECKOUT_WEIGHTS", tmp_path / "no-checkout" / "weights")
    assert artifacts.default_weights() == installed


@pytest.mark.slow
def test_python_module_dispatches_to_the_command_line(tmp_path):
    """`python -m fracture_detection FILE --json` is the command line: the same lines as predictions.py."""
    film = sorted((ROOT / "tests" / "fixtures" / "folders" / "Hand").rglob("*.jpg"))[0]
    module = subprocess.run([sys.executable, "-m", "fracture_detection", str(film), "--json"], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    script = run_script("predictions.py", film, "--json")
    assert module.returncode == 0, module.stderr
    assert module.stdout == script.stdout and script.stdout.count("\n") == 1


@pytest.mark.slow
def test_analyse_returns_the_json_lines_records(tmp_path):
    """The Python API gives exactly what --json prints, error records included."""
    import json

    from fracture_detection import analyse
    films = sorted((ROOT / "tests" / "fixtures" / "folders").rglob("*.jpg"))[:3]
    missing = tmp_path / "missing.png"
    lines = run_script("predictions.py", *films, missing, "--json", check=False)
    assert lines.returncode == 1
    assert analyse([*films, missing]) == [json.loads(line) for line in lines.stdout.splitlines()]
    assert analyse(films[0]) == [json.loads(lines.stdout.splitlines()[1])]


@pytest.mark.slow
def test_pip_install_from_a_clean_clone_has_no_tensorflow_and_analyses_a_film(tmp_path):
    """`pip install .` in a fresh virtual environment (downloads the runtime packages: about 30 s):
    no TensorFlow, no Keras, and fracture-screen --json analyses a fixture film outside the checkout."""
    import json
    import shutil
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: this test installs from a clean clone of the committed tree")
    clone, venv = tmp_path / "clone", tmp_path / "venv"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "."], cwd=clone,
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, timeout=120).stdout.lower()
    assert "fracture-screening==" in listed and "ai-edge-litert==" in listed
    assert not re.search(r"^(tensorflow|tensorflow-cpu|keras|torch)==", listed, re.M), listed
    installed = next((venv / "lib").glob("python3*/site-packages/fracture_detection/weights"))
    assert list(installed.glob("*.tflite")) and not list(installed.glob("*.keras"))  # the app runs LiteRT only
    film = sorted((ROOT / "tests" / "fixtures" / "folders" / "Hand" / "fractured").glob("*.jpg"))[0]
    proc = subprocess.run([str(venv / "bin" / "fracture-screen"), str(film), "--json"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["path"] == str(film) and record["body_part"] == "hand" and record["model"] == "fracture_hand"
    assert proc.stdout == run_script("predictions.py", film, "--json").stdout   # the installed models are the bundled ones
