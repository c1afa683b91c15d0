"""Tests of mlhub_widgets.download.paths: the on-disk layout, hostile names and extensions."""

from __future__ import annotations

import json
import os
import tarfile
import unicodedata
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlhub_widgets.download.paths import (
    COMMON_ASSET_KEYS,
    MAX_COMPONENT_BYTES,
    asset_extension,
    asset_relpath,
    resolve_inside,
    safe_component,
)
from tests.fixture_paths import NASA_CATALOG

NASA_TAR = NASA_CATALOG

HOSTILE = [
    "",
    ".",
    "..",
    "...",
    "../../etc/passwd",
    "/etc/passwd",
    "/",
    "\\",
    "..\\..\\windows\\system32",
    "C:\\Windows",
    "C:",
    "a/b",
    "a\\b",
    "a\x00b",
    "\x00",
    "line\nbreak",
    "tab\there",
    "bell\x07",
    "del\x7f",
    "CON",
    "con",
    "Con.txt",
    "NUL.tar.gz",
    "nul .txt",
    "COM1",
    "lpt9.json",
    "COM¹",
    "aux",
    "PRN",
    "trailing.",
    "trailing ",
    " leading",
    "x" * 1000,
    "é" * 1000,
    "😀" * 300,
    "cafe\u0301",  # NFD: macOS would store "café" under the NFC bytes
    "ab~0123456789ab",
    "a:b",
    'a"b<c>d|e?f*g',
    "\u202eevil.exe",  # right-to-left override
    "zero\u200bwidth",
    "\udc80surrogate",
    "~",
]

ORDINARY = [
    "labels",
    "image_geotiff",
    "pixel_bounds",
    "nasa_marine_debris_labels_20170323_152750_0e20_17302-29800-16",
    "ref_african_crops_kenya_02_tile_02_20190721",
    "B01",
    "sentinel-2.l2a",
    "with inner spaces",
    ".hidden",
    "a.b.c",
    "ÉtéÖl",
    "数据集",
    "x" * MAX_COMPONENT_BYTES,
    "CONSOLE",
    "café",
    "naïve-ｆｕｌｌ",
    "-rf",
    "COM10",
    "LPT",
]


def test_common_asset_keys() -> None:
    assert (
        frozenset({"documentation", "readme", "test_split", "train_split", "validation_split"})
        == COMMON_ASSET_KEYS
    )


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names_unchanged(name: str) -> None:
    assert safe_component(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_safe(name: str) -> None:
    out = safe_component(name)
    assert out != name
    assert out == safe_component(name)  # stable
    _assert_safe(out)
    assert "~" in out  # marked as changed, so it cannot collide with an unchanged name


def _assert_safe(out: str) -> None:
    assert out and out not in (".", "..")
    assert not any(ch in out for ch in '/\\\x00:*?"<>|')
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in out)
    assert not out.endswith((".", " ")) and not out.startswith(" ")
    assert len(out.encode("utf-8")) <= MAX_COMPONENT_BYTES
    stem = out.split(".", 1)[0].rstrip(" ").upper()
    assert stem not in {"CON", "PRN", "AUX", "NUL"}
    assert not (stem[:3] in ("COM", "LPT") and len(stem) == 4 and stem[3] in "0123456789¹²³")
    assert unicodedata.normalize("NFC", out) == out


def test_hostile_names_distinct_and_readable() -> None:
    outs = [safe_component(n) for n in HOSTILE]
    assert len(set(outs)) == len(HOSTILE)
    assert safe_component("../../etc/passwd").startswith(".._.._etc_passwd~")
    assert safe_component("CON").startswith("_CON~")
    assert safe_component("cafe\u0301").startswith("café~")  # NFC form kept readable
    assert safe_component("café") == "café"
    long_a = safe_component("x" * 1000)
    long_b = safe_component("x" * 999 + "y")
    assert long_a != long_b and long_a.startswith("x" * 150)


