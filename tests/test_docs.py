"""The tutorial's snippets are tests: every code block of ``docs/*.md`` runs, and its output must match.

How a chapter is read (docs/README.md, "How the snippets are tested", says the same for writers):

* ```` ```python ```` blocks run in order, in one namespace per chapter, with the chapter's own
  temporary folder as the working directory. minicnn's random stream starts from
  ``manual_seed(0)`` at the chapter's start and runs on from block to block, as for a reader
  who runs the blocks one after the other (so do NumPy's print options and minicnn's thread
  count, which are put back for the rest of the suite after each block). What a block prints must match the ```` ```text ````
  block right after it; a block with no ```` ```text ```` block after it must print nothing.
* ```` ```console ```` blocks are terminal sessions: each ``$ command`` line (``\\`` continues it) runs
  in bash in the same folder (which links this checkout's ``bench/``, so ``python bench/run.py``
  works as from the checkout), with this checkout first on ``PYTHONPATH``; the lines after it, up
  to the next ``$``, are its expected output (stdout and stderr together).
* In expected output, ``...`` matches any text (doctest's ELLIPSIS). ``~`` before a number marks a
  result that may move a little with the machine's arithmetic (a short training run's loss):
  ``~85.7`` matches a number within 10% of 85.7, ``~1e-16±1e-15`` one within 1e-15 of it,
  ``~2.0±50%`` one within 50%, so a stale number fails. ``≈`` before a number (``≈41.3 ms``) marks
  a timing, measured on the machine the text names: it matches any number. Trailing spaces and
  blank lines at either end are ignored, and a run of spaces inside a line matches a run of any
  length (doctest's NORMALIZE_WHITESPACE, but leading indentation still counts).
* A comment on the line before a block changes what happens to it:
  ``<!-- docs: skip REASON -->`` shows the block without running it (the reason is required);
  ``<!-- docs: needs gpu -->`` runs it only where CuPy sees an NVIDIA GPU (skipped, saying so, elsewhere);
  ``<!-- docs: quote PATH -->`` does not run the block but checks that its lines are in the file
  PATH (relative to the repository), in order and together, so quoted engine code cannot rot.
  ``<!-- docs: slow -->`` runs the block here as any other; the chapter's notebook
  (``docs/notebooks.py``) tags it, and ``tests/test_notebooks.py`` leaves it out: a measurement or a
  training run that this file already runs and checks is not run a second time.
  A chapter that reads the real MNIST says ``<!-- docs: needs mnist -->`` once, anywhere: without
  the data its blocks are skipped (failed under ``CI=true``, as ``tests/conftest.py`` does).

Each block is one test (``test_docs.py::test_block[04-lenet5.md:120]``); running a block first runs
the blocks before it in its chapter, once. ``python tests/test_docs.py --update docs/NAME.md`` runs a
chapter and rewrites the output blocks that do not match, and ``--update --remeasure`` also puts this
run's values into the ``~N`` and ``≈N`` numbers (a writer's tool, to run on an idle machine; read the diff after).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import traceback
from dataclasses import dataclass, field

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
MAX_PROSE_WORDS = 1500          # per chapter, text outside code and output blocks
SHELL_TIMEOUT = 300

PRINT_OPTIONS = np.get_printoptions()    # NumPy's defaults: every chapter starts from them
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*docs:\s*(skip|needs|quote|slow)\b\s*(.*?)\s*-->\s*$")
RUN_KINDS = {"python", "console"}
DISPLAY_KINDS = {"text", "", "c", "cuda", "diff"}      # shown, never run (text: an output block)


@dataclass
class Block:
    chapter: str
    line: int                      # 1-based line of the opening fence
    kind: str
    code: str
    marker: tuple | None = None    # ("skip", reason) / ("needs", "gpu") / ("quote", path)
    output: "Block | None" = None  # the ```text block right after a python block
    body_start: int = 0            # 0-based index of the first line inside the fence
    body_end: int = 0              # 0-based index of the closing fence


@dataclass
class Chapter:
    name: str
    lines: list
    blocks: list = field(default_factory=list)       # every fenced block, in order
    needs_mnist: bool = False


def parse(path) -> Chapter:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    chapter = Chapter(os.path.basename(path), lines)
    i, pending = 0, None
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line.strip())
        if m:
            kind, arg = m.groups()
            if kind == "needs" and arg == "mnist":
                chapter.needs_mnist = True
            else:
                pending = (kind, arg, i + 1)
            i += 1
            continue
        f = FENCE.match(line)
        if not f:
            if line.strip() and pending is not None:
                raise ValueError(f"{chapter.name}:{pending[2]}: a docs marker must come right before a code block")
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{chapter.name}:{i + 1}: code block not closed")
        block = Block(chapter.name, i + 1, f.group(1), "\n".join(lines[i + 1:end]), None, None, i + 1, end)
        if pending is not None:
            block.marker = pending[:2]
            pending = None
        if block.kind not in RUN_KINDS | DISPLAY_KINDS:
            raise ValueError(f"{chapter.name}:{block.line}: unknown block kind {block.kind!r}")
        if block.kind == "text" and chapter.blocks and chapter.blocks[-1].kind == "python" \
                and chapter.blocks[-1].output is None and _only_blank(lines, chapter.blocks[-1].body_end + 1, i):
            chapter.blocks[-1].output = block
        chapter.blocks.append(block)
        i = end + 1
    return chapter


def _only_blank(lines, start, stop):
    return all(not lines[k].strip() for k in range(start, stop))


def chapters() -> list:
    return sorted(f for f in os.listdir(DOCS) if f.endswith(".md")) if os.path.isdir(DOCS) else []


def runnable(chapter: Chapter) -> list:
    return [b for b in chapter.blocks if b.kind in RUN_KINDS or (b.marker and b.marker[0] == "quote")]


# --------------------------------------------------------------------------- matching output

NUMBER = r"[-+]?(?:\d[\d,]*)?\.?\d+(?:[eE][-+]?\d+)?"
TOLERANCE = 0.10        # ~N matches a number within 10% of N unless it says its own (~N±T, ~N±T%)
APPROX = re.compile(r"(~|≈)(" + NUMBER + r")(?:±(" + NUMBER + r")(%?))?")


def normalise(text: str) -> str:
    """Trailing spaces and blank lines at either end go; runs of spaces inside a line count as one
    (numbers of other widths shift a table's columns)."""
    lines = (re.sub(r"(?<=\S)[ \t]+", " ", line.rstrip()) for line in text.strip("\n").split("\n"))
    return "\n".join(lines).strip("\n")


def tidy(text: str) -> str:
    """The text as the docs should show it: trailing spaces and blank lines at either end removed."""
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).strip("\n")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def pattern(expected: str):
    """``(regex, checks)`` of an expected output: ``...`` is any text; ``~N`` and ``≈N`` a number (a
    group), and ``checks`` has one entry per group: ``(low, high)`` for ``~N`` (N within 10%, or
    ``~N±T`` within T, ``~N±T%`` within T percent), None for ``≈N`` (a timing: any number)."""
    parts = re.split(r"(\.\.\.|(?:~|≈)" + NUMBER + r"(?:±" + NUMBER + r"%?)?)", normalise(expected))
    regex, checks = [], []
    for p in parts:
        m = APPROX.fullmatch(p)
        if p == "...":
            regex.append(".*?")
        elif m:
            regex.append(f"({NUMBER})")
            sign, value, tol, percent = m.groups()
            value = _number(value)
            if sign == "≈":
                checks.append(None)
            else:
                width = abs(value) * (_number(tol) / 100 if percent else TOLERANCE) if (tol is None or percent) \
                    else _number(tol)
                checks.append((value - width, value + width))
        else:
            regex.append(re.escape(p))
    return re.compile("".join(regex) + r"\Z", re.DOTALL), checks


