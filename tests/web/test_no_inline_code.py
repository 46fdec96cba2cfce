"""The strict CSP (`script-src 'self'; style-src 'self'`, tranche/core/middleware.py) holds
for every page template, not only the pages the browser tests visit: no inline script,
no event-handler attribute, no `javascript:` URL, no style element or attribute.

Left out, each for its reason: emails (notifications/templates: mail programs drop
stylesheets, so emails carry inline styles; the one page that shows an email, the send
preview, has its own policy allowing inline styles and nothing else) and the PDF
documents (billing/*_document.html: WeasyPrint's input, shown on pages only as their
<body>, without the <style>)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "tranche"
DOCUMENTS = re.compile(r"billing/templates/billing/(\w+_)?document(_base)?\.html$")
PAGES = sorted(
    path
    for path in ROOT.glob("*/templates/**/*.html")
    if "/notifications/templates/" not in str(path) and not DOCUMENTS.search(str(path))
)

INLINE = {
    "inline script": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE),
}


def test_the_page_templates_are_found() -> None:
    names = {str(path.relative_to(ROOT)) for path in PAGES}
    assert "web/templates/web/base.html" in names
    assert "billing/templates/billing/pay.html" in names
    assert "billing/templates/billing/invoice_document.html" not in names
    assert len(PAGES) > 50


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_template_has_no_inline_code(path: Path) -> None:
    text = path.read_text()
    found = {kind: pattern.findall(text) for kind, pattern in INLINE.items()}
    assert {kind: hits for kind, hits in found.items() if hits} == {}
