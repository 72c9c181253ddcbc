"""The docs' diagrams are SVG files in the site, not Mermaid drawn by a script from a CDN.

Offline builds and readers behind a firewall saw the raw ``flowchart LR`` text. Each source
(``docs/_static/diagrams/*.mmd``) has its SVG, rendered from that very source
(``docs/render_diagrams.py`` stamps the source's SHA-256 on it), and a page shows it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
DIAGRAMS = DOCS / "_static" / "diagrams"
PAGES = [DOCS.parent / "README.md", *DOCS.rglob("*.md")]


def test_no_page_draws_mermaid_in_the_browser() -> None:
    for page in PAGES:
        assert not re.search(r"^```\s*\{?mermaid\}?", page.read_text(encoding="utf-8"), re.M), page
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert not [name for name in conf.extensions if "mermaid" in name]


def test_every_diagram_source_has_its_svg_rendered_from_it_and_shown() -> None:
    sources = sorted(DIAGRAMS.glob("*.mmd"))
    assert sources, "the thread model's diagram"
    shown = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    for source in sources:
        svg = source.with_suffix(".svg")
        assert svg.is_file(), f"{source.name} was never rendered: python docs/render_diagrams.py"
        first = svg.read_text(encoding="utf-8").splitlines()[0]
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        assert digest in first, f"{source.name} changed since {svg.name} was rendered: python docs/render_diagrams.py"
        root = ElementTree.parse(svg).getroot()  # well-formed: an <img> shows nothing otherwise
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert f"_static/diagrams/{svg.name}" in shown, f"no page shows {svg.name}"
