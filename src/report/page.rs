//! The report page: one self-contained HTML file. Charts are inline SVG,
//! styles are inline, there is no script, no font, no image and no link to
//! fetch, and a Content-Security-Policy forbids any request, so the page
//! shows the same offline, in a browser, in print.

use super::charts::{self, Bars, GroupedRatios, Lines, Scatter, PALETTE};
use super::data::{Group, ReportData, FEATURES};
use super::format;
use anyhow::Result;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = include_str!("report.css");

/// One chart or table with its title and one line saying what it shows.
struct Figure {
    id: &'static str,
    title: String,
    explanation: String,
    /// The SVG, or `None` when there is nothing to draw.
    svg: Option<String>,
    /// Series names and colours, shown under the chart.
    legend: Vec<(String, String)>,
    /// HTML appended below (a table).
    extra: String,
}

impl Figure {
    fn new(id: &'static str, title: &str, explanation: String, svg: Option<String>) -> Figure {
        Figure {
            id,
            title: title.to_string(),
            explanation,
            svg,
            legend: Vec::new(),
            extra: String::new(),
        }
    }

    fn html(&self, out: &mut String) {
        let _ = write!(
            out,
            "<figure id=\"{}\"><figcaption><h3>{}</h3><p>{}</p></figcaption>",
            self.id,
            escape(&self.title),
            escape(&self.explanation)
        );
        match &self.svg {
            Some(svg) => out.push_str(svg),
            // A figure that is only a table has nothing to draw by design.
            None if !self.extra.is_empty() => {}
            None => out.push_str("<p class=\"empty\">No data to draw.</p>"),
        }
        if !self.legend.is_empty() {
            out.push_str("<p class=\"legend\">");
            for (name, color) in &self.legend {
                let _ = write!(
                    out,
                    "<span><i style=\"background:{color}\"></i>{}</span>",
                    escape(name)
                );
            }
            out.push_str("</p>");
        }
        out.push_str(&self.extra);
        out.push_str("</figure>\n");
    }
}

fn strings(items: impl IntoIterator<Item = String>) -> Vec<String> {
    items.into_iter().collect()
}

/// The chart, or `None` when there is no bar to draw.
fn draw_bars(horizontal: bool, b: Bars) -> Result<Option<String>> {
    if b.values.is_empty() {
        return Ok(None);
    }
    Ok(Some(if horizontal {
        charts::horizontal_bars(&b)?
    } else {
        charts::vertical_bars(&b)?
    }))
}

fn share(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        f64::NAN
    }
}

/// A bar's note: the count and its share of `whole`, as "1,234 (12.3 %)".
fn count_and_share(part: i64, whole: i64) -> String {
    format!(
        "{} ({})",
        format::int(part),
        format::pct(share(part, whole))
    )
}

fn rate(r: Option<f64>) -> String {
    r.map(format::pct)
        .unwrap_or_else(|| "– (no users at the earlier step)".to_string())
}

