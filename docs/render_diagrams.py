"""Render the docs' diagrams (``docs/_static/diagrams/*.mmd``, Mermaid) to SVG files next to them.

The site shows the SVG files: no script from a CDN, so offline builds and readers behind a
firewall see the diagram. Run this after changing a ``.mmd`` file, with Mermaid's script from
npm (not a dependency of the project) and a Chromium::

    npm pack mermaid@11 && tar xzf mermaid-*.tgz package/dist/mermaid.min.js
    python docs/render_diagrams.py --mermaid package/dist/mermaid.min.js

Each SVG starts with the SHA-256 of the source it was rendered from; tests/docs/test_diagrams.py
fails when a source changed and its SVG was not rendered again.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

DIAGRAMS = Path(__file__).resolve().parent / "_static" / "diagrams"
STAMP = "<!-- rendered from {name}, sha256 {digest} -->\n"


def stamp(source: Path) -> str:
    """The first line of the SVG rendered from ``source``."""
    return STAMP.format(name=source.name, digest=hashlib.sha256(source.read_bytes()).hexdigest())


def render(mermaid_js: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as manager:
        browser = manager.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        page = browser.new_page()
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(content=mermaid_js.read_text(encoding="utf-8"))
        # Plain SVG text for the labels: HTML labels (foreignObject) do not show in every viewer.
        config = "{startOnLoad: false, theme: 'neutral', htmlLabels: false, flowchart: {htmlLabels: false}}"
        page.evaluate(f"mermaid.initialize({config})")
        for source in sorted(DIAGRAMS.glob("*.mmd")):
            text = source.read_text(encoding="utf-8")
            # Through the DOM and XMLSerializer: well-formed XML (an <img> shows nothing otherwise).
            svg = page.evaluate(
                "async ([name, text]) => {"
                "  const holder = document.createElement('div');"
                "  holder.innerHTML = (await mermaid.render(name, text)).svg;"
                "  return new XMLSerializer().serializeToString(holder.firstElementChild);"
                "}",
                [f"d{source.stem}", text],
            )
            source.with_suffix(".svg").write_text(stamp(source) + svg + "\n", encoding="utf-8")
            print(f"rendered {source.name}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", type=Path, required=True, help="mermaid.min.js (from npm pack mermaid)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    render(args.mermaid, args.chromium)


if __name__ == "__main__":
    main()
