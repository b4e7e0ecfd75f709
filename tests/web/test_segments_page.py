"""The segments page in Chromium: build the education case's A segment in the builder, get the
count the API gives, see the text form follow, save it and find it listed; a typed
mistake shows where it is."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from perennial.segments.service import SegmentService
from perennial.segments.tag_store import TagKind
from tests.web.conftest import screenshot
from tests.web.live_server import LiveServer

pytestmark = pytest.mark.integration

EDUCATION_A = "in_segment('dormant_learners') and not did course_completed"


def _sign_in(page: Page, server: LiveServer, role: str) -> None:
    account = server.accounts[role]
    page.goto("/login?next=/segments")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.get_by_test_id("segment-builder")).to_have_attribute("data-ready", "true")


def _choose(page: Page, row: int, testid: str, value: str) -> None:
    page.get_by_test_id("builder-condition").nth(row).get_by_test_id(testid).select_option(value)


def test_the_builder_counts_education_a_as_the_api_does_and_saves_it(
    demo_page: Page, demo_server: LiveServer
) -> None:
    service = SegmentService.migrated(demo_server.settings)
    service.save("learners", "did course_purchased")
    service.save(
        "dormant_learners", "in_segment('learners') and not did lesson_completed in last 30 days"
    )
    expected = service.preview(EDUCATION_A)
    assert expected.count > 0

    page = demo_page
    _sign_in(page, demo_server, "operator")
    page.get_by_test_id("builder-add").click()
    _choose(page, 0, "condition-kind", "segment")
    _choose(page, 0, "condition-segment", "dormant_learners")
    page.get_by_test_id("builder-add").click()
    _choose(page, 1, "condition-kind", "event")
    _choose(page, 1, "condition-did", "no")
    _choose(page, 1, "condition-event", "course_completed")

    expect(page.get_by_test_id("builder-text")).to_have_value(
        "(in_segment('dormant_learners') and (did not course_completed))"
    )
    expect(page.get_by_test_id("builder-count")).to_have_text(f"{expected.count:,}")
    expect(page.get_by_test_id("builder-member")).to_have_count(min(10, expected.count))
    assert page.get_by_test_id("builder-member").first.inner_text() == expected.sample[0]

    page.get_by_test_id("builder-name").fill("education_a")
    page.get_by_test_id("builder-title").fill("A类 买过课没上完")
    page.get_by_test_id("builder-save").click()
    expect(page.get_by_test_id("builder-saved")).to_contain_text("education_a")
    screenshot(page, "segments-builder")

    page.reload()
    row = page.locator('[data-testid="segment-row"][data-name="education_a"]')
    expect(row.get_by_test_id("segment-members")).to_have_text(f"{expected.count:,}")
    assert service.get("education_a").members == expected.count


def test_typed_text_redraws_the_rows_and_a_mistake_shows_its_column(
    demo_page: Page, demo_server: LiveServer
) -> None:
    page = demo_page
    _sign_in(page, demo_server, "viewer")
    expect(page.get_by_test_id("builder-save-form")).to_have_count(0)
    text = page.get_by_test_id("builder-text")
    text.fill("frequency_orders >= 3 or did login at least 2 times in last 30 days")
    expect(page.get_by_test_id("builder-condition")).to_have_count(2)
    expect(page.get_by_test_id("builder-combinator")).to_have_value("any")
    expected = SegmentService(demo_server.settings).preview(
        "frequency_orders >= 3 or did login at least 2 times in last 30 days"
    )
    expect(page.get_by_test_id("builder-count")).to_have_text(f"{expected.count:,}")

    text.fill("frequency_orders >= ")
    error = page.get_by_test_id("builder-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("column 21")
    expect(page.get_by_test_id("builder-count")).to_have_text("—")


def test_the_360_shows_tags_with_why_and_the_segments_the_customer_is_in(
    demo_page: Page, demo_server: LiveServer
) -> None:
    service = SegmentService.migrated(demo_server.settings)
    hostile = "<script>alert('tag')</script>"
    service.tag_customers(
        [("C0000001", "vip", hostile)],
        source=TagKind.MANUAL,
        reason="manual: called about a refund",
        user="agent.wang",
    )
    service.save("tagged_vips", "has_tag('vip')")
    page = demo_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    _sign_in(page, demo_server, "operator")
    page.goto("/customers/C0000001")
    tag = page.locator('[data-testid="customer-tag"][data-tag="vip"]')
    expect(tag).to_contain_text(f"vip: {hostile}")
    expect(tag).to_contain_text("manual: called about a refund")
    expect(tag).to_contain_text("agent.wang")
    expect(page.get_by_test_id("customer-segments")).to_contain_text("tagged_vips")
    assert "<script>alert('tag')" not in page.content()
    assert dialogs == []
