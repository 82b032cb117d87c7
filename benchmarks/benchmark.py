#!/usr/bin/env python3
"""Measure what a user waits for, and print the figures with how they were measured.

    python benchmarks/benchmark.py [--images DIR] [--weights DIR] [--folder-size 500]

1. app start: `python GUI.py IMAGE` under the current X display (or a virtual one),
   time to a mapped window (xdotool) and to the first result on screen;
2. warm latency of one image through the chain: read, body part, fracture model and
   heatmap (median and 95th percentile over repeated runs, models already loaded);
3. throughput of `python predictions.py FOLDER --json` on a folder of N images, whole
   process (start-up and model loading included) and steady state in-process;
4. peak resident memory of each, from the operating system (ru_maxrss of the child).
Each measurement runs in its own process so that memory figures do not mix.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fracture_detection.models.runtime import RUNTIMES  # noqa: E402


def default_images() -> Path:
    shared = ROOT.parent / "shared" / "data" / "fracatlas" / "images" / "Non_fractured"
    return shared if shared.is_dir() else ROOT / "tests" / "fixtures" / "folders"


def spawn(cmd, env=None) -> tuple[str, float]:
    """Run a command to the end; returns (its stdout, its own peak resident memory in MiB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[1]} failed with exit status {proc.returncode}")
    return out, usage.ru_maxrss / 1024


def child(args_list) -> tuple[dict, float]:
    """One of this script's sub-measurements in a fresh process: (its JSON, its peak memory in MiB)."""
    out, peak = spawn([sys.executable, __file__, *args_list])
    return json.loads(out.strip().splitlines()[-1]), peak


def measure_latency(weights, image, repeats, runtime):
    from fracture_detection import cli
    cli.quiet_tensorflow()
    from fracture_detection.io.images import load_image
    from fracture_detection.chain.predictor import Predictor
    p = Predictor(weights, runtime=runtime)
    for _ in range(3):  # warm-up: graph tracing, caches
        p.predict_loaded([str(image)], [load_image(image)])[0].heatmap()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        r = p.predict_loaded([str(image)], [load_image(image)])[0]
        r.heatmap()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "repeats": repeats, "finding": r.finding, "runtime": type(p.body).__name__}


def measure_throughput(weights, folder, runtime):
    from fracture_detection import cli
    cli.quiet_tensorflow()
    from fracture_detection.io.images import find_images
    from fracture_detection.chain.predictor import Predictor
    files = find_images(folder)
    p = Predictor(weights, runtime=runtime)
    p.predict(files[:32])
    t = time.perf_counter()
    p.predict(files)
    return {"images": len(files), "images_per_s": len(files) / (time.perf_counter() - t)}


def read_milestones(proc, t0: float) -> dict[str, float]:
    """Seconds from ``t0`` to each milestone the app prints with FRACTURE_APP_TIMING=1 (window, first
    result), read from its stderr until the first result."""
    marks = {}
    for line in proc.stderr:
        if line.startswith("milestone "):
            _, name, ts = line.split()
            marks[name] = float(ts) - t0
        if "first_result" in marks:
            break
    return marks


