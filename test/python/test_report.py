"""ecoreco.report in a real browser: the page written for a small
hand-built fixture loads in headless Chromium with no console error and no
request of any kind beyond the file itself, and every chart holds the
number of marks (bars, points, lines) the fixture calls for.

Chromium is Debian's package (.ci/run installs it); without it the test
fails with a message saying so (it does not skip: a report nobody looked at
is not tested)."""
import os
import re

import duckdb
import pytest

from headless import Browser, BrowserError, find_chromium

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXT = os.path.join(ROOT, "build", "release", "ecoreco.duckdb_extension")

# 11 events of 4 users on 5 products over 4 days (2019-10-03 has none),
# in 6 sessions of 3, 2, 1, 2, 2 and 1 events.
FIXTURE = """
CREATE TABLE raw AS SELECT * FROM (VALUES
  ('2019-10-01 09:00:00 UTC', 'view',     1, 10, 'electronics.smartphone', 'samsung', 100.0, 1, 's1'),
  ('2019-10-01 09:05:00 UTC', 'cart',     1, 10, 'electronics.smartphone', 'samsung', 100.0, 1, 's1'),
  ('2019-10-01 09:10:00 UTC', 'purchase', 1, 10, 'electronics.smartphone', 'samsung', 100.0, 1, 's1'),
  ('2019-10-01 10:00:00 UTC', 'view',     2, 11, 'electronics.audio',      'apple',   250.0, 2, 's2'),
  ('2019-10-01 10:01:00 UTC', 'view',     3, 12, 'appliances.kitchen',     'bosch',    40.0, 2, 's2'),
  ('2019-10-02 10:30:00 UTC', 'view',     1, 10, 'electronics.smartphone', 'samsung', 100.0, 3, 's3'),
  ('2019-10-02 14:00:00 UTC', 'view',     5, 13, 'computers.notebook',     'lenovo',  900.0, 3, 's4'),
  ('2019-10-02 14:02:00 UTC', 'cart',     5, 13, 'computers.notebook',     'lenovo',  900.0, 3, 's4'),
  ('2019-10-04 14:10:00 UTC', 'view',     4, 14, '',                       '',         10.0, 4, 's5'),
  ('2019-10-04 14:12:00 UTC', 'purchase', 2, 11, 'electronics.audio',      'apple',   250.0, 4, 's5'),
  ('2019-10-04 09:20:00 UTC', 'view',     3, 12, 'appliances.kitchen',     'bosch',    40.0, 1, 's6')
) t(event_time, event_type, product_id, category_id, category_code, brand, price, user_id, user_session);
CREATE TABLE events AS FROM ecoreco.clean_events(raw);
CREATE TABLE user_features AS FROM ecoreco.rfm_features(events);
CREATE TABLE segments AS FROM ecoreco.kmeans_segments(user_features, k := 2, seed := 1);
CREATE TABLE model AS FROM ecoreco.als_train(events, factors := 4, iterations := 3);
CREATE TABLE evaluation AS SELECT * FROM (VALUES
  ('als', 10, 0.1, 0.5, 0.4, 0.3, 0.6, 2, 0.0, 1.5),
  ('popularity', 10, 0.05, 0.25, 0.2, 0.1, 0.4, 2, 1.0, NULL)
) t(model, k, "precision", recall, ndcg, "map", coverage, users_evaluated, blend, rmse_vs_weight);
"""

# Marks per chart for the fixture, counted by hand:
EXPECTED = {
    "chart-event-mix": {"rect": 3},  # view, cart, purchase
    "chart-hours": {"rect": 24},  # every hour of the day, empty ones too
    "chart-days": {"rect": 4},  # 10-01 .. 10-04, the empty 10-03 included
    "chart-funnel": {"rect": 3},
    "chart-prices": {"line": 3},  # one line per event type with prices
    "chart-sessions": {"rect": 3},  # sessions of 1, 2 and 3 events
    "chart-segment-sizes": {"rect": 2},  # k = 2
    "chart-centroids": {"rect": 16},  # 2 segments x 8 features
    "chart-scores": {"rect": 20},  # 20 score bins
    # Each user gets every product not bought (5 products, k = 10): users
    # 1 and 4 bought one each, so 4 + 5 + 5 + 4 = 18 recommendations, all
    # five products, in 4 categories (electronics, appliances, computers,
    # unknown) and 5 brands (samsung, apple, bosch, lenovo, unknown).
    "chart-top-categories": {"rect": 4},
    "chart-top-brands": {"rect": 5},
    "chart-score-price": {"circle": 18},  # every product has a price
    "chart-category-score": {"rect": 4},
    "chart-brand-score": {"rect": 5},
    "chart-coverage": {"rect": 3},
    "chart-rfm": {"rect": 10},  # every RFM segment name, empty ones too
}