def test_hostile_assets_written_to_disk_stay_inside(tmp_path: Path) -> None:
    """Write one file per hostile (collection, item, key): all land inside, all distinct."""
    root = tmp_path / "out" / "dataset"
    root.mkdir(parents=True)
    written = set()
    for i, name in enumerate(HOSTILE):
        for rel in (
            asset_relpath(name, name, name, f"https://h/{i}.tif"),
            asset_relpath("c", None, name, f"https://h/{i}.tif"),
            asset_relpath("c", name, "labels", "https://h/x.geojson"),
        ):
            path = resolve_inside(root, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
            written.add(path)
    on_disk = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == written
    assert len(written) == 3 * len(HOSTILE)
    for p in on_disk:
        assert p.resolve().is_relative_to(root.resolve())


def test_peer_layout_on_nasa_marine_debris() -> None:
    """The paths are exactly the peer's for a real catalogue (2825 distinct files)."""
    paths = set()
    with tarfile.open(NASA_TAR) as tar:
        for m in tar.getmembers():
            parts = m.name.split("/")
            if len(parts) != 4 or not m.isfile():
                continue
            fh = tar.extractfile(m)
            assert fh is not None
            item = json.load(fh)
            for key, asset in item["assets"].items():
                rel = asset_relpath(
                    item["collection"], item["id"], key, asset["href"], asset["type"]
                )
                if key == "documentation":
                    assert rel == PurePosixPath(item["collection"], "_common", "documentation.pdf")
                else:
                    ext = PurePosixPath(asset["href"]).suffix
                    assert rel == PurePosixPath(item["collection"], item["id"], key + ext)
                paths.add(rel)
    assert len(paths) == 2825
    item = "nasa_marine_debris_source_20180224_162902_0f2b_17154-29724-16"
    assert PurePosixPath(f"nasa_marine_debris_source/{item}/image_geotiff.tif") in paths


def test_relpath_layout() -> None:
    href = "https://h/x/documentation.pdf"
    assert asset_relpath("c", "i", "documentation", href) == PurePosixPath(
        "c/_common/documentation.pdf"
    )
    assert asset_relpath("c", "i", "train_split", "https://h/s.csv") == PurePosixPath(
        "c/_common/train_split.csv"
    )
    # a collection-level asset stays at the collection level, even with a common key
    assert asset_relpath("c", None, "documentation", href) == PurePosixPath("c/documentation.pdf")
    assert asset_relpath("c", "i", "labels", "https://h/api/download/REDACTED_01") == PurePosixPath(
        "c/i/labels"
    )
    rel = asset_relpath("..", "../..", "../../x", "https://h/a.tif")
    assert ".." not in rel.parts and len(rel.parts) == 3 and rel.name.endswith(".tif")


@pytest.mark.parametrize(
    ("href", "media_type", "ext"),
    [
        # the peer's substring test got these wrong
        ("https://h/a/image.tiff", None, ".tiff"),
        ("https://h/a/image.TIFF", "image/tiff", ".TIFF"),
        ("https://h/data.json/file", None, ""),
        ("https://h/data.json/file", "image/tiff; application=geotiff", ".tif"),
        ("https://h/file?format=.png", None, ""),
        ("https://h/file?format=.png", "application/pdf", ".pdf"),
        ("https://h/a.png.d/x.jpg", None, ".jpg"),
        ("https://h/a/x.tif#frag.json", None, ".tif"),
        ("https://h/mlhub/v1/download/REDACTED_0123abcd", None, ""),  # the peer asserted here
        ("https://h/mlhub/v1/download/REDACTED_0123abcd", "application/geo+json", ".geojson"),
        # ordinary cases
        ("https://h/labels/x.geojson", "application/geo+json", ".geojson"),
        ("https://h/labels/x.npy", "application/octet-stream", ".npy"),
        ("https://h/a/documentation.pdf", "application/pdf", ".pdf"),
        ("s3://bucket/key/scene.TIF", None, ".TIF"),
        ("./labels.geojson", None, ".geojson"),
        ("relative/path/x.jp2", None, ".jp2"),
        ("https://h/archive.tar.gz", None, ".gz"),
        ("https://h/x%2Etif", None, ".tif"),
        # media type fallbacks
        ("https://h/x", "image/png", ".png"),
        ("https://h/x", "image/jpeg", ".jpg"),
        ("https://h/x", "application/json", ".json"),
        ("https://h/x", "text/csv", ".csv"),
        ("https://h/x", "application/x-npy", ".npy"),
        ("https://h/x", "IMAGE/TIFF; profile=cloud-optimized", ".tif"),
        ("https://h/x", "application/vnd.something+json", ".json"),
        ("https://h/x", "application/octet-stream", ""),
        ("https://h/x", "", ""),
        # not extensions
        ("https://h/.tif", None, ""),
        ("https://h/x.", None, ""),
        ("https://h/x.t i f", None, ""),
        ("https://h/x.a/b", None, ""),
        ("https://h/x.waytoolongextension", None, ""),
        ("http://[::1/x.tif", None, ".tif"),
        ("", None, ""),
    ],
)
def test_asset_extension(href: str, media_type: str | None, ext: str) -> None:
    assert asset_extension(href, media_type) == ext


def test_resolve_inside_rejects_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert resolve_inside(root, "c/i/labels.geojson") == root / "c" / "i" / "labels.geojson"
    assert resolve_inside(root, PurePosixPath("c/x.tif")) == root / "c" / "x.tif"
    for bad in ("../x", "a/../../x", "/etc/passwd", "a/..", "..", "", ".", "\\x", "C:x", "a\x00b"):
        with pytest.raises(ValueError):
            resolve_inside(root, bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        resolve_inside(root, "link/x.tif")


def test_safe_component_type_error() -> None:
    with pytest.raises(TypeError):
        safe_component(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        asset_extension(b"x.tif")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# properties

names = st.text(st.characters(codec="utf-8"), max_size=300) | st.text(max_size=40)
ordinary_names = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9_. -]{0,60}[A-Za-z0-9_-]", fullmatch=True)


@given(names)
@example("x" * (MAX_COMPONENT_BYTES + 1))
@example("COM¹.x")
@settings(max_examples=500, deadline=None)
def test_always_safe_and_stable(name: str) -> None:
    out = safe_component(name)
    _assert_safe(out)
    assert safe_component(name) == out


@given(st.lists(names, unique=True, max_size=30))
@settings(max_examples=300, deadline=None)
def test_injective(batch: list[str]) -> None:
    assert len({safe_component(n) for n in batch}) == len(batch)


@given(ordinary_names)
@settings(deadline=None)
def test_ordinary_property(name: str) -> None:
    if name.split(".", 1)[0].rstrip(" ").upper() in {"CON", "PRN", "AUX", "NUL"} | {
        f"{d}{n}" for d in ("COM", "LPT") for n in "0123456789"
    }:
        assert safe_component(name) != name
    else:
        assert safe_component(name) == name


@given(c=names, i=st.none() | names, k=names, href=st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_relpath_always_inside(
    tmp_path_factory: pytest.TempPathFactory, c: str, i: str | None, k: str, href: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "prop_root"
    rel = asset_relpath(c, i, k, href)
    assert not rel.is_absolute() and ".." not in rel.parts
    path = resolve_inside(root, rel)
    assert os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)
    assert asset_relpath(c, i, k, href) == rel


@given(st.text(max_size=60), st.none() | st.text(max_size=40))
@settings(deadline=None)
def test_extension_never_raises(href: str, media_type: str | None) -> None:
    ext = asset_extension(href, media_type)
    assert ext == "" or (ext.startswith(".") and "/" not in ext and len(ext) <= 17)


def test_documented_examples_are_true() -> None:
    """The mapping table in docs/paths.md is what the code does."""
    import re

    doc = Path(__file__).resolve().parent.parent / "docs" / "paths.md"
    rows = re.findall(r"^\| `([^`<]*)` \| `([^`]+)` \|$", doc.read_text("utf-8"), re.MULTILINE)
    checked = [(name, out) for name, out in rows if "~" in out]
    assert len(checked) >= 12
    for name, out in checked:
        assert safe_component(name) == out, name
    assert safe_component("cafe\u0301") == "café~81ef060bcd98"
    assert safe_component("x" * 1000) == "x" * 187 + "~44f8354494a5"


def test_the_fast_plain_name_test_agrees_with_the_per_character_rule_on_every_code_point() -> None:
    """A character is kept exactly when it is alphanumeric (``str.isalnum``) or one of
    ``-_. ``; the rule runs as regular expressions (in C), checked here on every code point."""
    from mlhub_widgets.download.paths import _NOT_PLAIN, _PLAIN_NAME

    def plain(ch: str) -> bool:
        return ch in "-_. " or ch.isalnum()

    kept = [hex(c) for c in range(0x110000) if bool(_PLAIN_NAME.fullmatch(chr(c))) != plain(chr(c))]
    replaced = [hex(c) for c in range(0x110000) if bool(_NOT_PLAIN.match(chr(c))) == plain(chr(c))]
    assert kept == [] and replaced == []