fn event_figures(d: &ReportData) -> Result<Vec<Figure>> {
    let total = d.totals.events;
    let mut figures = Vec::new();

    let labels = strings(d.event_mix.iter().map(|c| c.label.clone()));
    let values: Vec<f64> = d.event_mix.iter().map(|c| c.n as f64).collect();
    let notes = strings(d.event_mix.iter().map(|c| count_and_share(c.n, total)));
    figures.push(Figure::new(
        "chart-event-mix",
        "Event mix",
        format!(
            "Events of each type, with the share of all {} events.",
            format::int(total)
        ),
        draw_bars(
            true,
            Bars::new(&labels, &values, "event type", "events (count)").notes(notes),
        )?,
    ));

    let labels = strings(d.hours.iter().map(|(h, _)| format!("{h:02}")));
    let values: Vec<f64> = d.hours.iter().map(|(_, n)| *n as f64).collect();
    figures.push(Figure::new(
        "chart-hours",
        "Activity by hour of day",
        "Events in each hour of the day (UTC), summed over all days.".to_string(),
        if total > 0 {
            draw_bars(
                false,
                Bars::new(&labels, &values, "hour of day (UTC)", "events (count)").every(2),
            )?
        } else {
            None
        },
    ));

    let labels = strings(
        d.days
            .iter()
            .map(|(day, _)| day.get(5..).unwrap_or(day).to_string()),
    );
    let values: Vec<f64> = d.days.iter().map(|(_, n)| *n as f64).collect();
    let every = d.days.len().div_ceil(12).max(1);
    let span = match (d.days.first(), d.days.last()) {
        (Some(a), Some(b)) => format!(" from {} to {}", a.0, b.0),
        _ => String::new(),
    };
    figures.push(Figure::new(
        "chart-days",
        "Activity by day",
        format!("Events per calendar day (UTC){span}; days without events show as gaps."),
        draw_bars(
            false,
            Bars::new(&labels, &values, "date (UTC, month-day)", "events (count)").every(every),
        )?,
    ));

    let f = &d.funnel;
    let labels = strings([
        "viewed".to_string(),
        "carted".to_string(),
        "bought".to_string(),
    ]);
    let values = [f.viewers as f64, f.carters as f64, f.buyers as f64];
    let notes = strings(
        [f.viewers, f.carters, f.buyers]
            .iter()
            .map(|u| format::int(*u)),
    );
    let has_users = values.iter().any(|v| *v > 0.0);
    figures.push(Figure::new(
        "chart-funnel",
        "Funnel",
        format!(
            "Distinct users with at least one view, one cart and one purchase ({} / {} / {} events). Of the users at \
             the earlier step: view → cart {}, cart → purchase {}, view → purchase {}.",
            format::int(f.views),
            format::int(f.carts),
            format::int(f.purchases),
            rate(f.view_to_cart),
            rate(f.cart_to_purchase),
            rate(f.view_to_purchase)
        ),
        if has_users { draw_bars(false, Bars::new(&labels, &values, "funnel step", "users (count)").notes(notes).color(2))? } else { None },
    ));

    let p = &d.prices;
    let mut price_figure = Figure::new(
        "chart-prices",
        "Price distribution by event type",
        String::new(),
        None,
    );
    if let (Some(max), true) = (
        p.max_price.filter(|m| *m > 0.0),
        p.bins > 0 && !p.types.is_empty(),
    ) {
        let width = max / p.bins as f64;
        let series: Vec<(String, Vec<(f64, f64)>)> = p
            .types
            .iter()
            .map(|t| {
                let points = t
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        (
                            (i as f64 + 0.5) * width,
                            100.0 * share(*c, t.priced).max(0.0),
                        )
                    })
                    .collect();
                (t.label.clone(), points)
            })
            .collect();
        price_figure.svg = Some(charts::lines(&Lines {
            series: &series,
            x_desc: "price (USD), bin centre",
            y_desc: "share of the type's priced events (%)",
            x_range: (0.0, max),
        })?);
        price_figure.legend = p
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    format!("{} ({} priced)", t.label, format::int(t.priced)),
                    charts::hex(PALETTE[i % PALETTE.len()]),
                )
            })
            .collect();
        price_figure.explanation = format!(
            "Each line is one event type: the share of its priced events in each of {} equal price bins from 0 to {} \
             (the highest price), so types of different sizes compare.",
            p.bins,
            format::fixed(max, 2)
        );
    } else {
        price_figure.explanation = "No event has a price.".to_string();
    }
    figures.push(price_figure);

    let last = d.session_sizes.last().map(|s| s.0).unwrap_or(0);
    let labels = strings(d.session_sizes.iter().map(|(s, _)| {
        if *s == 20 && last == 20 {
            "20+".to_string()
        } else {
            s.to_string()
        }
    }));
    let values: Vec<f64> = d.session_sizes.iter().map(|(_, n)| *n as f64).collect();
    figures.push(Figure::new(
        "chart-sessions",
        "Events per session",
        format!(
            "Sessions by number of events (all types) among the {} sessions; the last bar holds sessions of 20 events or more.",
            format::int(d.totals.sessions)
        ),
        draw_bars(false, Bars::new(&labels, &values, "events in the session", "sessions (count)"))?,
    ));
    Ok(figures)
}