# The RFM segments of the fixture, by hand (n = 4 users; a score is
# 1 + (5 * (rank - 1)) // 4 with ties at their lowest rank). Last events:
# user 1 2019-10-04 09:20, user 2 10-01 10:01, user 3 10-02 14:02, user 4
# 10-04 14:12, so recency (days before the last event of all) ranks users
# 2, 3, 1, 4 from oldest: R = 1, 2, 3, 4. Active days (frequency): user 1
# two (10-01, 10-04), the others one: F = 4 for user 1 (rank 4), 1 for the
# three tied at rank 1. Revenue: user 1 100, user 4 250, users 2 and 3 0:
# M = 3, 4, 1, 1. Names by the rules: user 1 (R3 F4 M3) Loyal, user 4
# (R4 F1 M4) Promising, user 3 (R2) Hibernating, user 2 (R1 F1 M1) Lost.
# Row: segment, users, share, revenue, share of revenue, recency, frequency,
# monetary (the members' means).
RFM_ROWS = [
    ("Champions", "0", "0.0 %", "0.00", "0.0 %", "", "", ""),
    ("Loyal", "1", "25.0 %", "100.00", "28.6 %", "0.2", "2.00", "100.00"),  # recency 4 h 52 min
    ("Potential loyalists", "0", "0.0 %", "0.00", "0.0 %", "", "", ""),
    ("New", "0", "0.0 %", "0.00", "0.0 %", "", "", ""),
    ("Promising", "1", "25.0 %", "250.00", "71.4 %", "0.0", "1.00", "250.00"),
    ("Need attention", "0", "0.0 %", "0.00", "0.0 %", "", "", ""),
    ("Cannot lose them", "0", "0.0 %", "0.00", "0.0 %", "", "", ""),
    ("At risk", "0", "0.0 %", "0.00", "0.0 %", "", "", ""),
    ("Hibernating", "1", "25.0 %", "0.00", "0.0 %", "2.0", "1.00", "0.00"),  # 2 days 2 min
    ("Lost", "1", "25.0 %", "0.00", "0.0 %", "3.2", "1.00", "0.00"),  # 3 days 4 h 11 min
]

