"""report.md → HTML: raw HTML escaped, relative links re-pointed into the site, headings demoted."""
from __future__ import annotations

from typing import Callable, Optional
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

SAFE_SCHEMES = {"http", "https", "mailto"}


def _parser() -> MarkdownIt:
    # html=False: any HTML in a report is shown as text, never interpreted.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def report_html(text: str, resolve: Callable[[str], Optional[str]]) -> tuple[str, set[str]]:
    """Render a report; `resolve(relative_path)` gives the site URL of a report file, or None.

    Returns the HTML and the set of relative paths the report links or shows, so the page can
    list the remaining figures separately. A link to a file that is not there keeps its text
    and loses its target; a missing image becomes its alt text.
    """
    md = _parser()
    tokens = md.parse(text)
    used: set[str] = set()

    def target(url: str) -> Optional[str]:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            return url if parts.scheme in SAFE_SCHEMES else None
        if not parts.path:
            return url  # a fragment within the page
        relative = unquote(parts.path)
        site_url = resolve(relative)
        if site_url is not None:
            used.add(relative)
        return site_url

    def rewrite(children: list[Token]) -> list[Token]:
        out = []
        for token in children:
            if token.type == "link_open":
                url = target(token.attrGet("href") or "")
                if url is None:
                    token.attrs.pop("href", None)
                else:
                    token.attrSet("href", url)
            elif token.type == "image":
                url = target(token.attrGet("src") or "")
                if url is None:
                    token = Token("text", "", 0, content=f"[{token.content}]")
                else:
                    token.attrSet("src", url)
            out.append(token)
        return out

    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 1)}"
        if token.children:
            token.children = rewrite(token.children)
    return md.renderer.render(tokens, md.options, {}), used