/// The RFM segments of every user: sizes as bars, the table of shares,
/// revenue and the members' means.
fn rfm_figures(d: &ReportData) -> Result<Vec<Figure>> {
    let users: i64 = d.rfm.iter().map(|r| r.users).sum();
    if users == 0 {
        return Ok(Vec::new());
    }
    let labels = strings(d.rfm.iter().map(|r| r.segment.clone()));
    let values: Vec<f64> = d.rfm.iter().map(|r| r.users as f64).collect();
    let notes = strings(d.rfm.iter().map(|r| count_and_share(r.users, users)));
    let mut f = Figure::new(
        "chart-rfm",
        "RFM segments",
        format!(
            "The {} users by recency, frequency and monetary quintile scores (1-5 against these users), \
             named by the classic rules (ecoreco.rfm_segments): users per segment, with their share.",
            format::int(users)
        ),
        draw_bars(true, Bars::new(&labels, &values, "RFM segment", "users (count)").notes(notes).color(3))?,
    );
    let opt =
        |x: Option<f64>, digits: usize| x.map(|v| format::fixed(v, digits)).unwrap_or_default();
    let mut t = String::from(
        "<table><thead><tr><th class=\"text\">RFM segment</th><th>users</th><th>share of users</th>\
         <th>revenue<br><small>USD</small></th><th>share of revenue</th><th>recency<br><small>days, mean</small></th>\
         <th>frequency<br><small>active days, mean</small></th><th>monetary<br><small>USD, mean</small></th></tr></thead><tbody>",
    );
    for r in &d.rfm {
        let _ = write!(
            t,
            "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.segment),
            format::int(r.users),
            r.share.map(format::pct).unwrap_or_default(),
            format::fixed(r.revenue, 2),
            r.revenue_share.map(format::pct).unwrap_or_default(),
            opt(r.avg_recency, 1),
            opt(r.avg_frequency, 2),
            opt(r.avg_monetary, 2)
        );
    }
    t.push_str("</tbody></table>");
    f.extra = t;
    Ok(vec![f])
}

fn segment_figures(d: &ReportData) -> Result<Vec<Figure>> {
    let Some(s) = &d.segments else {
        return Ok(Vec::new());
    };
    let total: i64 = s.sizes.iter().map(|x| x.users).sum();
    let labels = strings(s.sizes.iter().map(|x| format!("{} {}", x.id, x.name)));
    let values: Vec<f64> = s.sizes.iter().map(|x| x.users as f64).collect();
    let notes = strings(s.sizes.iter().map(|x| count_and_share(x.users, total)));
    let mut sizes = Figure::new(
        "chart-segment-sizes",
        "Segment sizes",
        format!("Users in each segment (segment_id and name), with the share of the {} segmented users.", format::int(total)),
        draw_bars(true, Bars::new(&labels, &values, "segment", "users (count)").notes(notes).color(2))?,
    );
    if s.duplicate_users > 0 {
        sizes.explanation.push_str(&format!(
            " {} rows repeat a user_id.",
            format::int(s.duplicate_users)
        ));
    }

    let groups = strings(FEATURES.iter().map(|(f, _)| f.to_string()));
    let ratios: Vec<Vec<f64>> = s
        .centroids
        .iter()
        .map(|c| {
            c.means
                .iter()
                .zip(&s.overall)
                .map(|(m, o)| if *o == 0.0 && *m == 0.0 { 1.0 } else { m / o })
                .collect()
        })
        .collect();
    let mut centroids = Figure::new(
        "chart-centroids",
        "Segment centroids",
        "Each segment's mean of the clustering features divided by the mean of all segmented users, on a log scale: \
         a bar above 1 is above average, one reaching the bottom is a mean of 0. The table gives the means in the \
         features' own units."
            .to_string(),
        if ratios.is_empty() {
            None
        } else {
            Some(charts::grouped_ratios(&GroupedRatios {
                groups: &groups,
                values: &ratios,
                y_desc: "segment mean / mean of all users",
            })?)
        },
    );
    centroids.legend = s
        .centroids
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                format!("{} {}", c.segment.id, c.segment.name),
                charts::hex(PALETTE[i % PALETTE.len()]),
            )
        })
        .collect();
    let mut table = String::from("<table><thead><tr><th class=\"text\">segment</th><th>users</th>");
    for (name, unit) in FEATURES {
        let _ = write!(
            table,
            "<th>{}<br><small>{}</small></th>",
            escape(&name.replace('_', " ")),
            escape(unit)
        );
    }
    table.push_str("</tr></thead><tbody>");
    let rows = s.centroids.iter().map(|c| {
        (
            format!("{} {}", c.segment.id, c.segment.name),
            c.segment.users,
            &c.means,
        )
    });
    let all = std::iter::once(("all segmented users".to_string(), total, &s.overall));
    for (name, users, means) in rows.chain(all) {
        let _ = write!(
            table,
            "<tr><td class=\"text\">{}</td><td>{}</td>",
            escape(&name),
            format::int(users)
        );
        for m in means.iter() {
            let _ = write!(table, "<td>{}</td>", format::num(*m));
        }
        table.push_str("</tr>");
    }
    table.push_str("</tbody></table>");
    centroids.extra = table;
    Ok(vec![sizes, centroids])
}