COUNT_MARKS = """JSON.stringify(Array.from(document.querySelectorAll('figure')).map(f => ({
  id: f.id,
  rect: f.querySelectorAll('svg rect').length,
  circle: f.querySelectorAll('svg circle').length,
  line: Array.from(f.querySelectorAll('svg polyline')).filter(p => p.getAttribute('stroke-width') === '2').length,
  svgs: f.querySelectorAll('svg').length,
  rows: f.querySelectorAll('tbody tr').length,
  width: Math.round(f.getBoundingClientRect().width),
})))"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    try:
        find_chromium()
    except BrowserError as e:
        pytest.fail(str(e))
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute(FIXTURE)
    path = str(tmp_path_factory.mktemp("report") / "fixture report.html")
    row = con.execute(
        "FROM ecoreco.report(events, model := 'model', segments := 'segments', evaluation := 'evaluation', path := ?)",
        [path],
    ).fetchall()
    return con, path, row


def test_report_returns_path_and_size(report):
    con, path, row = report
    assert row == [(path, os.path.getsize(path))]
    html = open(path, encoding="utf-8").read()
    # Self-contained: nothing to fetch (no src/href/url(), no script).
    assert not re.search(r"(src|href)\s*=|url\(|<script|@import", html), "the page references something"
    # Readable numbers: thousands separators and shares.
    assert "7 (63.6 %)" in html  # views: 7 of 11 events
    assert "2 (18.2 %)" in html
    # The RFM table: every segment in the rules' order, values as above.
    figure = html[html.index('<figure id="chart-rfm"'):]
    table = figure[figure.index("<tbody>"):figure.index("</tbody>")]
    rows = [tuple(re.findall(r"<td[^>]*>([^<]*)</td>", row)) for row in table.split("<tr>")[1:]]
    assert rows == RFM_ROWS, rows


def test_report_in_headless_chromium(report):
    _, path, _ = report
    url = "file://" + path.replace(" ", "%20")
    with Browser(timeout=60) as browser:
        session = browser.open(url)
        figures = {f["id"]: f for f in __import__("json").loads(browser.evaluate(session, COUNT_MARKS))}
        errors = browser.console_errors(session)
        requests = browser.requests(session)
        title = browser.evaluate(session, "document.title")
    assert errors == [], errors
    assert requests == [url], f"the page requested {requests}"
    assert title == "ecoreco report"
    for chart, marks in EXPECTED.items():
        assert chart in figures, f"{chart} missing; figures: {sorted(figures)}"
        f = figures[chart]
        assert f["svgs"] == 1, (chart, f)
        for kind in ("rect", "circle", "line"):
            assert f[kind] == marks.get(kind, 0), (chart, kind, f)
    assert figures["chart-centroids"]["rows"] == 3  # 2 segments + all users
    assert figures["chart-rfm"]["rows"] == 10
    assert figures["table-evaluation"]["rows"] == 2
    assert set(figures) == set(EXPECTED) | {"table-evaluation"}


def test_report_without_optional_tables(report, tmp_path):
    con, _, _ = report
    path = str(tmp_path / "events only.html")
    con.execute("FROM ecoreco.report('events', model := NULL, path := ?)", [path]).fetchall()
    html = open(path, encoding="utf-8").read()
    assert "No segments table was given" in html and "No model was given" in html
    assert 'id="chart-scores"' not in html and 'id="chart-hours"' in html
    # RFM segments need only the events: always there.
    assert 'id="chart-rfm"' in html


def test_page_size_does_not_grow_with_events(report, tmp_path):
    """Everything is aggregated in SQL and bounded: 100x the events (same
    day span, more users and products) makes a page of about the same
    size."""
    con, _, _ = report
    sizes = []
    for n in (2_000, 200_000):
        con.execute(f"CREATE OR REPLACE TABLE big_raw AS FROM ecoreco_synth(events := {n}, days := 7, seed := 3)")
        con.execute("CREATE OR REPLACE TABLE big AS FROM ecoreco.clean_events(big_raw)")
        path = str(tmp_path / f"r{n}.html")
        sizes.append(con.execute("SELECT bytes FROM ecoreco.report(big, model := NULL, path := ?)", [path]).fetchone()[0])
    assert sizes[1] < 1.5 * sizes[0], sizes


BAD_VALUES = ["NULL", "'text'", "''", "-1", "0", "1e300", "[1, 2]", "true", "DATE '2019-10-01'",
              "'x''); DROP TABLE events; --'", "'events''), (SELECT 1'"]
PARAMS = {"model": "'model'", "segments": "'segments'", "evaluation": "'evaluation'", "seed": "42"}


def test_bad_values_for_every_parameter_give_sql_errors(report, tmp_path, monkeypatch):
    """Never a crash (it would kill this process) nor an internal error;
    relative paths land in a temporary folder."""
    con, _, _ = report
    monkeypatch.chdir(tmp_path)
    calls = []
    for bad in BAD_VALUES:
        calls.append(f"ecoreco.report({bad}, path := 'r.html')")
        calls.append(f"ecoreco.report(events, path := {bad})")
        for name in PARAMS:
            named = dict(PARAMS, **{name: bad})
            calls.append("ecoreco.report(events, " + ", ".join(f"{k} := {v}" for k, v in named.items()) + ", path := 'r.html')")
    for call in calls:
        try:
            con.execute(f"FROM {call}").fetchall()
        except duckdb.Error as e:
            assert str(e) and "internal error" not in str(e).lower(), f"{call}: {e}"
        assert con.execute("SELECT count(*) FROM events").fetchone() == (11,)
    # Every file written is a whole page (string paths are file names),
    # and no temporary file is left behind.
    written = list(tmp_path.iterdir())
    assert written and not [p for p in written if p.name.endswith(".tmp")], written
    for p in written:
        text = p.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n"), p
