#!/usr/bin/env python3
"""Size and start time of the standalone app (scripts/build_app.sh), as the README reports them.

    python benchmarks/standalone_start.py [--app dist/fracture-screening/fracture-screening] [--runs 5]

Prints the folder's size (du), then the median and range over --runs runs (after one warm-up run, so
the files are in the page cache) of: the executable on one fixture film with --json, whole process;
and the app opened on that film under Xvfb (or $DISPLAY) to its window (the first idle after the
window is built) and to the first result shown, from the app's milestones (FRACTURE_APP_TIMING).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import read_milestones  # noqa: E402  the same milestones as the app's own benchmark
FILM = sorted((ROOT / "tests" / "fixtures" / "folders" / "Hand" / "fractured").glob("*.jpg"))[0]


def json_run(app: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run([str(app), str(FILM), "--json"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or '"finding"' not in proc.stdout:
        sys.exit(f"the app failed: {proc.stderr}")
    return time.perf_counter() - t


def app_run(app: Path, env: dict) -> tuple[float, float]:
    t0 = time.time()
    proc = subprocess.Popen([str(app), str(FILM)], env=dict(env, FRACTURE_APP_TIMING="1"),
                            stderr=subprocess.PIPE, text=True)
    try:
        marks = read_milestones(proc, t0)
    finally:
        proc.terminate()
        proc.wait()
    return marks["window"], marks["first_result"]


def spread(values) -> str:
    return f"median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f}, {len(values)} runs)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--app", type=Path, default=ROOT / "dist" / "fracture-screening" / "fracture-screening")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    size = subprocess.run(["du", "-sm", str(args.app.parent)], capture_output=True, text=True).stdout.split()[0]
    print(f"size: {size} MiB ({args.app.parent})")
    env, xvfb = dict(os.environ), None
    if not env.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", ":96", "-screen", "0", "1280x900x24"], stderr=subprocess.DEVNULL)
        env["DISPLAY"] = ":96"
        time.sleep(1)
    try:
        json_run(args.app)
        print("--json, one film, whole process:", spread([json_run(args.app) for _ in range(args.runs)]))
        app_run(args.app, env)
        runs = [app_run(args.app, env) for _ in range(args.runs)]
        print("app to window:", spread([w for w, _ in runs]))
        print("app to first result:", spread([r for _, r in runs]))
    finally:
        if xvfb:
            xvfb.terminate()


if __name__ == "__main__":
    main()