fn group_bars(
    id: &'static str,
    title: &str,
    explanation: String,
    groups: &[Group],
    total: i64,
    by_score: bool,
    what: &str,
) -> Result<Figure> {
    let labels = strings(groups.iter().map(|g| g.label.clone()));
    let (values, notes): (Vec<f64>, Vec<String>) = if by_score {
        groups
            .iter()
            .map(|g| (g.mean_score, format::num(g.mean_score)))
            .unzip()
    } else {
        groups
            .iter()
            .map(|g| (g.recs as f64, count_and_share(g.recs, total)))
            .unzip()
    };
    let value_desc = if by_score {
        "mean score (unitless, at most 1)"
    } else {
        "recommendations (count)"
    };
    Ok(Figure::new(
        id,
        title,
        explanation,
        draw_bars(
            true,
            Bars::new(&labels, &values, what, value_desc)
                .notes(notes)
                .color(if by_score { 3 } else { 1 }),
        )?,
    ))
}

fn recommendation_figures(d: &ReportData) -> Result<Vec<Figure>> {
    let Some(r) = &d.recommendations else {
        return Ok(Vec::new());
    };
    let mut figures = Vec::new();
    let labels = strings(r.score_bins.iter().map(|b| format::num(b.lo)));
    let values: Vec<f64> = r.score_bins.iter().map(|b| b.n as f64).collect();
    figures.push(Figure::new(
        "chart-scores",
        "Recommendation scores",
        format!(
            "All {} recommendations ({} users) in {} equal score bins; each bar is labelled with its lower bound.",
            format::int(r.rows),
            format::int(r.users),
            r.score_bins.len()
        ),
        draw_bars(false, Bars::new(&labels, &values, "score (unitless), bin lower bound", "recommendations (count)").every(2).color(1))?,
    ));
    let top10 = |g: &[Group]| g.iter().take(10).cloned().collect::<Vec<_>>();
    figures.push(group_bars(
        "chart-top-categories",
        "Top recommended categories",
        "The 10 top-level categories (category_code before the first dot) recommended most often, with their share of all recommendations.".to_string(),
        &top10(&r.categories),
        r.rows,
        false,
        "category",
    )?);
    figures.push(group_bars(
        "chart-top-brands",
        "Top recommended brands",
        "The 10 brands recommended most often, with their share of all recommendations (unknown: no brand in the data).".to_string(),
        &top10(&r.brands),
        r.rows,
        false,
        "brand",
    )?);
    let dropped = r.sample_size - r.sample.len() as i64;
    figures.push(Figure::new(
        "chart-score-price",
        "Score against price",
        format!(
            "A fixed-seed sample of {} recommendations: the product's mean price against the score{}.",
            format::int(r.sample.len() as i64),
            if dropped > 0 { format!(" ({} sampled products without a price left out)", format::int(dropped)) } else { String::new() }
        ),
        if r.sample.is_empty() {
            None
        } else {
            Some(charts::scatter(&Scatter { points: &r.sample, x_desc: "product mean price (USD)", y_desc: "score (unitless)" })?)
        },
    ));
    figures.push(group_bars(
        "chart-category-score",
        "Mean score by category",
        format!(
            "Mean recommendation score of the {} most recommended top-level categories.",
            r.categories.len()
        ),
        &r.categories,
        r.rows,
        true,
        "category",
    )?);
    figures.push(group_bars(
        "chart-brand-score",
        "Mean score by brand",
        format!(
            "Mean recommendation score of the {} most recommended brands.",
            r.brands.len()
        ),
        &r.brands,
        r.rows,
        true,
        "brand",
    )?);
    let labels = strings([
        "in the events".to_string(),
        "in the model".to_string(),
        "recommended".to_string(),
    ]);
    let counts = [d.totals.products, r.model_products, r.recommended_products];
    let values: Vec<f64> = counts.iter().map(|c| *c as f64).collect();
    let notes = strings(
        counts
            .iter()
            .map(|c| count_and_share(*c, d.totals.products)),
    );
    figures.push(Figure::new(
        "chart-coverage",
        "Catalogue coverage",
        "Distinct products in the events, in the model, and recommended to at least one user; shares of the products in the events.".to_string(),
        draw_bars(true, Bars::new(&labels, &values, "products", "products (count)").notes(notes).color(2))?,
    ));
    Ok(figures)
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| format::fixed(x, 4))
        .unwrap_or_else(|| "–".to_string())
}

