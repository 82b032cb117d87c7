"""predictions.py --report: one PDF for a batch, read back with pypdf."""
import shutil
import time

import numpy as np
from PIL import Image

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
    assert time.strftime("%Y-%m-%d") in summary
    assert "Study verdict" not in summary and "in 1 study" not in summary, \
        "unrelated films in one plain folder are not one study"
    assert f"{len(results)} images: {len(results)} images read on their own" in summary
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
            p, low, high = decisions.format_probabilities(r["fracture_probability"], *r["uncertain_band"])
            assert f"Fracture probability {p} · Likely FRACTURE from {high} · No fracture below {low}" in text
            assert "fracture_" in text
    for k, text in enumerate(pages, 1):
        assert f"Page {k} of 6" in text and "Patient or accession:" in text, "every page says whose and which"
    proc = run_script("predictions.py", *sorted(folder.glob("*.jpg"))[:3], "--one-study", "--report", out,
                      "--weights", tiny_weights, check=False)
    summary = " ".join(PdfReader(out).pages[0].extract_text().split())
    assert "3 images: 1 study of several views" in summary and "Study verdict" in summary


def test_report_that_cannot_be_written_is_one_sentence(tiny_weights, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_script("predictions.py", sorted(FOLDERS.rglob("*.jpg"))[0], "--report", blocker / "r.pdf",
                      "--weights", tiny_weights, check=False)
    assert proc.returncode == 2
    assert "the report could not be written" in proc.stderr and "Traceback" not in proc.stderr


def fake(path, finding, part="hand", p=None, prob=0.95):
    from fracture_detection.chain.predictor import Prediction
    analysed = finding in ("fractured", "uncertain", "normal")
    p = {"fractured": 0.9, "uncertain": 0.6, "normal": 0.1}.get(finding) if p is None else p
    return Prediction(str(path), body_part=part if analysed or finding == "not_supported" and part else None,
                      body_part_probability=prob if part else None, fracture_probability=p if analysed else None,
                      finding=finding, uncertain_band=[0.3, 0.8] if analysed else None,
                      message=None if analysed else "Not analysed.")


def test_films_are_one_study_only_when_opened_together_or_the_folders_say_so():
    from fracture_detection.app.presentation import group_studies
    flat = [f"/x/batch/{n}.jpg" for n in ("hand", "elbow", "shoulder", "chest", "hand2", "knee")]
    assert [len(s.members) for s in group_studies(flat)] == [1] * 6, "a plain folder is a list of films"
    mura = [f"/m/XR_HAND/patient00012/study1_positive/image{k}.png" for k in (1, 2, 3)] + \
        ["/m/XR_HAND/patient00013/study1_negative/image1.png", "/m/other/x.png"]
    studies = group_studies(mura)
    assert [s.members for s in studies] == [[0, 1, 2], [3], [4]]
    assert studies[0].label == "patient00012 / study1_positive"
    assert studies[0].file_stem() == "patient00012_study1_positive" and studies[1].file_stem() == "image1"
    one = group_studies(["/c/case32/a.png", "/c/case32/b.png", "/c/case32/c.png"], one_study=True)
    assert len(one) == 1 and one[0].members == [0, 1, 2] and one[0].file_stem() == "case32"


def test_a_view_of_another_part_does_not_count_for_the_study_verdict():
    from fracture_detection.app.presentation import Study
    preds = [fake("a.png", "normal"), fake("b.png", "normal"), fake("c.png", "fractured", part="elbow"),
             fake("d.png", "not_supported", part=None)]
    s = Study("k", "case", [0, 1, 2, 3])
    assert s.part(preds) == "hand" and s.counted(preds) == [0, 1]
    assert s.verdict(preds) == "normal", "an elbow film in a hand study is not the hand's fracture"
    assert s.count_text(preds) == "2 views"
    line = s.opened_line(preds, lambda i: preds[i].path)
    assert line == "4 films opened, 2 left out: c.png (read as elbow), d.png (not analysed)"
    assert Study("k", "case", [0, 1]).opened_line(preds) == "2 films opened, all counted"
    assert Study("k", "case", [0]).opened_line(preds) is None
    assert Study("k", "case", [3, 3]).opened_line(preds) == "2 films opened, none analysed"
    preds[1] = fake("b.png", "uncertain")
    assert s.verdict(preds) == "uncertain" and s.count_text(preds) == "1 of 2 views"
    tie = [fake("a.png", "normal", prob=0.6), fake("b.png", "fractured", part="elbow", prob=0.99)]
    assert Study("t", "tie", [0, 1]).part(tie) == "elbow", "a tie goes to the surer reading"


def test_report_pages_say_whose_which_page_and_when(tmp_path):
    import datetime as dt

    from pypdf import PdfReader

    from fracture_detection.app.presentation import group_studies
    from fracture_detection.app.report import time_stamp, write_report
    preds = [fake(tmp_path / "patient00001" / "study1" / f"image{k}.png", f, part=part)
             for k, (f, part) in enumerate((("fractured", "hand"), ("normal", "hand"), ("fractured", "elbow")), 1)]
    preds[0].regions = [{"box": [2, 2, 20, 20], "score": 0.9}]
    preds[0].image_shape = (64, 64)
    preds[2].regions = [{"box": [2, 2, 20, 20], "score": 0.9}, {"box": [30, 30, 50, 50], "score": 0.6}]
    preds[2].image_shape = (64, 64)
    out = tmp_path / "r.pdf"
    write_report(out, preds, studies=group_studies([p.path for p in preds]),
                 fields={"Patient or accession": "ACC-77"}, picture=lambda p: Image.new("L", (64, 64), 128),
                 now=dt.datetime(2026, 11, 30, 9, 12, tzinfo=dt.timezone.utc))
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(out).pages]
    assert len(pages) == 4
    for k, text in enumerate(pages, 1):
        assert "Patient or accession: ACC-77" in text and f"Page {k} of 4" in text
        assert "2026-11-30 09:12 UTC" in text
    assert "patient00001 / study1 (hand): Likely FRACTURE (1 of 2 views)" in pages[0]
    assert "3 films opened, 1 left out: image3.png (read as elbow)" in pages[0]
    assert "1 region, labelled with its score" in pages[1] + pages[2]
    assert "2 regions, each labelled with its score" in pages[1] + pages[2]
    cet = dt.timezone(dt.timedelta(hours=1), "CET")
    assert time_stamp(dt.datetime(2026, 11, 30, 10, 12, tzinfo=cet)) == "2026-11-30 10:12 CET, UTC+01:00"
    assert time_stamp(dt.datetime(2026, 11, 30, 4, 12, tzinfo=dt.timezone(-dt.timedelta(hours=5)))) == \
        "2026-11-30 04:12 UTC-05:00"