def _found(expected: str, actual: str):
    regex, checks = pattern(expected)
    return regex.match(normalise(actual)), checks


def remeasured(expected: str, actual: str) -> str:
    """``expected`` with each ``~N``/``≈N`` number replaced by the one the actual output has there
    (the mark and any ``±T`` kept)."""
    values = iter(_found(expected, actual)[0].groups())
    return APPROX.sub(lambda m: m.group(1) + next(values) + (f"±{m.group(3)}{m.group(4)}" if m.group(3) else ""),
                      expected)


def matches(expected: str, actual: str) -> bool:
    found, checks = _found(expected, actual)
    if found is None:
        return False
    return all(c is None or c[0] <= _number(v) <= c[1] for c, v in zip(checks, found.groups()))


def mismatch(where, expected, actual) -> str:
    return f"{where}: the output differs from the text.\n--- expected (docs)\n{tidy(expected)}\n--- actual\n{tidy(actual)}"


# --------------------------------------------------------------------------- running a chapter

class Result:
    def __init__(self, status, message="", outputs=None):
        self.status, self.message, self.outputs = status, message, outputs   # outputs: actual text(s) for --update


def gpu_available() -> bool:
    try:
        import minicnn
        return minicnn.cuda_available()
    except Exception:
        return False


def shell_commands(code: str):
    """``[(command, expected output, the command's lines as written), ...]`` of a console block."""
    out, lines, k = [], code.split("\n"), 0
    while k < len(lines):
        if not lines[k].startswith("$ "):
            raise ValueError(f"console block: expected a line starting with '$ ', got {lines[k]!r}")
        first = k
        while lines[k].endswith("\\"):
            k += 1
        written = lines[first:k + 1]
        k += 1
        expected = []
        while k < len(lines) and not lines[k].startswith("$ "):
            expected.append(lines[k])
            k += 1
        out.append(("\n".join(written)[2:], "\n".join(expected), written))
    return out


