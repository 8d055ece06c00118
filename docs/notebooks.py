"""The chapters as Jupyter notebooks: docs/notebooks/NN-name.ipynb, generated from docs/NN-name.md.

    python docs/notebooks.py            # (re)write every notebook
    python docs/notebooks.py --check    # exit 1, naming them, if a notebook differs from its chapter

The Markdown chapter is the one source. It is read with the parser of tests/test_docs.py, so a block
means the same in both: prose becomes Markdown cells, a ```python block a code cell, a ```console
block a code cell of ``!`` shell lines, and each block's expected output becomes the cell's stored
output (what the reader sees before running anything). Blocks marked ``docs: skip``, ``needs gpu`` or
``slow`` are code cells tagged ``docs-skip``, ``needs-gpu`` or ``slow``; tests/test_notebooks.py
leaves those out when it executes the notebooks (test_docs.py already runs the slow ones). Quoted code
stays a Markdown code block.

The notebooks are committed, so that GitHub shows them and Colab opens them by URL; the test checks
that each one is exactly what this script makes from its chapter, so the two cannot drift apart.

The first cell prepares the notebook: inside a checkout it uses that checkout's minicnn; elsewhere
(Colab) it clones MINICNN_REPOSITORY and installs it with pip. It then works in a scratch folder,
runs/notebooks/NN-name under the checkout (MINICNN_WORK overrides it), with bench/ linked there.
"""
from __future__ import annotations

import json
import os
import re
import sys

import nbformat

DOCS = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(DOCS, "notebooks")
sys.path.insert(0, os.path.join(os.path.dirname(DOCS), "tests"))
from test_docs import MARKER, parse  # noqa: E402  (the chapters' one grammar)

SETUP = '''\
# Set-up (made by docs/notebooks.py): use the minicnn of this checkout, or, outside one (Colab),
# clone MINICNN_REPOSITORY and install it; then work in a scratch folder with bench/ at hand.
import os, subprocess, sys

CHAPTER = "{chapter}"
REPOSITORY = os.environ.get("MINICNN_REPOSITORY", "")      # the git URL of minicnn, needed outside a checkout
root = os.environ.get("MINICNN_ROOT") or next(
    (p for p in [os.getcwd()] + [os.path.abspath(os.path.join(os.getcwd(), *[".."] * k)) for k in (1, 2, 3)]
     if os.path.isfile(os.path.join(p, "minicnn", "autograd.py"))), None)
if root is None:
    if not REPOSITORY:
        raise RuntimeError("not inside a minicnn checkout: set MINICNN_REPOSITORY to its git URL "
                           "(os.environ['MINICNN_REPOSITORY'] = '...') and run this cell again")
    root = os.path.abspath("minicnn-src")
    if not os.path.isdir(root):
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, root], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", root + "[plot]"], check=True)
sys.path.insert(0, root)
os.environ["PYTHONPATH"] = root + os.pathsep + os.environ.get("PYTHONPATH", "")
os.environ.setdefault("MPLBACKEND", "Agg")
work = os.environ.get("MINICNN_WORK") or os.path.join(root, "runs", "notebooks", CHAPTER)
os.makedirs(work, exist_ok=True)
if not os.path.exists(os.path.join(work, "bench")):
    os.symlink(os.path.join(root, "bench"), os.path.join(work, "bench"))
os.chdir(work)
import minicnn
minicnn.manual_seed(0)                      # as the chapter's text was run
print("minicnn from", os.path.dirname(minicnn.__file__), "; working in", work)'''

TAGS = {"skip": "docs-skip", "needs": "needs-gpu", "slow": "slow"}


def _markdown(lines) -> str:
    """Prose for a Markdown cell: marker comments dropped, links to images and chapters fixed for
    a notebook in docs/notebooks/."""
    text = "\n".join(line for line in lines if not MARKER.match(line.strip())).strip("\n")
    text = re.sub(r"\]\(img/", "](../img/", text)
    text = re.sub(r"\]\((\d\d-[\w-]+)\.md(#[^)]*)?\)", r"](\1.ipynb\2)", text)
    return re.sub(r"\]\(README\.md", "](../README.md", text)


def _shell(code: str) -> tuple:
    """A console block as ``!`` lines (``python`` becomes the kernel's interpreter) and its expected output."""
    commands, output, lines, k = [], [], code.split("\n"), 0
    while k < len(lines):
        command = lines[k][2:]
        while command.endswith("\\"):
            k += 1
            command = command[:-1].rstrip() + " " + lines[k].strip()
        commands.append("!" + re.sub(r"^python\b", "{sys.executable}", command))
        k += 1
        while k < len(lines) and not lines[k].startswith("$ "):
            output.append(lines[k])
            k += 1
    return "\n".join(commands), "\n".join(output)


def notebook(path: str):
    """The notebook of one chapter (an nbformat NotebookNode)."""
    chapter = parse(path)
    name = os.path.basename(path)[:-3]
    cells, prose, i = [], [], 0
    outputs = {id(b.output) for b in chapter.blocks if b.output is not None}
    starts = {b.body_start - 1: b for b in chapter.blocks}
    title_done = False
    while i < len(chapter.lines):
        block = starts.get(i)
        if block is None:
            prose.append(chapter.lines[i])
            i += 1
            continue
        if not title_done:                          # the title and opening prose, then the set-up cell
            cells += [nbformat.v4.new_markdown_cell(_markdown(prose)),
                      nbformat.v4.new_code_cell(SETUP.format(chapter=name))]
            prose, title_done = [], True
        i = block.body_end + 1
        if id(block) in outputs:                    # shown as the stored output of its code cell
            continue
        quoted = block.marker and block.marker[0] == "quote"
        if block.kind not in ("python", "console") or quoted:
            prose += chapter.lines[block.body_start - 1:block.body_end + 1]
            continue
        if any(line.strip() for line in prose):
            cells.append(nbformat.v4.new_markdown_cell(_markdown(prose)))
        prose = []
        if block.kind == "python":
            source, expected = block.code, block.output.code if block.output is not None else ""
        else:
            source, expected = _shell(block.code)
        cell = nbformat.v4.new_code_cell(source)
        if block.marker and block.marker[0] in TAGS:
            cell.metadata["tags"] = [TAGS[block.marker[0]]]
            if block.marker[0] == "skip":
                cell.source = f"# The tests do not run this cell: {block.marker[1]}\n" + cell.source
        if expected.strip():
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected.strip("\n") + "\n")]
        cells.append(cell)
    if any(line.strip() for line in prose):
        cells.append(nbformat.v4.new_markdown_cell(_markdown(prose)))
    for k, cell in enumerate(cells):                # stable ids: the same chapter gives the same file
        cell["id"] = f"{name}-{k}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    return nb


def chapters() -> list:
    return sorted(os.path.join(DOCS, f) for f in os.listdir(DOCS) if re.match(r"\d\d-.*\.md$", f))


def text(nb) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def target(path: str) -> str:
    return os.path.join(OUT, os.path.basename(path)[:-3] + ".ipynb")


def main(argv) -> int:
    check = "--check" in argv
    stale = []
    for path in chapters():
        want = text(notebook(path))
        out = target(path)
        have = open(out, encoding="utf-8").read() if os.path.exists(out) else None
        if have == want:
            continue
        if check:
            stale.append(os.path.relpath(out))
            continue
        os.makedirs(OUT, exist_ok=True)
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            f.write(want)
        os.replace(out + ".tmp", out)
        print(f"wrote {os.path.relpath(out)}")
    if stale:
        print("these notebooks differ from their chapters (run python docs/notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
