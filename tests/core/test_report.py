from janja_plugin.core.reporting.report import HtmlReport
from janja_plugin.core.reporting.svgplot import chart


def test_report_escapes_and_embeds_charts(tmp_path):
    rep = HtmlReport("Kriging <Au>")
    rep.table(["element", "RMSE"], [["Au_ppb", 0.123456]])
    rep.charts([chart([{"x": [1, 10, 100], "y": [1, 2, 3], "label": "pts"}], logx=True)])
    rep.write(tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert "Kriging &lt;Au&gt;" in text and "0.1235" in text
    assert text.count("<circle") == 3 and "<svg" in text


def test_chart_drops_nonpositive_on_log_axis():
    svg = chart([{"x": [0, 1, 10], "y": [1, 2, 3]}], logx=True)
    assert svg.count("<circle") == 2
