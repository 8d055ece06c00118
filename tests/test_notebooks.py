"""The chapters' notebooks (docs/notebooks/, made by docs/notebooks.py from docs/*.md): each committed
notebook is exactly what the script makes from its chapter, and each one executes from its first cell
(the set-up) to its last in a Jupyter kernel (nbclient). Cells tagged ``docs-skip`` (the one-minute
training run), ``slow`` (measurements and training runs that test_docs.py already runs and checks) and,
without a GPU, ``needs-gpu`` are left out; the outputs themselves are test_docs.py's business."""
import importlib.util
import os
import sys

import pytest
from conftest import require_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("docs_notebooks", os.path.join(REPO, "docs", "notebooks.py"))
notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notebooks)
nbformat = pytest.importorskip("nbformat")
CHAPTERS = notebooks.chapters()
NAMES = [os.path.basename(p)[:-3] for p in CHAPTERS]


def gpu_available() -> bool:
    import minicnn
    return minicnn.cuda_available()


@pytest.mark.parametrize("path", CHAPTERS, ids=NAMES)
def test_the_committed_notebook_is_made_from_its_chapter(path):
    target = notebooks.target(path)
    assert os.path.exists(target), f"{os.path.relpath(target, REPO)} is missing: run python docs/notebooks.py"
    with open(target, encoding="utf-8") as f:
        assert f.read() == notebooks.text(notebooks.notebook(path)), \
            f"{os.path.relpath(target, REPO)} differs from its chapter: run python docs/notebooks.py"


def test_every_chapter_has_a_notebook_that_opens_with_the_set_up_cell():
    assert len(CHAPTERS) >= 7
    for path in CHAPTERS:
        nb = notebooks.notebook(path)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[1].cell_type == "code"
        assert "pip" in nb.cells[1].source and "MINICNN_REPOSITORY" in nb.cells[1].source
    ch4 = notebooks.notebook(os.path.join(REPO, "docs", "04-lenet5.md"))
    skipped = [c for c in ch4.cells if "docs-skip" in c.metadata.get("tags", [])]
    assert len(skipped) == 1 and skipped[0].source.count("!{sys.executable} -m minicnn") == 2


@pytest.mark.parametrize("path", CHAPTERS, ids=NAMES)
def test_the_notebook_executes(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = notebooks.notebook(path)
    if "<!-- docs: needs mnist -->" in open(path, encoding="utf-8").read():
        require_dataset("mnist")
    left_out = {"docs-skip", "slow"} | (set() if gpu_available() else {"needs-gpu"})
    nb.cells = [c for c in nb.cells if not left_out & set(c.metadata.get("tags", []))]
    monkeypatch.setenv("MINICNN_ROOT", REPO)
    monkeypatch.setenv("MINICNN_WORK", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{os.path.basename(path)}: a cell failed\n{str(exc)[-3000:]}", pytrace=False)
    assert sys.executable
