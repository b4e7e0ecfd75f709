"""The board's figures: built from the API's answers, in life order, labels made literal."""

from __future__ import annotations

from datetime import date
from functools import partial

from perennial.api.customer_views import StageChange
from perennial.api.routes.lifecycle import (
    DistributionView,
    FlowsView,
    FlowView,
    RfmCellView,
    RfmGridView,
    RfmSegmentView,
    StageSeriesView,
)
from perennial.lifecycle.flows import NEW, UNMATCHED
from perennial.lifecycle.rfm_segments import DEFAULT_SEGMENTS
from perennial.serving.board import StageInfo
from perennial.web.charts import (
    cell_segments,
    distribution_figure,
    flows_figure,
    plain,
    rfm_figure,
    stage_timeline_figure,
)
from perennial.web.formatting import Formatter
from perennial.web.i18n import translate
from perennial.web.stage_display import stage_styles

STAGES = [
    StageInfo("introduction", "Introduction", "引入期", "new"),
    StageInfo("churned", "Churned", "流失期", "churned"),
    StageInfo("growth", "Growth", "成长期<b>", "active"),
]
STYLES = stage_styles(STAGES, "zh-CN", new_label="新进入", unmatched_label="未匹配")
FMT = Formatter("zh-CN", "Asia/Shanghai")
T = partial(translate, "zh-CN")
DAY = date(2025, 12, 31)


def test_plain_makes_plotly_show_tags_as_text() -> None:
    assert plain("<b>x</b> & <br>") == "&lt;b&gt;x&lt;/b&gt; &amp; &lt;br&gt;"


def test_the_distribution_stacks_every_series_in_life_order() -> None:
    view = DistributionView(
        model="m",
        as_of=DAY,
        start=date(2025, 12, 30),
        end=DAY,
        days=[date(2025, 12, 30), DAY],
        series=[
            StageSeriesView(stage=key, label_en=None, label_zh=None, customers=counts)
            for key, counts in [
                ("introduction", [1, 2]),
                ("churned", [30_000, 40_000]),
                ("growth", [5, 6]),
                (UNMATCHED, [0, 1]),
            ]
        ],
    )
    figure = distribution_figure(view, STYLES, FMT)
    traces = figure["data"]
    assert [trace["name"] for trace in traces] == ["引入期", "成长期&lt;b&gt;", "流失期", "未匹配"]
    assert {trace["stackgroup"] for trace in traces} == {"stages"}
    assert traces[2]["y"] == [30_000, 40_000]
    assert traces[2]["customdata"] == ["3万", "4万"]
    assert traces[0]["x"] == ["2025-12-30", "2025-12-31"]
    assert figure["layout"]["xaxis"]["tickformat"] == "%-m月%-d日"


def _flows() -> FlowsView:
    flows = [
        FlowView(from_stage="churned", to_stage="churned", customers=50),
        FlowView(from_stage="growth", to_stage="churned", customers=7),
        FlowView(from_stage=NEW, to_stage="introduction", customers=3),
        FlowView(from_stage="growth", to_stage="growth", customers=20),
    ]
    return FlowsView(model="m", as_of=DAY, start=date(2025, 12, 1), end=DAY, flows=flows, stages=[])


def test_the_sankey_links_every_flow_between_two_columns_in_life_order() -> None:
    figure = flows_figure(_flows(), STYLES, FMT, T)
    trace = figure["data"][0]
    node, link = trace["node"], trace["link"]
    assert node["label"] == [
        "新进入 3",
        "成长期&lt;b&gt; 27",
        "流失期 50",
        "引入期 3",
        "成长期&lt;b&gt; 20",
        "流失期 57",
    ]
    assert link["customdata"] == ["50", "7", "3", "20"]
    assert sum(link["value"]) == 80
    assert all(0 < y < 1 for y in node["y"]) and node["x"][0] < 0.5 < node["x"][-1]
    assert node["y"] == sorted(node["y"][:3]) + sorted(node["y"][3:])
    annotations = [a["text"] for a in figure["layout"]["annotations"]]
    assert annotations == ["2025年12月1日", "2025年12月31日"]


def test_the_rfm_heat_map_holds_every_cell_with_revenue_and_segments() -> None:
    cells = [
        RfmCellView(r=r, f=f, customers=10 * r + f, revenue=1000.0 * r)
        for r in range(1, 6)
        for f in range(1, 6)
    ]
    segments = [
        RfmSegmentView(
            segment=key,
            label_en=segment.label.en,
            label_zh=segment.label.zh,
            customers=1,
            revenue=1.0,
            share=0.1,
        )
        for key, segment in DEFAULT_SEGMENTS.items()
    ]
    view = RfmGridView(model="m", as_of=DAY, customers=1, cells=cells, segments=segments)
    trace = rfm_figure(view, FMT, T, "CNY")["data"][0]
    assert trace["z"][4][4] == 55 and trace["z"][0][0] == 11  # rows R1..R5, columns F1..F5
    assert trace["customdata"][4][0][0] == "¥5,000.00"
    # R5 F5 customers are champions, or potential loyalists when their M score is low
    assert trace["customdata"][4][4][1] == "重要价值客户 / 潜力客户"
    assert trace["customdata"][2][4][1] == "忠诚客户 / 需要关注客户"
    assert cell_segments(5, 1, segments, "en") == "Potential loyalist / New"
    custom = [segments[0].model_copy(update={"segment": "vip"})]
    assert cell_segments(5, 5, custom, "en") == "—"  # a custom set's boxes are not stored


def test_a_customers_stage_timeline_steps_from_the_history_start_to_the_board_day() -> None:
    history = [
        StageChange(day=date(2025, 12, 20), from_stage="growth", to_stage="churned"),
        StageChange(day=date(2025, 12, 5), from_stage="introduction", to_stage="growth"),
    ]
    figure = stage_timeline_figure(
        history, "churned", STYLES, first_day=date(2025, 11, 17), until=DAY, language="en"
    )
    assert figure is not None
    trace = figure["data"][0]
    assert trace["x"] == ["2025-11-17", "2025-12-05", "2025-12-20", "2025-12-31"]
    assert trace["y"] == ["引入期", "成长期&lt;b&gt;", "流失期", "流失期"]
    assert trace["line"]["shape"] == "hv"
    none = stage_timeline_figure([], "growth", STYLES, first_day=None, until=DAY, language="en")
    assert none is None
