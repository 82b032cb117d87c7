"""predictions.py --report: one PDF for a batch, read back with pypdf."""
import shutil
import time

import numpy as np

from conftest import FOLDERS, run_script


def test_predictions_writes_one_report_for_a_batch(tiny_weights, tmp_path):
    from pypdf import PdfReader

    from fracture_detection.chain import decisions
    from fracture_detection.app import presentation as pres
    src = sorted((FOLDERS / "Hand").rglob("*.jpg"))[:3] + sorted((FOLDERS / "Leg").rglob("*.jpg"))[:1]
    folder = tmp_path / "batch"
    folder.mkdir()
    for f in src:
        shutil.copy(f, folder / f.name)
    (folder / "cut.jpg").write_bytes(src[0].read_bytes()[:250])
    out = tmp_path / "out" / "batch.pdf"
    proc = run_script("predictions.py", folder, "--json", "--report", out, "--weights", tiny_weights, check=False)
    assert proc.returncode == 1, "one input could not be read"
    import json
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    reader = PdfReader(out)
    pages = [" ".join(p.extract_text().split()) for p in reader.pages]
    assert len(pages) == 1 + len(results) == 6
    summary = pages[0]
    order = sorted(results, key=lambda r: pres.suspicion_key(type("P", (), r)))
    positions = [summary.index(r["path"].rsplit("/", 1)[-1]) for r in order]
    assert positions == sorted(positions), "the summary lists the most suspicious first"
    assert "Study verdict" in summary and time.strftime("%Y-%m-%d") in summary
    for r in results:
        name = r["path"].rsplit("/", 1)[-1]
        k = next(i for i, text in enumerate(pages[1:], 1) if f"· {name}" in text)
        text, page = pages[k], reader.pages[k]
        assert pres.finding_text(r["finding"]) in text and "not a diagnosis" in text
        if r["finding"] == "error":
            assert "No picture: The file cut.jpg" in text and not page.images
            continue
        assert page.images and np.asarray(page.images[0].image.convert("L")).std() > 5
        if r["fracture_probability"] is not None:
            p, thr, *_ = decisions.format_probabilities(r["fracture_probability"], r["threshold"],
                                                        *r["uncertain_band"])
            assert f"Fracture probability {p} (threshold {thr};" in text and "fracture_" in text


def test_report_that_cannot_be_written_is_one_sentence(tiny_weights, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_script("predictions.py", sorted(FOLDERS.rglob("*.jpg"))[0], "--report", blocker / "r.pdf",
                      "--weights", tiny_weights, check=False)
    assert proc.returncode == 2
    assert "the report could not be written" in proc.stderr and "Traceback" not in proc.stderr