class ChapterRun:
    """Runs the blocks of one chapter in order, once each, in its own folder and namespace."""

    def __init__(self, chapter: Chapter, folder: str):
        import minicnn
        self.chapter, self.folder = chapter, folder
        self.namespace = {"__name__": "__docs__"}
        minicnn.manual_seed(0)           # a chapter starts from seed 0, and its random stream runs on
        self.random_state = minicnn.backend.generator("cpu").bit_generator.state   # from block to block
        self.print_options = dict(PRINT_OPTIONS)       # as do its np.set_printoptions and set_num_threads,
        self.threads = minicnn.get_num_threads()       # apart from other chapters and tests
        self.results = []           # one Result per runnable block, in order
        self.blocks = runnable(chapter)
        data = os.path.abspath(os.environ.get("MINICNN_DATA") or os.path.join(REPO, "..", "shared", "data"))
        self.env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        MINICNN_DATA=data, MPLBACKEND="Agg", COLUMNS="100")
        os.symlink(os.path.join(REPO, "bench"), os.path.join(folder, "bench"))   # `python bench/run.py` works

    def result(self, index) -> Result:
        while len(self.results) <= index:
            k = len(self.results)
            failed = next((r for r in self.results if r.status == "failed"), None)
            if failed is not None:
                self.results.append(Result("skipped", f"an earlier block of {self.chapter.name} failed"))
            else:
                self.results.append(self._run(self.blocks[k]))
        return self.results[index]

    def _run(self, block: Block) -> Result:
        where = f"{block.chapter}:{block.line}"
        if block.marker and block.marker[0] == "skip":
            if not block.marker[1]:
                return Result("failed", f"{where}: 'docs: skip' needs a reason")
            return Result("skipped", f"not run ({block.marker[1]})")
        if block.marker and block.marker[0] == "quote":
            return self._quote(block, where)
        if block.marker and block.marker[0] == "needs":
            if block.marker[1] != "gpu":
                return Result("failed", f"{where}: unknown need {block.marker[1]!r} (gpu or mnist)")
            if not gpu_available():
                return Result("skipped", "needs an NVIDIA GPU with CuPy (minicnn.cuda_available() is False here)")
        import minicnn
        previous = os.getcwd()
        os.chdir(self.folder)
        minicnn.manual_seed(0)
        minicnn.backend.generator("cpu").bit_generator.state = self.random_state
        outside = np.get_printoptions()
        np.set_printoptions(**self.print_options)
        threads = minicnn.get_num_threads()
        minicnn.set_num_threads(self.threads)
        try:
            return self._python(block, where) if block.kind == "python" else self._console(block, where)
        finally:
            self.random_state = minicnn.backend.generator("cpu").bit_generator.state
            self.print_options = np.get_printoptions()
            np.set_printoptions(**outside)
            self.threads = minicnn.get_num_threads()
            minicnn.set_num_threads(threads)
            os.chdir(previous)

    def _python(self, block, where) -> Result:
        out = io.StringIO()
        try:
            code = compile(block.code, f"{block.chapter}:{block.line}", "exec")
            with contextlib.redirect_stdout(out):
                exec(code, self.namespace)
        except Exception:
            tb = traceback.format_exc()
            return Result("failed", f"{where}: the block raised\n{tb}\n--- it printed\n{out.getvalue()}")
        expected = block.output.code if block.output is not None else ""
        actual = out.getvalue()
        if not matches(expected, actual):
            return Result("failed", mismatch(where, expected, actual), [actual])
        return Result("passed", outputs=[actual])

    def _console(self, block, where) -> Result:
        actuals, problems = [], []
        for cmd, expected, _ in shell_commands(block.code):
            proc = subprocess.run(["bash", "-c", cmd], cwd=self.folder, env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=SHELL_TIMEOUT)
            actuals.append(proc.stdout)
            if not matches(expected, proc.stdout):
                problems.append(mismatch(f"{where} `$ {cmd}` (exit status {proc.returncode})", expected, proc.stdout))
        if problems:
            return Result("failed", "\n\n".join(problems), actuals)
        return Result("passed", outputs=actuals)

    def _quote(self, block, where) -> Result:
        path = os.path.join(REPO, block.marker[1])
        if not os.path.isfile(path):
            return Result("failed", f"{where}: quotes {block.marker[1]}, which does not exist")
        with open(path, encoding="utf-8") as f:
            source = [line.rstrip() for line in f.read().split("\n")]
        quoted = [line.rstrip() for line in textwrap.dedent(block.code).split("\n")]
        n = len(quoted)
        for start in range(len(source) - n + 1):
            if [line.rstrip() for line in textwrap.dedent("\n".join(source[start:start + n])).split("\n")] == quoted:
                return Result("passed")
        return Result("failed", f"{where}: these lines are not in {block.marker[1]} (the code changed? quote it again)")