fn evaluation_figure(d: &ReportData) -> Option<Figure> {
    let rows = d.evaluation.as_ref()?;
    let mut f = Figure::new(
        "table-evaluation",
        "Ranking metrics on a time split",
        "Ranking quality on the time split of ecoreco.evaluate_recommendations (averages over the users evaluated; coverage: distinct recommended products / products in the model).".to_string(),
        None,
    );
    let mut t = String::from(
        "<table><thead><tr><th class=\"text\">model</th><th>k</th><th>precision</th><th>recall</th><th>NDCG</th>\
         <th>MAP</th><th>coverage</th><th>users evaluated</th></tr></thead><tbody>",
    );
    for r in rows {
        let _ = write!(
            t,
            "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.model),
            r.k.map(format::int).unwrap_or_default(),
            cell(r.precision),
            cell(r.recall),
            cell(r.ndcg),
            cell(r.map),
            cell(r.coverage),
            r.users_evaluated.map(format::int).unwrap_or_default()
        );
    }
    t.push_str("</tbody></table>");
    f.extra = t;
    Some(f)
}

/// The whole page.
pub fn render(d: &ReportData) -> Result<String> {
    let mut out = String::with_capacity(256 * 1024);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ecoreco report</title><style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head><body>\n<header><h1>ecoreco report</h1>");
    let t = &d.totals;
    let span = match (&t.first_event, &t.last_event) {
        (Some(a), Some(b)) => format!(", from {} to {} (UTC)", a, b),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<p class=\"summary\">{} events, {} users, {} sessions, {} products{}; revenue {} USD. Written by ecoreco {}.</p></header>",
        format::int(t.events),
        format::int(t.users),
        format::int(t.sessions),
        format::int(t.products),
        escape(&span),
        format::fixed(t.revenue, 2),
        crate::VERSION
    );
    let sections: [(&str, &str, Vec<Figure>, &str); 5] = [
        ("events", "Behaviour", event_figures(d)?, ""),
        (
            "rfm",
            "RFM segments",
            rfm_figures(d)?,
            "No user has events.",
        ),
        (
            "segments",
            "Customer segments",
            segment_figures(d)?,
            "No segments table was given (segments := 'segments').",
        ),
        (
            "recommendations",
            "Recommendations",
            recommendation_figures(d)?,
            "No model was given (model := 'model').",
        ),
        (
            "evaluation",
            "Evaluation",
            evaluation_figure(d).into_iter().collect(),
            "No evaluation table was given (evaluation := 'evaluation').",
        ),
    ];
    for (id, title, figures, missing) in sections {
        let _ = writeln!(out, "<section id=\"{id}\"><h2>{}</h2>", escape(title));
        if figures.is_empty() {
            let _ = write!(out, "<p class=\"empty\">{}</p>", escape(missing));
        }
        for f in &figures {
            f.html(&mut out);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    Ok(out)
}
