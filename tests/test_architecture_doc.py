"""``docs/architecture.md`` names only things that exist.

The page follows one download through the modules by name (```download/job_run.py:
JobRun._produce```, ```Pipeline.fetch_catalog```, ```partitions.run_partition```...). When code
moves, those names go stale silently; this test reads every backticked name of the page and
checks it against the source:

* a path (``download/api.py``, ``net/objects/``, ``tests/test_sources*.py``) exists, looked up
  from the repository, the package, or the package's ``download/`` (for ``transfer/...``);
* ``path: Name`` or ``path: Class.method``: the file defines ``Name`` (a class, function or
  assignment), and the class defines ``method`` (itself or through a base class);
* ``Class.method`` alone: some class of the package of that name defines it;
* ``module.name`` (a lower-case module): some module of that name defines ``name``.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "mlhub_widgets"
DOC = ROOT / "docs" / "architecture.md"
#: Where a relative path of the page may start: the repository, the package, the engine.
PATH_BASES = (ROOT, PACKAGE_DIR, PACKAGE_DIR / "download")

#: ``err_report.csv``, ``mlhub_assets.db``: files a download writes, not module names.
FILE_SUFFIXES = {"csv", "db", "gz", "json", "md", "part"}

_PATH = re.compile(r"^[\w.*<>/-]+(\.py|\.md|/)$")
_PATH_WITH_NAME = re.compile(r"^([\w./-]+\.py): ([A-Za-z_]\w*(?:\.\w+)?)$")
_CLASS_ATTR = re.compile(r"^([A-Z]\w*)\.(\w+)(?:\(\))?$")
_MODULE_NAME = re.compile(r"^([a-z_]\w*)\.(\w+)(?:\(\))?$")


class _Defs:
    """What one source file defines: top-level names, and per class its members and bases."""

    def __init__(self, path: Path) -> None:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        self.top: set[str] = set()
        self.classes: dict[str, set[str]] = {}
        self.bases: dict[str, list[str]] = {}
        for node in tree.body:
            self.top |= _bound_names(node)
            if isinstance(node, ast.ClassDef):
                members: set[str] = set()
                for child in node.body:
                    members |= _bound_names(child)
                self.classes[node.name] = members
                self.bases[node.name] = [
                    b.id if isinstance(b, ast.Name) else b.attr
                    for b in node.bases
                    if isinstance(b, ast.Name | ast.Attribute)
                ]


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, ast.ImportFrom | ast.Import):  # re-exports (``__init__.py``)
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, ast.If | ast.Try):
        names: set[str] = set()
        for child in node.body:
            names |= _bound_names(child)
        return names
    return set()


@cache
def _defs(path: Path) -> _Defs:
    return _Defs(path)


@cache
def _sources() -> tuple[Path, ...]:
    return tuple(sorted(PACKAGE_DIR.rglob("*.py")))


def _class_has(name: str, attr: str) -> bool:
    """Some class ``name`` of the package defines ``attr``, itself or through its bases."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for path in _sources():
            defs = _defs(path)
            if cls in defs.classes:
                if attr in defs.classes[cls]:
                    return True
                todo.extend(defs.bases[cls])
    return False


def _find_path(text: str) -> list[Path]:
    for base in PATH_BASES:
        found = sorted(base.glob(text.rstrip("/"))) if "*" in text else [base / text]
        found = [p for p in found if p.is_dir() == text.endswith("/") and p.exists()]
        if found:
            return found
    return []


def _problem(token: str) -> str | None:
    """Why the backticked ``token`` names nothing in the source, or None."""
    m = _PATH_WITH_NAME.match(token)
    if m:
        paths = _find_path(m.group(1))
        if not paths:
            return f"no file {m.group(1)}"
        defs = _defs(paths[0])
        name, _, attr = m.group(2).partition(".")
        if name not in defs.top:
            return f"{m.group(1)} defines no {name}"
        if attr and not (name in defs.classes and _class_has(name, attr)):
            return f"{name} in {m.group(1)} has no {attr}"
        return None
    if "://" in token or token.endswith(":/"):  # a URL scheme, not a path
        return None
    if _PATH.match(token):
        if "<" in token:  # a pattern of a new file ("sources/<kind>.py"): its folder exists
            return None if _find_path(token.split("<")[0]) else f"no folder for {token}"
        if "/" in token.rstrip("/"):
            return None if _find_path(token) else f"no file or folder {token}"
        # a bare name ("attempt.py", "objects/"), in the context of the sentence: it exists
        name = token.rstrip("/")
        found = [p for p in PACKAGE_DIR.rglob(name) if p.is_dir() == token.endswith("/")]
        return None if found else f"no file or folder {token} in the package"
    m = _CLASS_ATTR.match(token)
    if m:
        cls, attr = m.groups()
        if not any(cls in _defs(p).classes for p in _sources()):
            return f"no class {cls}"
        return None if _class_has(cls, attr) else f"class {cls} has no {attr}"
    m = _MODULE_NAME.match(token)
    if m and m.group(2) not in FILE_SUFFIXES:
        module, name = m.groups()
        if module in ("mw", "job") or module in sys.stdlib_module_names:  # the user's, Python's
            return None
        if module == PACKAGE_DIR.name:  # mlhub_widgets.download: a subpackage or module
            exists = (PACKAGE_DIR / name).is_dir() or (PACKAGE_DIR / f"{name}.py").is_file()
            return None if exists else f"no module {module}.{name}"
        files = [p for p in _sources() if module in (p.stem, p.parent.name)]
        files = [p for p in files if p.stem == module or p.name == "__init__.py"]
        if not files:
            return f"no module {module}"
        return None if any(name in _defs(p).top for p in files) else f"{module} has no {name}"
    return None


def _tokens() -> list[str]:
    return sorted(set(re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8"))))


def test_the_check_sees_a_stale_name() -> None:
    assert _problem("net/http11.py: HTTPClient") == "no file net/http11.py"
    assert _problem("transfer/file_writer.py") == "no file or folder transfer/file_writer.py"
    assert (
        _problem("download/job_run.py: JobRun._gone")
        == "JobRun in download/job_run.py has no _gone"
    )
    assert _problem("Pipeline.nothing") == "class Pipeline has no nothing"
    assert _problem("partitions.nothing") == "partitions has no nothing"
    assert _problem("download/api.py: download_dataset") is None
    assert _problem("DownloadJob._produce") is None  # inherited from JobRun
    assert _problem("mlhub_widgets.nothing") == "no module mlhub_widgets.nothing"


def test_every_name_in_the_architecture_page_exists() -> None:
    tokens = _tokens()
    assert len(tokens) > 100  # the page was read
    problems = [f"`{t}`: {p}" for t in tokens if (p := _problem(t)) is not None]
    assert not problems, "docs/architecture.md names what does not exist:\n" + "\n".join(problems)