# --------------------------------------------------------------------------- pytest

CHAPTERS = {name: parse(os.path.join(DOCS, name)) for name in chapters()}
BLOCK_IDS = [(name, k, f"{name}:{b.line}") for name, ch in CHAPTERS.items() for k, b in enumerate(runnable(ch))]
_runs: dict = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    yield _runs
    _runs.clear()


def _chapter_run(name, runs, tmp_path_factory) -> ChapterRun:
    if name not in runs:
        chapter = CHAPTERS[name]
        if chapter.needs_mnist:
            from conftest import require_dataset
            require_dataset("mnist")
        runs[name] = ChapterRun(chapter, str(tmp_path_factory.mktemp(name.replace(".md", ""))))
    return runs[name]


@pytest.mark.parametrize("name,index", [(n, k) for n, k, _ in BLOCK_IDS], ids=[i for _, _, i in BLOCK_IDS])
def test_block(name, index, runs, tmp_path_factory):
    result = _chapter_run(name, runs, tmp_path_factory).result(index)
    if result.status == "skipped":
        pytest.skip(result.message)
    if result.status == "failed":
        pytest.fail(result.message, pytrace=False)


def test_every_chapter_is_in_the_index_with_runnable_blocks_and_at_most_1500_words():
    names = [n for n in CHAPTERS if n != "README.md"]
    assert len(names) >= 7, f"expected the seven chapters in docs/, found {names}"
    with open(os.path.join(DOCS, "README.md"), encoding="utf-8") as f:
        index = f.read()
    for name in names:
        assert f"({name})" in index, f"docs/README.md does not link {name}"
        assert any(b.kind == "python" for b in CHAPTERS[name].blocks), f"{name} has no Python block"
        words = prose_words(CHAPTERS[name])
        assert words <= MAX_PROSE_WORDS, f"{name} has {words} words of prose (at most {MAX_PROSE_WORDS})"


def test_links_and_images_in_the_docs_exist():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    for name, chapter in CHAPTERS.items():
        for target in link.findall("\n".join(chapter.lines)):
            if re.match(r"[a-z]+:", target):        # http:, https:, mailto:
                continue
            path = os.path.normpath(os.path.join(DOCS, target))
            assert os.path.exists(path), f"docs/{name} links {target}, which does not exist"
            if path.endswith(".png"):
                size = os.path.getsize(path)
                assert size < 150_000, f"docs/{name}: {target} is {size} bytes (keep figures small)"


