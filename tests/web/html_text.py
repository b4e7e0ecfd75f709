"""Reading rendered pages in tests: texts by ``data-testid``, chart figures, scripts, links."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
_SPACE = re.compile(r"\s+")


@dataclass
class _Open:
    tag: str
    test_id: str | None
    parts: list[str] = field(default_factory=list)


class PageText(HTMLParser):
    """Collects the text of every element with a ``data-testid`` (whitespace collapsed),
    the JSON data blocks, inline scripts and every link of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.texts: dict[str, list[str]] = {}
        self.json_blocks: dict[str, Any] = {}
        self.inline_scripts: list[str] = []
        self.links: list[str] = []
        self.attributes: list[dict[str, str | None]] = []
        self._open: list[_Open] = []
        self._script: dict[str, str | None] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.attributes.append(values)
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag == "script":
            self._script = values
        if tag not in _VOID:
            self._open.append(_Open(tag, values.get("data-testid")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None
        while self._open:
            element = self._open.pop()
            if element.test_id is not None:
                text = _SPACE.sub(" ", "".join(element.parts)).strip()
                self.texts.setdefault(element.test_id, []).append(text)
            if element.tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._script is not None and self._script.get("src") is None and data.strip():
            if self._script.get("type") == "application/json":
                self.json_blocks[str(self._script.get("id"))] = json.loads(data)
            else:
                self.inline_scripts.append(data)
        for element in self._open:
            if element.test_id is not None:
                element.parts.append(data)

    def text(self, test_id: str) -> str:
        """The text of the only element with ``test_id``."""
        found = self.texts.get(test_id, [])
        assert len(found) == 1, (test_id, found)
        return found[0]
