"""The label catalogue: every key in both languages, every label a page asks for exists."""

from __future__ import annotations

import re
import string

import pytest
from starlette.requests import Request

from perennial.access.roles import Role
from perennial.web.i18n import (
    CATALOGUE,
    DEFAULT_LANGUAGE,
    LANGUAGE_COOKIE,
    LANGUAGES,
    language_of,
    translate,
)
from perennial.web.rendering import NAVIGATION, TEMPLATES_DIR

LITERAL_KEY = re.compile(r"""\bt\(\s*['"]([a-zA-Z0-9_.-]+)['"]\s*[,)]""")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_zh_cn_is_the_default_and_english_is_offered() -> None:
    assert DEFAULT_LANGUAGE == "zh-CN"
    assert LANGUAGES == ("zh-CN", "en")


def test_every_key_exists_in_both_languages_with_the_same_placeholders() -> None:
    chinese, english = CATALOGUE["zh-CN"], CATALOGUE["en"]
    assert set(chinese) == set(english), set(chinese) ^ set(english)
    for key in chinese:
        assert chinese[key].strip() and english[key].strip(), key
        assert _placeholders(chinese[key]) == _placeholders(english[key]), key


def test_every_label_a_template_names_is_in_the_catalogue() -> None:
    used = {
        key
        for template in TEMPLATES_DIR.rglob("*.html")
        for key in LITERAL_KEY.findall(template.read_text(encoding="utf-8"))
    }
    assert "login.submit" in used  # the pattern finds the calls
    assert used <= set(CATALOGUE["en"]), used - set(CATALOGUE["en"])


def test_labels_built_from_values_exist_for_every_value() -> None:
    keys = set(CATALOGUE["en"])
    assert {f"role.{role.value}" for role in Role} <= keys
    assert {f"status.{s}" for s in ("active", "expired", "revoked", "disabled", "locked")} <= keys
    assert {f"language.{code}" for code in LANGUAGES} <= keys
    assert {f"error.{k}.{p}" for k in ("403", "404", "other") for p in ("title", "text")} <= keys
    assert {item.key for item in NAVIGATION} <= keys


def test_the_navigation_reads_as_the_seeds_name_it() -> None:
    zh = ["看板", "客户", "风险预警", "人群", "旅程", "模型", "任务", "管理"]
    en = ["Board", "Customers", "At risk", "Segments", "Journeys", "Model", "Tasks", "Admin"]
    assert [translate("zh-CN", item.key) for item in NAVIGATION] == zh
    assert [translate("en", item.key) for item in NAVIGATION] == en


def test_placeholders_are_filled_and_unknown_keys_fail_loudly() -> None:
    assert "10:30" in translate("en", "login.locked", time="10:30")
    assert translate("fr", "nav.board") == "看板"  # unknown language: the default
    with pytest.raises(KeyError):
        translate("en", "no.such.label")


@pytest.mark.parametrize(
    ("cookie", "language"),
    [(None, "zh-CN"), ("en", "en"), ("zh-CN", "zh-CN"), ("fr", "zh-CN"), ("<script>", "zh-CN")],
)
def test_the_language_comes_from_the_cookie_or_is_the_default(
    cookie: str | None, language: str
) -> None:
    headers = [] if cookie is None else [(b"cookie", f"{LANGUAGE_COOKIE}={cookie}".encode())]
    request = Request({"type": "http", "headers": headers})
    assert language_of(request) == language
