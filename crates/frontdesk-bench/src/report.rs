//! Results: one `Row` per scenario or baseline run, written as JSON (machine-readable), a
//! Markdown table (for docs/performance.md), an SVG bar chart (written by hand) and a table on
//! stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::stats::Summary;

/// One measured run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// `sqlite`, `postgres`, or `none` for baselines that use no database.
    pub backend: String,
    /// Scenario or baseline name: `ingest`, `baseline-b-store`, …
    pub name: String,
    /// `scenario` or `baseline`.
    pub kind: String,
    /// What was done, in a few words.
    pub title: String,
    pub throughput: f64,
    /// The unit of `throughput`: `msg/s`, `req/s`, `conn/s`.
    pub unit: String,
    pub latency: Summary,
    /// What one latency sample is.
    pub latency_of: String,
    /// CPU seconds (user + system) of the process under test during the measured phase.
    pub server_cpu_seconds: f64,
    /// Peak resident memory (VmHWM) of the process under test, MiB.
    pub server_peak_rss_mib: f64,
    /// CPU seconds of the load generator itself during the measured phase: it shares the
    /// machine, so this is what the server could not use.
    pub client_cpu_seconds: f64,
    /// Length of the measured phase.
    pub measured_seconds: f64,
    /// Failed requests, lost or duplicated events, dropped connections… must be 0.
    pub errors: u64,
    pub error_notes: Vec<String>,
    /// The baseline this run is compared with, if any.
    pub baseline: Option<String>,
    pub ratio: Option<f64>,
    /// How `ratio` is computed.
    pub ratio_of: String,
    /// The issue's target for this figure, in words.
    pub target: String,
    pub target_met: Option<bool>,
    /// Scenario-specific figures (per-connection memory, delivered ratio, …).
    pub extra: BTreeMap<String, Value>,
}

impl Row {
    pub fn new(backend: &str, name: &str, kind: &str, title: &str) -> Self {
        Self {
            backend: backend.to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            title: title.to_owned(),
            ..Self::default()
        }
    }

    pub fn extra(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    pub fn error(&mut self, count: u64, note: impl Into<String>) {
        if count > 0 {
            self.errors += count;
            self.error_notes.push(note.into());
        }
    }

    /// Ratio to a baseline (`None` when the baseline did not run or measured zero).
    pub fn compare(&mut self, baseline: Option<&Row>, ratio_of: &str, f: impl Fn(&Row) -> f64) {
        let Some(baseline) = baseline else {
            return;
        };
        let denominator = f(baseline);
        self.baseline = Some(baseline.name.clone());
        self.ratio_of = ratio_of.to_owned();
        if denominator > 0.0 {
            self.ratio = Some(f(self) / denominator);
        }
    }
}

/// Run-wide facts printed with the results.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub mode: String,
    pub started_at: String,
    pub commit: String,
    pub dirty: bool,
    pub machine: String,
    pub total_seconds: f64,
    pub skipped: Vec<String>,
}

pub fn write_all(out: &Path, meta: &Meta, rows: &[Row]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: String| -> Result<()> {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        "results.json",
        serde_json::to_string_pretty(&to_json(meta, rows))?,
    )?;
    write("results.md", markdown(meta, rows))?;
    write("chart.svg", svg(meta, rows))?;
    Ok(())
}

/// `{meta, baselines: {name: row}, backends: {backend: {scenario: row}}, rows: [...]}`.
fn to_json(meta: &Meta, rows: &[Row]) -> Value {
    let mut backends: BTreeMap<String, BTreeMap<String, &Row>> = BTreeMap::new();
    let mut baselines: BTreeMap<String, &Row> = BTreeMap::new();
    for row in rows {
        if row.backend == "none" {
            baselines.insert(row.name.clone(), row);
        } else {
            backends
                .entry(row.backend.clone())
                .or_default()
                .insert(row.name.clone(), row);
        }
    }
    json!({
        "meta": meta,
        "errors": rows.iter().map(|r| r.errors).sum::<u64>(),
        "baselines": baselines,
        "backends": backends,
        "rows": rows,
    })
}

/// `850 µs`, `1.24 ms`, `2.5 s`.
pub fn duration(micros: u64) -> String {
    if micros == 0 {
        "-".to_owned()
    } else if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.2} ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2} s", micros as f64 / 1_000_000.0)
    }
}