def app_start(weights, image):
    env = dict(os.environ, FRACTURE_APP_TIMING="1")
    xvfb = None
    if not env.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", ":95", "-screen", "0", "1280x900x24"], stderr=subprocess.DEVNULL)
        env["DISPLAY"] = ":95"
        time.sleep(1)
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, str(ROOT / "GUI.py"), "--weights", str(weights), str(image)],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        marks = read_milestones(proc, t0)
        mapped = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "Fracture screening"],
                                capture_output=True, text=True, env=env).stdout.strip()
    finally:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        if xvfb:
            xvfb.terminate()
    return {"window_s": marks.get("window"), "first_result_s": marks.get("first_result"),
            "window_visible": bool(mapped), "peak_rss_mib": usage.ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--images", type=Path, default=None, help="folder to draw images from")
    ap.add_argument("--folder-size", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="resize the images by this factor (saved as PNG) to measure larger files")
    ap.add_argument("--format", choices=("as-is", "png", "dicom"), default="as-is",
                    help="copy the images as they are, or save them as PNG or 12-bit DICOM (with a window)")
    ap.add_argument("--runtime", choices=RUNTIMES, default="auto",
                    help="how the models run (see fracture_detection/models/runtime.py); the app uses auto")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--arg", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.part == "latency":
        print(json.dumps(measure_latency(a.weights, Path(a.arg), a.repeats, a.runtime)))
        return
    if a.part == "throughput":
        print(json.dumps(measure_throughput(a.weights, Path(a.arg), a.runtime)))
        return

    import numpy as np

    from fracture_detection.io.images import find_images, load_image
    pool = find_images(a.images or default_images())
    image = pool[0]
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; images from {image.parent}")
    tmp = Path(tempfile.mkdtemp())
    try:
        folder = tmp / "folder"
        folder.mkdir()
        pixels = []
        for i in range(a.folder_size):
            src = pool[i % len(pool)]
            from PIL import Image
            if a.scale == 1 and a.format == "as-is":
                shutil.copy(src, folder / f"{i:04d}{src.suffix}")
            else:  # larger files, as scanners export them: upscaled, PNG or 12-bit DICOM with a window
                with Image.open(src) as im:
                    im = im.convert("L").resize((round(im.width * a.scale), round(im.height * a.scale)),
                                                Image.BICUBIC)
                if a.format == "dicom":
                    from fracture_detection.io.synthetic import write_dicom
                    write_dicom(folder / f"{i:04d}.dcm", np.asarray(im).astype(np.uint16) * 16, bits=12,
                                window=(2048, 3500))
                else:
                    im.save(folder / f"{i:04d}.png")
            pixels.append(load_image(next(folder.glob(f"{i:04d}.*"))).shape[:2])
        image = next(folder.glob("0000.*"))

        start = app_start(a.weights, image) if shutil.which("xdotool") and a.runtime == "auto" else None
        lat, lat_mem = child(["--part", "latency", "--arg", str(image), "--weights", str(a.weights),
                              "--repeats", str(a.repeats), "--runtime", a.runtime])
        thr, thr_mem = child(["--part", "throughput", "--arg", str(folder), "--weights", str(a.weights),
                              "--runtime", a.runtime])
        t = time.perf_counter()
        out, cli_mem = spawn([sys.executable, str(ROOT / "predictions.py"), str(folder), "--json",
                              "--weights", str(a.weights), "--runtime", a.runtime])
        whole = time.perf_counter() - t
        lines = out.count("\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"Models run with: {lat['runtime']} (--runtime {a.runtime}); folder images: mean "
          f"{sum(h * w for h, w in pixels) / len(pixels) / 1e6:.2f} megapixels (scale {a.scale:g}, format {a.format})")
    print("\n| what | measured | target (2-core CPU) |\n|---|---|---|")
    if start:
        print(f"| `python GUI.py IMAGE` to window on screen | {start['window_s']:.2f} s | ≤ 1 s |")
        print(f"| ... to first result shown | {start['first_result_s']:.2f} s | ≤ 6 s |")
    print(f"| warm chain, one image (read + body part + fracture + heatmap) | median {lat['median_ms']:.0f} ms, "
          f"p95 {lat['p95_ms']:.0f} ms ({lat['repeats']} runs; finding: {lat['finding']}) | ≤ 100 ms |")
    print(f"| folder, in-process steady state | {thr['images_per_s']:.1f} images/s ({thr['images']} images) "
          f"| ≥ 30 images/s |")
    print(f"| `predictions.py FOLDER --json`, whole process | {lines / whole:.1f} images/s ({lines} images "
          f"in {whole:.1f} s incl. start-up) | |")
    app_mem = f"app {start['peak_rss_mib']:.0f} MiB, " if start else ""
    print(f"| peak memory (resident) | {app_mem}latency run {lat_mem:.0f} MiB, folder run {thr_mem:.0f} MiB, "
          f"predictions.py {cli_mem:.0f} MiB | |")
    print("\nMethod: wall-clock time.perf_counter around each step after 3 warm-up runs; the app's milestones are "
          "printed by GUI.py when FRACTURE_APP_TIMING is set (window: first idle after the window is built; first "
          "result: after it is drawn), measured from the moment the process was spawned. Memory is the operating "
          "system's peak resident set of each process (ru_maxrss from wait4).")


if __name__ == "__main__":
    main()
