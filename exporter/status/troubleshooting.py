"""``/troubleshooting``: the troubleshooting guide (docs/troubleshooting.md, shipped in
the package as troubleshooting.md) rendered as an HTML page.

The guide is written in a small part of Markdown, which is all this renders: ``#``
headings, paragraphs, ``-`` lists (continuation lines indented), fenced code blocks,
and inline code, bold and links. Everything else is text, escaped.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import re

_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()]))
        code, bold, label, target = match.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif bold is not None:
            out.append(f"<b>{_inline(bold)}</b>")
        else:
            out.append(f'<a href="{html.escape(target)}">{_inline(label)}</a>')
        position = match.end()
    out.append(html.escape(text[position:]))
    return "".join(out)


def render_markdown(text: str) -> str:
    """The HTML of ``text`` (the subset of Markdown this module describes)."""
    out: list[str] = []
    paragraph: list[str] = []
    items: list[list[str]] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            rows = "".join(f"<li>{_inline(' '.join(item))}</li>" for item in items)
            out.append(f"<ul>{rows}</ul>")
            items.clear()

    for line in text.splitlines():
        if code is not None:
            if line.startswith("```"):
                out.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        stripped = line.strip()
        heading = re.match(r"(#{1,4}) (.*)", line)
        if line.startswith("```"):
            flush()
            code = []
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif not stripped:
            flush()
        elif line.startswith("- "):
            if paragraph:
                flush()
            items.append([line[2:].strip()])
        elif items and line.startswith(" "):
            items[-1].append(stripped)
        else:
            if items:
                flush()
            paragraph.append(stripped)
    flush()
    return "\n".join(out)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Troubleshooting: Pinpointe exporter</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;max-width:60rem;color:#1d1d1f}}
code{{background:#f3f3f3;padding:0 .2rem}}li{{margin:.4rem 0}}</style></head>
<body><nav><a href="/">Status page</a></nav>
{body}
</body></html>
"""


@functools.cache
def troubleshooting_page() -> bytes:
    """The guide as a page (read and rendered once)."""
    guide = importlib.resources.files("exporter.status").joinpath("troubleshooting.md")
    return _PAGE.format(body=render_markdown(guide.read_text(encoding="utf-8"))).encode()