/// Thousands separated with commas; one decimal below 100.
pub fn number(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio_text(row: &Row) -> String {
    match (&row.baseline, row.ratio) {
        (Some(baseline), Some(ratio)) => format!("{ratio:.2}× {baseline}"),
        (Some(baseline), None) => format!("- ({baseline})"),
        _ => "-".to_owned(),
    }
}

fn target_text(row: &Row) -> String {
    let verdict = match row.target_met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    if row.target.is_empty() {
        verdict.to_owned()
    } else {
        format!("{verdict}: {}", row.target)
    }
}

const COLUMNS: [&str; 13] = [
    "backend",
    "run",
    "throughput",
    "p50",
    "p90",
    "p99",
    "max",
    "server CPU s",
    "server peak RSS",
    "machine busy",
    "errors",
    "ratio",
    "target",
];

fn cells(row: &Row) -> [String; 13] {
    [
        row.backend.clone(),
        row.name.clone(),
        format!("{} {}", number(row.throughput), row.unit),
        duration(row.latency.p50_us),
        duration(row.latency.p90_us),
        duration(row.latency.p99_us),
        duration(row.latency.max_us),
        format!("{:.1}", row.server_cpu_seconds),
        format!("{:.0} MiB", row.server_peak_rss_mib),
        // The whole machine's busy share over the measured phase: far above what the server,
        // the load generator and PostgreSQL used means something else was running.
        row.extra
            .get("machine_cpu_busy")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned(),
        row.errors.to_string(),
        ratio_text(row),
        target_text(row),
    ]
}

pub fn markdown(meta: &Meta, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Mode `{}`, commit `{}`{}, started {}, {:.0} s in all. Machine: {}.\n",
        meta.mode,
        meta.commit,
        if meta.dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        meta.started_at,
        meta.total_seconds,
        meta.machine
    );
    let _ = writeln!(out, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(COLUMNS.len()));
    for row in rows {
        let escaped = cells(row).map(|cell| cell.replace('|', "\\|"));
        let _ = writeln!(out, "| {} |", escaped.join(" | "));
    }
    let _ = writeln!(out, "\n### Details\n");
    for row in rows {
        let _ = writeln!(
            out,
            "- **{} / {}** ({}): latency = {}; client CPU {:.1} s over {:.1} s measured.",
            row.backend,
            row.name,
            row.title,
            if row.latency_of.is_empty() {
                "-"
            } else {
                &row.latency_of
            },
            row.client_cpu_seconds,
            row.measured_seconds
        );
        if !row.ratio_of.is_empty() {
            let _ = writeln!(out, "  - ratio: {}", row.ratio_of);
        }
        for (key, value) in &row.extra {
            match value {
                Value::String(text) => {
                    let _ = writeln!(out, "  - {key}: {text}");
                }
                other => {
                    let _ = writeln!(out, "  - {key}: {other}");
                }
            }
        }
        for note in &row.error_notes {
            let _ = writeln!(out, "  - ERROR: {note}");
        }
    }
    if !meta.skipped.is_empty() {
        let _ = writeln!(out, "\nSkipped: {}", meta.skipped.join("; "));
    }
    out
}

/// The table for the terminal: aligned columns, no Markdown.
pub fn text_table(rows: &[Row]) -> String {
    let table: Vec<[String; 13]> = rows.iter().map(cells).collect();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for row in &table {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        text.trim_end().to_owned()
    };
    let mut out = line(&COLUMNS.map(str::to_owned));
    out.push('\n');
    for row in &table {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn colour(row: &Row) -> &'static str {
    match (row.kind.as_str(), row.backend.as_str()) {
        ("baseline", _) => "#9e9e9e",
        (_, "sqlite") => "#3a7bd5",
        (_, "postgres") => "#2e9e5b",
        _ => "#777777",
    }
}

/// Horizontal bars on a log10 axis: values span four orders of magnitude (a history query in
/// a millisecond, a reconnect storm in seconds).
struct Panel<'a> {
    title: &'a str,
    unit: &'a str,
    /// (value, lighter value drawn behind it, if any) per row.
    values: Vec<(f64, Option<f64>)>,
}

