//! The usage report for people (table, markdown, a self-contained HTML page) and for programs
//! (json, csv). Every name in it comes from the policy or the store, so each format escapes
//! it as that format needs.

use std::fmt::Write;

use super::{Consumer, RuleUsage, UsageReport};
use crate::hygiene::render::csv_field;
use crate::model::Money;
use crate::render::untrusted;

fn money(micros: u64) -> String {
    Money::from_micros(micros).to_string()
}

fn optional(value: Option<u64>, money_like: bool) -> String {
    match value {
        None => "-".into(),
        Some(v) if money_like => money(v),
        Some(v) => v.to_string(),
    }
}

fn window_cell(rule: &RuleUsage) -> String {
    if rule.window_name == "now" {
        "last minute".into()
    } else {
        format!("{} {}", rule.window.as_str(), rule.window_name)
    }
}

fn scope_cell(consumer: &Consumer) -> String {
    format!("{} {}", consumer.scope.kind(), consumer.scope.name())
}

/// Columns padded to their widest cell.
fn columns(rows: &[Vec<String>]) -> String {
    let mut widths = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            if widths.len() <= i {
                widths.push(width);
            } else {
                widths[i] = widths[i].max(width);
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// For a terminal: three tables.
pub fn table(report: &UsageReport) -> String {
    let t = |text: &str| untrusted::terminal(text).into_owned();
    let mut out = format!(
        "Usage at {} (used or reserved; a rate counts the last minute)\n\n",
        report.at
    );
    let mut rows = vec![
        ["RULE", "WINDOW", "USED", "LIMIT", "LEFT", "%", "WORDING"]
            .map(String::from)
            .to_vec(),
    ];
    for rule in &report.rules {
        rows.push(vec![
            t(&rule.id),
            window_cell(rule),
            rule.amount(rule.used),
            rule.amount(rule.limit),
            rule.amount(rule.left),
            format!("{:.1}", rule.percent),
            t(&rule.rule),
        ]);
    }
    if report.rules.is_empty() {
        out.push_str("No counted rule is in force.\n");
    } else {
        out.push_str(&columns(&rows));
    }
    let _ = writeln!(out, "\nMonth to date ({}), as metered:", report.month);
    let mut rows = vec![
        ["WORKSPACE", "MODEL", "REQUESTS", "TOKENS", "SPEND"]
            .map(String::from)
            .to_vec(),
    ];
    for workspace in &report.workspaces {
        rows.push(vec![
            t(&workspace.workspace),
            "(all)".into(),
            workspace.requests.to_string(),
            workspace.tokens.to_string(),
            money(workspace.spend_micros),
        ]);
        for model in &workspace.models {
            rows.push(vec![
                t(&workspace.workspace),
                t(&model.model),
                model.requests.to_string(),
                model.tokens.to_string(),
                money(model.spend_micros),
            ]);
        }
    }
    if report.workspaces.is_empty() {
        out.push_str("Nothing metered this month.\n");
    } else {
        out.push_str(&columns(&rows));
    }
    out.push_str("\nHeaviest consumers:\n");
    let mut rows = vec![
        [
            "WHO",
            "SPEND THIS MONTH",
            "TOKENS TODAY",
            "REQUESTS LAST MINUTE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for consumer in &report.consumers {
        rows.push(vec![
            t(&scope_cell(consumer)),
            optional(consumer.spend_month_micros, true),
            optional(consumer.tokens_day, false),
            optional(consumer.requests_minute, false),
        ]);
    }
    if report.consumers.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(&columns(&rows));
    }
    out
}

/// Stable and versioned (`format_version`): amounts as integers (spend in micro-units).
pub fn json(report: &UsageReport) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// One row per rule, then per workspace and model, then per consumer, with a `section`
/// column saying which.
pub fn csv(report: &UsageReport) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        [
            "section",
            "id",
            "window",
            "window_start",
            "used",
            "limit",
            "left",
            "percent",
            "requests",
            "tokens",
            "spend_micros",
            "wording",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let empty = String::new;
    for rule in &report.rules {
        rows.push(vec![
            "rule".into(),
            rule.id.clone(),
            rule.window_name.clone(),
            rule.window_start.to_string(),
            rule.used.to_string(),
            rule.limit.to_string(),
            rule.left.to_string(),
            format!("{:.1}", rule.percent),
            empty(),
            empty(),
            empty(),
            rule.rule.clone(),
        ]);
    }
    for workspace in &report.workspaces {
        let mut month = |id: String, requests: u64, tokens: u64, spend: u64| {
            rows.push(vec![
                "month".into(),
                id,
                report.month.clone(),
                empty(),
                empty(),
                empty(),
                empty(),
                empty(),
                requests.to_string(),
                tokens.to_string(),
                spend.to_string(),
                empty(),
            ]);
        };
        month(
            format!("workspace:{}", workspace.workspace),
            workspace.requests,
            workspace.tokens,
            workspace.spend_micros,
        );
        for model in &workspace.models {
            month(
                format!("workspace:{}:model:{}", workspace.workspace, model.model),
                model.requests,
                model.tokens,
                model.spend_micros,
            );
        }
    }
    for consumer in &report.consumers {
        let number = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
        rows.push(vec![
            "consumer".into(),
            format!("{}:{}", consumer.scope.kind(), consumer.scope.name()),
            empty(),
            empty(),
            empty(),
            empty(),
            empty(),
            empty(),
            number(consumer.requests_minute),
            number(consumer.tokens_day),
            number(consumer.spend_month_micros),
            empty(),
        ]);
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().map(|cell| csv_field(cell)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// For a pull request or a wiki page.
pub fn markdown(report: &UsageReport) -> String {
    let md = untrusted::markdown;
    let mut out = format!(
        "## Usage at {}\n\nUsed or reserved in each rule's current window (a rate counts the last minute).\n\n",
        report.at
    );
    if report.rules.is_empty() {
        out.push_str("No counted rule is in force.\n");
    } else {
        out.push_str("| Rule | Window | Used | Limit | Left | % |\n|---|---|--:|--:|--:|--:|\n");
        for rule in &report.rules {
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} | {} | {:.1} |",
                untrusted::markdown_code(&rule.id),
                md(&rule.rule),
                md(&window_cell(rule)),
                rule.amount(rule.used),
                rule.amount(rule.limit),
                rule.amount(rule.left),
                rule.percent
            );
        }
    }
    let _ = writeln!(out, "\n### Month to date ({})\n", report.month);
    if report.workspaces.is_empty() {
        out.push_str("Nothing metered this month.\n");
    } else {
        out.push_str("| Workspace | Model | Requests | Tokens | Spend |\n|---|---|--:|--:|--:|\n");
        for workspace in &report.workspaces {
            let _ = writeln!(
                out,
                "| {} | (all) | {} | {} | {} |",
                md(&workspace.workspace),
                workspace.requests,
                workspace.tokens,
                money(workspace.spend_micros)
            );
            for model in &workspace.models {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    md(&workspace.workspace),
                    md(&model.model),
                    model.requests,
                    model.tokens,
                    money(model.spend_micros)
                );
            }
        }
    }
    out.push_str("\n### Heaviest consumers\n\n");
    if report.consumers.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(
            "| Who | Spend this month | Tokens today | Requests last minute |\n|---|--:|--:|--:|\n",
        );
        for consumer in &report.consumers {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&scope_cell(consumer)),
                optional(consumer.spend_month_micros, true),
                optional(consumer.tokens_day, false),
                optional(consumer.requests_minute, false)
            );
        }
    }
    out
}