def test_the_output_matcher():
    assert matches("took ≈41.3 ms\nok", "took 7.25 ms\nok  \n")
    assert matches("a ... z", "a b c z") and matches("files:\nx\n...\ndone", "files:\nx\ny\ndone")
    assert not matches("took ≈41.3 ms", "took fast ms") and not matches("12 params", "13 params")
    assert not matches("a\nb", "a\nb\nc") and matches("≈1,234 images", "60,000 images")
    assert matches("name   ≈6.1 ms", "name 16.25 ms") and not matches("  indented", "indented")


def test_a_result_marked_with_a_tilde_must_be_within_its_tolerance():
    # chapter 4's learning rates were shown as ~1.22e-03 / ~2.79e-04 and passed against 2.00e-05 / 1.81e-03
    assert not matches("lr ~1.22e-03", "lr 2.00e-05") and not matches("lr ~2.79e-04", "lr 1.81e-03")
    assert matches("acc ~97.4%", "acc 99.1%") and not matches("acc ~97.4%", "acc 85.0%")
    assert matches("~1,715 of 2,000", "1,800 of 2,000") and not matches("~1,715 of 2,000", "1,900 of 2,000")
    assert matches("dx ~1e-16±1e-15", "dx 7.3e-16") and not matches("dx ~1e-16±1e-15", "dx 2e-15")
    assert matches("loss ~2.0±50%", "loss 2.9") and not matches("loss ~2.0±50%", "loss 3.1")
    assert remeasured("lr ~1.22e-03, ≈0.9 s, ~2±1", "lr 1.3e-03, 4.5 s, 2.5") == "lr ~1.3e-03, ≈4.5 s, ~2.5±1"


def prose_words(chapter: Chapter) -> int:
    inside, words = False, 0
    for line in chapter.lines:
        if FENCE.match(line) or (inside and line.rstrip() == "```"):
            inside = not inside
            continue
        if not inside and not MARKER.match(line.strip()):
            words += len(re.findall(r"[A-Za-z0-9][\w'.,%/-]*", re.sub(r"\]\([^)]*\)|`", " ", line)))
    return words


# --------------------------------------------------------------------------- the writer's tool

def update(path, remeasure=False) -> int:
    """Run a chapter and rewrite the output blocks that do not match (and, with ``remeasure``, the
    ``~N`` numbers of those that do, with this run's values); return the number rewritten."""
    chapter = parse(path)
    lines = list(chapter.lines)
    with tempfile.TemporaryDirectory() as folder:
        run = ChapterRun(chapter, folder)
        edits = []
        for k, block in enumerate(run.blocks):
            result = run.result(k)
            if result.status == "failed" and result.outputs is None:
                print(result.message, file=sys.stderr)
                break
            if result.status == "passed" and remeasure and result.outputs:
                if block.kind == "python" and block.output is not None and APPROX.search(block.output.code):
                    new = remeasured(block.output.code, result.outputs[0])
                    edits.append((block.output.body_start, block.output.body_end, new.split("\n")))
                elif block.kind == "console" and APPROX.search(block.code):
                    body = []
                    for (_, expected, written), actual in zip(shell_commands(block.code), result.outputs):
                        body += written + (remeasured(expected, actual).split("\n") if expected else [])
                    edits.append((block.body_start, block.body_end, body))
                continue
            if result.status != "failed":
                continue
            if block.kind == "python":
                new = tidy(result.outputs[0]).split("\n")
                if block.output is not None:
                    edits.append((block.output.body_start, block.output.body_end, new))
                else:
                    edits.append((block.body_end + 1, block.body_end + 1, ["", "```text", *new, "```"]))
            else:
                body = []
                for (_, expected, written), actual in zip(shell_commands(block.code), result.outputs):
                    body += written
                    kept = tidy(expected if matches(expected, actual) else actual)
                    body += kept.split("\n") if kept else []
                edits.append((block.body_start, block.body_end, body))
            run.results[k] = Result("passed")           # go on with the next block
    for start, stop, new in sorted(edits, reverse=True):
        lines[start:stop] = new
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return len(edits)


if __name__ == "__main__":
    args = sys.argv[1:]
    remeasure = "--remeasure" in args
    args = [a for a in args if a != "--remeasure"]
    if len(args) < 2 or args[0] != "--update":
        sys.exit("usage: python tests/test_docs.py --update [--remeasure] docs/NAME.md [...]")
    sys.path.insert(0, REPO)
    for p in args[1:]:
        print(f"{p}: {update(p, remeasure)} output block(s) rewritten")