pub fn svg(meta: &Meta, rows: &[Row]) -> String {
    const LABEL: f64 = 300.0;
    const BAR_AREA: f64 = 640.0;
    // Room right of the longest bar for its value.
    const WIDTH: f64 = LABEL + BAR_AREA + 300.0;
    const ROW_H: f64 = 20.0;
    let latency_ms = |us: u64| us as f64 / 1_000.0;
    let panels = [
        Panel {
            title: "Latency: p50 (dark) and p99 (light), ms, log scale",
            unit: "ms",
            values: rows
                .iter()
                .map(|r| {
                    (
                        latency_ms(r.latency.p50_us),
                        Some(latency_ms(r.latency.p99_us)),
                    )
                })
                .collect(),
        },
        Panel {
            title: "Throughput per second, log scale (unit per row)",
            unit: "",
            values: rows.iter().map(|r| (r.throughput, None)).collect(),
        },
    ];
    let panel_height = 40.0 + ROW_H * rows.len() as f64 + 30.0;
    let height = 70.0 + panel_height * panels.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="24" font-size="16" font-weight="bold">Frontdesk benchmark ({}), commit {}</text>"#,
        escape(&meta.mode),
        escape(&meta.commit)
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="44" fill="#555">{}. Blue: SQLite, green: PostgreSQL, grey: baselines.</text>"##,
        escape(&meta.machine)
    );
    for (p, panel) in panels.iter().enumerate() {
        let top = 70.0 + panel_height * p as f64;
        let positive = panel
            .values
            .iter()
            .flat_map(|(a, b)| [Some(*a), *b])
            .flatten()
            .filter(|v| *v > 0.0);
        let (mut low, mut high) = (f64::MAX, 0.0_f64);
        for v in positive {
            low = low.min(v);
            high = high.max(v);
        }
        if high <= 0.0 {
            continue;
        }
        let lo_exp = low.log10().floor();
        let hi_exp = high.log10().ceil().max(lo_exp + 1.0);
        let x = |v: f64| -> f64 {
            if v <= 0.0 {
                return LABEL;
            }
            LABEL + BAR_AREA * ((v.log10() - lo_exp) / (hi_exp - lo_exp)).clamp(0.0, 1.0)
        };
        let _ = writeln!(
            out,
            r#"<text x="10" y="{}" font-size="14" font-weight="bold">{}</text>"#,
            top + 16.0,
            escape(panel.title)
        );
        let axis_y = top + 30.0 + ROW_H * rows.len() as f64;
        let mut exp = lo_exp;
        while exp <= hi_exp {
            let gx = x(10f64.powf(exp));
            let _ = writeln!(
                out,
                r##"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{axis_y}" stroke="#ddd"/><text x="{gx:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                top + 26.0,
                axis_y + 14.0,
                escape(&axis_label(10f64.powf(exp)))
            );
            exp += 1.0;
        }
        for (i, (row, (value, behind))) in rows.iter().zip(&panel.values).enumerate() {
            let y = top + 30.0 + ROW_H * i as f64;
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{} / {}</text>"#,
                LABEL - 6.0,
                y + 13.0,
                escape(&row.backend),
                escape(&row.name)
            );
            if let Some(behind) = behind.filter(|b| *b > 0.0) {
                let _ = writeln!(
                    out,
                    r#"<rect x="{LABEL}" y="{}" width="{:.1}" height="{}" fill="{}" opacity="0.35"/>"#,
                    y + 2.0,
                    x(behind) - LABEL,
                    ROW_H - 4.0,
                    colour(row)
                );
            }
            if *value > 0.0 {
                let _ = writeln!(
                    out,
                    r#"<rect x="{LABEL}" y="{}" width="{:.1}" height="{}" fill="{}"/>"#,
                    y + 2.0,
                    x(*value) - LABEL,
                    ROW_H - 4.0,
                    colour(row)
                );
            }
            let label = match (panel.unit, behind) {
                ("ms", Some(b)) => format!(
                    "p50 {} · p99 {}",
                    duration((value * 1000.0) as u64),
                    duration((b * 1000.0) as u64)
                ),
                _ => format!("{} {}", number(*value), row.unit),
            };
            let end = x(behind.unwrap_or(0.0).max(*value));
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}">{}</text>"#,
                end + 6.0,
                y + 13.0,
                escape(&label)
            );
        }
    }
    let _ = writeln!(out, "</svg>");
    out
}

fn axis_label(value: f64) -> String {
    if value >= 1.0 {
        number(value).trim_end_matches(".0").to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Meta, Vec<Row>) {
        let meta = Meta {
            mode: "quick".into(),
            started_at: "now".into(),
            commit: "abc".into(),
            dirty: false,
            machine: "2 cores".into(),
            total_seconds: 1.0,
            skipped: vec![],
        };
        let mut row = Row::new("sqlite", "ingest", "scenario", "POST messages");
        row.throughput = 12_345.0;
        row.unit = "msg/s".into();
        row.latency = Summary {
            count: 10,
            p50_us: 900,
            p90_us: 1_500,
            p99_us: 4_000,
            max_us: 9_000,
            mean_us: 1_000.0,
        };
        (meta, vec![row])
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(number(12_345.4), "12,345");
        assert_eq!(number(1_000_000.0), "1,000,000");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(duration(850), "850 µs");
        assert_eq!(duration(1_240), "1.24 ms");
    }

    #[test]
    fn writes_every_format() {
        let (meta, rows) = sample();
        let md = markdown(&meta, &rows);
        assert!(md.contains("| sqlite | ingest | 12,345 msg/s |"), "{md}");
        assert!(md.contains("| 9.00 ms | 0.0 | 0 MiB | - | 0 |"), "{md}");
        let svg = svg(&meta, &rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let json = to_json(&meta, &rows);
        assert_eq!(
            json["backends"]["sqlite"]["ingest"]["latency"]["p99_us"],
            4_000
        );
    }
}