/// Text inside an HTML element or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}\
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.bar{width:16rem;height:.9rem;background:#e8eef5}.bar svg{display:block}\
code{font-size:.9em}";

/// One self-contained page: inline style and SVG, nothing fetched. A burn-down bar per rule
/// (the share of its limit used), and spend per day as a bar chart. Numbers sit in `data-`
/// attributes as the JSON has them, for tools (and the test that renders it) to read back.
pub fn html(report: &UsageReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>Usage at {at}</title><style>{STYLE}</style></head><body>\n\
<h1>Usage at {at}</h1>\n<p>Used or reserved in each rule's current window (a rate counts the last minute).</p>\n",
        at = escape(&report.at.to_string())
    );
    out.push_str("<table id=\"rules\"><tr><th>Rule</th><th>Window</th><th>Used</th><th>Limit</th><th>Left</th><th>%</th><th>Burn-down</th></tr>\n");
    for rule in &report.rules {
        let filled = rule.percent.clamp(0.0, 100.0);
        let color = if filled >= 90.0 {
            "#c62828"
        } else if filled >= 75.0 {
            "#ef6c00"
        } else {
            "#2e7d32"
        };
        let _ = writeln!(
            out,
            "<tr class=\"rule\" data-id=\"{id}\" data-used=\"{used}\" data-limit=\"{limit}\" data-left=\"{left}\" data-percent=\"{percent:.1}\">\
<td><code>{id}</code><br>{wording}</td><td>{window}</td><td class=\"n\">{used_text}</td><td class=\"n\">{limit_text}</td>\
<td class=\"n\">{left_text}</td><td class=\"n\">{percent:.1}</td>\
<td><div class=\"bar\"><svg width=\"100%\" height=\"14\" viewBox=\"0 0 100 14\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{percent:.1}% used\">\
<rect x=\"0\" y=\"0\" width=\"{filled:.1}\" height=\"14\" fill=\"{color}\"/></svg></div></td></tr>",
            id = escape(&rule.id),
            wording = escape(&rule.rule),
            window = escape(&window_cell(rule)),
            used = rule.used,
            limit = rule.limit,
            left = rule.left,
            percent = rule.percent,
            used_text = escape(&rule.amount(rule.used)),
            limit_text = escape(&rule.amount(rule.limit)),
            left_text = escape(&rule.amount(rule.left)),
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(out, "<h2>Spend per day ({})</h2>", escape(&report.month));
    out.push_str(&day_chart(report));
    out.push_str("<h2>Month to date</h2>\n<table id=\"workspaces\"><tr><th>Workspace</th><th>Model</th><th>Requests</th><th>Tokens</th><th>Spend</th></tr>\n");
    for workspace in &report.workspaces {
        let _ = writeln!(
            out,
            "<tr class=\"workspace\" data-workspace=\"{w}\" data-requests=\"{r}\" data-tokens=\"{t}\" data-spend-micros=\"{s}\"><td>{w}</td><td>(all)</td><td class=\"n\">{r}</td><td class=\"n\">{t}</td><td class=\"n\">{m}</td></tr>",
            w = escape(&workspace.workspace),
            r = workspace.requests,
            t = workspace.tokens,
            s = workspace.spend_micros,
            m = money(workspace.spend_micros)
        );
        for model in &workspace.models {
            let _ = writeln!(
                out,
                "<tr class=\"model\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&workspace.workspace),
                escape(&model.model),
                model.requests,
                model.tokens,
                money(model.spend_micros)
            );
        }
    }
    out.push_str("</table>\n<h2>Heaviest consumers</h2>\n<table id=\"consumers\"><tr><th>Who</th><th>Spend this month</th><th>Tokens today</th><th>Requests last minute</th></tr>\n");
    for consumer in &report.consumers {
        let _ = writeln!(
            out,
            "<tr class=\"consumer\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&scope_cell(consumer)),
            optional(consumer.spend_month_micros, true),
            optional(consumer.tokens_day, false),
            optional(consumer.requests_minute, false)
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

/// Spend per day as SVG bars, scaled to the month's largest day.
fn day_chart(report: &UsageReport) -> String {
    const HEIGHT: f64 = 120.0;
    const BAR: f64 = 14.0;
    let largest = report
        .days
        .iter()
        .map(|day| day.spend_micros)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = (report.days.len().max(1) as f64) * (BAR + 4.0);
    let mut out = format!(
        "<svg id=\"days\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\" role=\"img\" aria-label=\"spend per day\">\n",
        HEIGHT + 16.0,
        HEIGHT + 16.0
    );
    for (i, day) in report.days.iter().enumerate() {
        let height = HEIGHT * day.spend_micros as f64 / largest as f64;
        let x = i as f64 * (BAR + 4.0);
        let _ = writeln!(
            out,
            "<g class=\"day\" data-day=\"{d}\" data-spend-micros=\"{s}\"><title>{d}: {m}</title>\
<rect x=\"{x}\" y=\"{y:.1}\" width=\"{BAR}\" height=\"{height:.1}\" fill=\"#1565c0\"/>\
<text x=\"{tx}\" y=\"{ty}\" font-size=\"8\" text-anchor=\"middle\">{n}</text></g>",
            d = escape(&day.day),
            s = day.spend_micros,
            m = money(day.spend_micros),
            y = HEIGHT - height,
            tx = x + BAR / 2.0,
            ty = HEIGHT + 12.0,
            n = escape(day.day.rsplit('-').next().unwrap_or("")),
        );
    }
    out.push_str("</svg>\n");
    out
}
