//! How results are shown: readable tables that fit the terminal (human), the API's JSON
//! (`--json`), or tab-separated rows (`--plain`). Colour only on a terminal, never with
//! `NO_COLOR`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
    Plain,
}

/// Where and how to print.
#[derive(Debug, Clone)]
pub struct Out {
    pub mode: Mode,
    pub color: bool,
    /// Columns available to a table line.
    pub width: usize,
}

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const RED: Style = AnsiColor::Red.on_default();
pub const GREEN: Style = AnsiColor::Green.on_default();
pub const YELLOW: Style = AnsiColor::Yellow.on_default();
pub const BLUE: Style = AnsiColor::Blue.on_default();
pub const CYAN: Style = AnsiColor::Cyan.on_default();
pub const MAGENTA: Style = AnsiColor::Magenta.on_default();
pub const PLAIN: Style = Style::new();

impl Out {
    pub fn new(mode: Mode) -> Self {
        let tty = std::io::stdout().is_terminal();
        Self { mode, color: mode == Mode::Human && use_color(tty), width: terminal_width(tty) }
    }

    pub fn human(&self) -> bool {
        self.mode == Mode::Human
    }

    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color && style != PLAIN && !text.is_empty() {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(BOLD, text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(DIM, text)
    }

    /// A dim hint or footer, wrapped to the width at `indent`; ends with a newline.
    pub fn note(&self, text: &str, indent: usize) -> String {
        self.para(text, indent, DIM)
    }

    /// Text wrapped to the width at `indent`, each line painted; ends with a newline.
    pub fn para(&self, text: &str, indent: usize, style: Style) -> String {
        if self.mode != Mode::Human {
            return format!("{}{text}\n", " ".repeat(indent));
        }
        let pad = " ".repeat(indent);
        wrap(text, self.width, indent)
            .lines()
            .map(|l| match l.strip_prefix(&pad) {
                Some(rest) => format!("{pad}{}\n", self.paint(style, rest)),
                None => format!("{}\n", self.paint(style, l)),
            })
            .collect()
    }

    /// A section heading in detail views.
    pub fn heading(&self, text: &str) -> String {
        self.paint(BOLD.underline(), text)
    }
}

/// Colour on a terminal, never with `NO_COLOR` set (no-color.org); `CLICOLOR_FORCE=1` forces it
/// (for pagers such as `less -R`).
pub fn use_color(tty: bool) -> bool {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0");
    if set("NO_COLOR") {
        return false;
    }
    tty || set("CLICOLOR_FORCE")
}

/// `COLUMNS` wins (scripts and tests set it), then the terminal, else a generous default for
/// output going to a file or a pipe.
fn terminal_width(tty: bool) -> usize {
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|w| *w >= 20) {
        return w;
    }
    match terminal_size::terminal_size() {
        Some((terminal_size::Width(w), _)) if tty => (w as usize).max(20),
        _ => 120,
    }
}

/// Writes to stdout; a closed pipe (`loop list | head -1`) is not an error.
pub fn emit(text: &str) {
    if text.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ =
        out.write_all(text.as_bytes()).and_then(|_| if text.ends_with('\n') { Ok(()) } else { out.write_all(b"\n") });
    let _ = out.flush();
}

/// Pretty JSON, as `--json` prints it. Values are the API's as they are; keys come in the
/// order the server writes its entities (identity first, timestamps last) rather than
/// alphabetically, so `id`, `number` and `title` lead.
pub fn json(value: &Value) -> String {
    let mut s = String::new();
    write_json(value, 0, &mut s);
    s.push('\n');
    s
}

/// Where a key goes among its siblings (lower first); unknown keys sit between the named ones
/// and the timestamps, alphabetically.
fn key_rank(key: &str) -> usize {
    const FIRST: &[&str] = &[
        "data",
        "total",
        "warnings",
        "url",
        "key",
        "value",
        "source",
        "path",
        "deleted",
        "removed",
        "issue",
        "signal",
        "id",
        "number",
        "slug",
        "title",
        "name",
        "kind",
        "actor",
        "agent",
        "body",
        "description",
        "eligible",
        "reasons",
        "blockers",
        "lease",
        "score",
        "breakdown",
        "position",
        "prompt",
        "meta",
        "session",
        "type",
        "severity",
        "status",
        "health",
        "priority",
        "color",
        "templateId",
        "version",
        "content",
        "changelog",
        "parentId",
        "projectId",
        "goalId",
        "issueId",
        "relatedIssueId",
        "metric",
        "targetValue",
        "currentValue",
        "unit",
        "conditions",
        "specificity",
        "activeVersionId",
        "signalSource",
        "signalPayload",
        "sourceId",
        "payload",
        "hypothesis",
        "agentSessionId",
        "agentSummary",
        "commits",
        "pullRequests",
        "authorName",
        "authorType",
        "templateVersionId",
        "outcome",
        "summary",
        "tokens",
        "costUsd",
        "durationMs",
        "usageCount",
        "completionRate",
        "avgDurationMs",
        "reviewScore",
        "priorityWeight",
        "goalBonus",
        "ageBonus",
        "typeBonus",
    ];
    const LAST: &[&str] = &[
        "todoSince",
        "claimedAt",
        "leaseExpiresAt",
        "endedAt",
        "completedAt",
        "createdAt",
        "updatedAt",
        "activatedAt",
        "deletedAt",
        "parent",
        "children",
        "labels",
        "relations",
        "replies",
        "goal",
        "issueCounts",
        "activeVersion",
        "versions",
        "comments",
        "sessions",
        "events",
    ];
    if let Some(i) = FIRST.iter().position(|k| *k == key) {
        i
    } else if let Some(i) = LAST.iter().position(|k| *k == key) {
        2000 + i
    } else {
        1000
    }
}

fn write_json(v: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::Object(m) if !m.is_empty() => {
            // `data` leads an envelope ({data, total}); elsewhere (an event's data) it is a field.
            let envelope = m.contains_key("total") || m.contains_key("warnings");
            let rank = |k: &str| if k == "data" && !envelope { 1000 } else { key_rank(k) };
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(": ");
                write_json(&m[k.as_str()], depth + 1, out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_json(x, depth + 1, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_else(|_| "null".into())),
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

pub struct Column {
    pub header: &'static str,
    pub align: Align,
    /// The column that shrinks (with an ellipsis) to fit the width; usually the title.
    pub flex: bool,
}

pub fn col(header: &'static str) -> Column {
    Column { header, align: Align::Left, flex: false }
}

pub fn num_col(header: &'static str) -> Column {
    Column { header, align: Align::Right, flex: false }
}

pub fn flex_col(header: &'static str) -> Column {
    Column { header, align: Align::Left, flex: true }
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, style: PLAIN }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell { text: text.to_owned(), style: PLAIN }
    }
}

pub fn cell(text: impl Into<String>, style: Style) -> Cell {
    Cell { text: text.into(), style }
}

pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Left margin in human mode.
    pub indent: usize,
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Self {
        Self { columns, rows: Vec::new(), indent: 0 }
    }

    pub fn indent(mut self, n: usize) -> Self {
        self.indent = n;
        self
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Human: aligned columns under a bold header, the flex column truncated to fit `out.width`.
    /// Plain: one tab-separated line per row, no header, nothing truncated.
    pub fn render(&self, out: &Out) -> String {
        if out.mode != Mode::Human {
            let mut s = String::new();
            for row in &self.rows {
                let fields: Vec<String> = row.iter().map(|c| plain_field(&c.text)).collect();
                s.push_str(&fields.join("\t"));
                s.push('\n');
            }
            return s;
        }
        if self.rows.is_empty() {
            // No header over nothing: the caller says what is missing.
            return String::new();
        }
        let n = self.columns.len();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| width(c.header)).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(width(&one_line(&c.text)));
            }
        }
        let gap = 2;
        let total: usize = self.indent + widths.iter().sum::<usize>() + gap * n.saturating_sub(1);
        // Shrink the widest flexible column, one character at a time, until the line fits.
        let mut excess = total.saturating_sub(out.width);
        while excess > 0 {
            let widest = (0..n)
                .filter(|&i| self.columns[i].flex && widths[i] > width(self.columns[i].header).max(10))
                .max_by_key(|&i| widths[i]);
            let Some(i) = widest else { break };
            widths[i] -= 1;
            excess -= 1;
        }
        // The last column is not padded (no trailing spaces).
        let last = n - 1;
        let mut s = String::new();
        let line = |cells: Vec<(String, Style)>, s: &mut String| {
            s.push_str(&" ".repeat(self.indent));
            for (i, (text, style)) in cells.into_iter().enumerate() {
                let text = truncate(&text, widths[i]);
                let pad = widths[i].saturating_sub(width(&text));
                let painted = out.paint(style, &text);
                match self.columns[i].align {
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(&painted);
                    }
                    Align::Left => {
                        s.push_str(&painted);
                        if i != last {
                            s.push_str(&" ".repeat(pad));
                        }
                    }
                }
                if i != last {
                    s.push_str(&" ".repeat(gap));
                }
            }
            let trimmed = s.trim_end_matches(' ').len();
            s.truncate(trimmed);
            s.push('\n');
        };
        line(self.columns.iter().map(|c| (c.header.to_owned(), DIM.bold())).collect(), &mut s);
        for row in &self.rows {
            let mut cells: Vec<(String, Style)> = row.iter().take(n).map(|c| (one_line(&c.text), c.style)).collect();
            cells.resize(n, (String::new(), PLAIN));
            line(cells, &mut s);
        }
        s
    }
}

/// Detail views: `key  value` lines with the keys aligned (tab-separated in plain mode).
pub struct Fields {
    rows: Vec<(String, String, Style)>,
}

impl Fields {
    pub fn new() -> Self {
        Self { rows: Vec::new() }
    }

    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        self.styled(key, value, PLAIN);
    }

    pub fn styled(&mut self, key: &str, value: impl Into<String>, style: Style) {
        let value = value.into();
        if !value.is_empty() {
            self.rows.push((key.to_owned(), value, style));
        }
    }

    pub fn render(&self, out: &Out) -> String {
        let mut s = String::new();
        if out.mode != Mode::Human {
            for (k, v, _) in &self.rows {
                let _ = writeln!(s, "{k}\t{}", plain_field(v));
            }
            return s;
        }
        let w = self.rows.iter().map(|(k, _, _)| width(k)).max().unwrap_or(0);
        for (k, v, style) in &self.rows {
            let room = out.width.saturating_sub(w + 2).max(20);
            let _ = writeln!(s, "{}  {}", out.dim(&pad_right(k, w)), out.paint(*style, &truncate(&one_line(v), room)));
        }
        s
    }
}

impl Default for Fields {
    fn default() -> Self {
        Self::new()
    }
}

/// Terminal columns `s` takes (a CJK character takes two).
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// The longest start of `s` that fits in `columns`, and the rest.
fn split_at_width(s: &str, columns: usize) -> (&str, &str) {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used > columns {
            return s.split_at(i);
        }
    }
    (s, "")
}

pub fn pad_right(s: &str, w: usize) -> String {
    let n = width(s);
    if n >= w { s.to_owned() } else { format!("{s}{}", " ".repeat(w - n)) }
}

/// Cuts `s` to `max` columns, ending with `…` when anything was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut t = split_at_width(s, max - 1).0.trim_end().to_owned();
    t.push('…');
    t
}

/// Newlines and tabs become spaces: one row, one line.
pub fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r', '\t']) { s.split_whitespace().collect::<Vec<_>>().join(" ") } else { s.to_owned() }
}

fn plain_field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// Wraps `text` at `width` columns, each line prefixed by `indent` spaces.
pub fn wrap(text: &str, columns: usize, indent: usize) -> String {
    let mut out = String::new();
    for para in text.lines() {
        if para.trim().is_empty() {
            out.push('\n');
            continue;
        }
        // Keep a paragraph's own indentation (lists, code) on each of its lines.
        let lead: String = para.chars().take_while(|c| c.is_whitespace()).collect();
        let prefix = format!("{}{lead}", " ".repeat(indent));
        let room = columns.saturating_sub(width(&prefix)).max(20);
        let mut line = String::new();
        for word in para.split_whitespace() {
            let mut word = word.to_owned();
            // A word longer than a line (a URL, an id) is cut into pieces.
            while width(&word) > room {
                if !line.is_empty() {
                    let _ = writeln!(out, "{prefix}{line}");
                    line.clear();
                }
                let (head, rest) = split_at_width(&word, room);
                let _ = writeln!(out, "{prefix}{head}");
                word = rest.to_owned();
            }
            if word.is_empty() {
                continue;
            }
            if !line.is_empty() && width(&line) + 1 + width(&word) > room {
                let _ = writeln!(out, "{prefix}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        if !line.is_empty() {
            let _ = writeln!(out, "{prefix}{line}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Values: the CLI reads the API's JSON as it is, so it shows whatever the server sends.

pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

pub fn opt<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str().filter(|s| !s.is_empty())
}

pub fn int(v: &Value, key: &str) -> Option<i64> {
    v[key].as_i64().or_else(|| v[key].as_f64().map(|f| f as i64))
}

pub fn float(v: &Value, key: &str) -> Option<f64> {
    v[key].as_f64().or_else(|| v[key].as_str().and_then(|s| s.parse().ok()))
}

pub fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// `#42`, or the id when an entity has no number.
pub fn issue_no(issue: &Value) -> String {
    match int(issue, "number") {
        Some(n) => format!("#{n}"),
        None => s(issue, "id").to_owned(),
    }
}

pub fn priority_label(p: i64) -> &'static str {
    match p {
        1 => "urgent",
        2 => "high",
        3 => "medium",
        4 => "low",
        _ => "none",
    }
}

pub fn priority_style(p: i64) -> Style {
    match p {
        1 => RED.bold(),
        2 => YELLOW,
        3 => PLAIN,
        _ => DIM,
    }
}

pub fn status_style(status: &str) -> Style {
    match status {
        "triage" => MAGENTA,
        "backlog" => DIM,
        "todo" => BLUE,
        "in_progress" => YELLOW,
        "done" => GREEN,
        "canceled" => DIM,
        // Projects, goals, versions, sessions.
        "active" => GREEN,
        "achieved" | "completed" => GREEN,
        "abandoned" | "retired" | "paused" => DIM,
        "draft" => CYAN,
        "failed" | "expired" | "off_track" => RED,
        "released" | "at_risk" => YELLOW,
        "on_track" => GREEN,
        _ => PLAIN,
    }
}

/// A number without a pointless `.0`: `350`, `0.5`, `12.25`.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A score with one decimal.
pub fn score(n: f64) -> String {
    format!("{n:.1}")
}

/// `[██████░░░░]` for a fraction from 0 to 1.
pub fn bar(fraction: f64, cells: usize) -> String {
    let f = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    let full = (f * cells as f64).round() as usize;
    format!("{}{}", "█".repeat(full), "░".repeat(cells - full))
}

// ---------------------------------------------------------------------------------------------
// Time

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// `just now`, `5m ago`, `3h ago`, `2d ago`, `in 25m`; a date beyond a month.
pub fn ago(ts: &str) -> String {
    let Some(t) = parse_time(ts) else { return ts.to_owned() };
    relative(t, Utc::now())
}

pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (future, secs) = (secs < 0, secs.unsigned_abs());
    let span = match secs {
        0..=44 => return if future { "in a moment".into() } else { "just now".into() },
        45..=3599 => format!("{}m", (secs + 30) / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        86_400..=2_591_999 => format!("{}d", secs / 86_400),
        _ => return t.format("%Y-%m-%d").to_string(),
    };
    if future { format!("in {span}") } else { format!("{span} ago") }
}

/// `2026-11-21 20:41 UTC`.
pub fn timestamp(ts: &str) -> String {
    match parse_time(ts) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => ts.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(width: usize) -> Out {
        Out { mode: Mode::Human, color: false, width }
    }

    #[test]
    fn truncation_ends_with_an_ellipsis() {
        assert_eq!(truncate("hello world", 20), "hello world");
        assert_eq!(truncate("hello world", 7), "hello…");
        assert_eq!(truncate("héllo", 4), "hél…");
    }

    #[test]
    fn tables_fit_the_width_by_shrinking_the_flex_column() {
        let mut t = Table::new(vec![num_col("#"), col("STATUS"), flex_col("TITLE")]);
        t.row(vec!["1".into(), "todo".into(), "a title that is far too long to fit on one line".into()]);
        let s = t.render(&out(30));
        for line in s.lines() {
            assert!(width(line) <= 30, "{line:?}");
        }
        assert!(s.contains('…'));
        assert!(s.starts_with("#  STATUS  TITLE"));
    }

    #[test]
    fn wide_characters_take_two_columns_and_tables_stay_aligned() {
        assert_eq!(width("修复登录"), 8);
        assert_eq!(truncate("修复登录按钮", 7), "修复登…");
        let mut t = Table::new(vec![num_col("#"), flex_col("TITLE"), col("STATUS")]);
        t.row(vec!["1".into(), "修复登录按钮的加载状态".into(), "todo".into()]);
        t.row(vec!["2".into(), "fix the login button".into(), "done".into()]);
        let s = t.render(&out(30));
        let status_columns: Vec<usize> = s.lines().map(|l| width(&l[..l.rfind("  ").unwrap()])).collect();
        assert!(status_columns.windows(2).all(|w| w[0] == w[1]), "{s}");
        for line in s.lines() {
            assert!(width(line) <= 30, "{line:?}");
        }
        for line in wrap(&"登录".repeat(40), 31, 2).lines() {
            assert!(width(line) <= 31, "{line:?}");
        }
    }

    #[test]
    fn plain_tables_are_tab_separated_without_header() {
        let mut t = Table::new(vec![num_col("#"), flex_col("TITLE")]);
        t.row(vec!["1".into(), "a\tb".into()]);
        let o = Out { mode: Mode::Plain, color: false, width: 10 };
        assert_eq!(t.render(&o), "1\ta b\n");
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = parse_time("2026-01-10T12:00:00Z").unwrap();
        let at = |s: &str| relative(parse_time(s).unwrap(), now);
        assert_eq!(at("2026-01-10T11:59:50Z"), "just now");
        assert_eq!(at("2026-01-10T11:55:00Z"), "5m ago");
        assert_eq!(at("2026-01-10T09:00:00Z"), "3h ago");
        assert_eq!(at("2026-01-08T12:00:00Z"), "2d ago");
        assert_eq!(at("2026-01-10T12:30:00Z"), "in 30m");
        assert_eq!(at("2025-10-01T00:00:00Z"), "2025-10-01");
    }

    #[test]
    fn wrapping_keeps_to_the_width() {
        let text = format!("short words here and {} then more", "x".repeat(30));
        let w = wrap(&text, 24, 2);
        for line in w.lines() {
            assert!(width(line) <= 24, "{line:?}");
            assert!(line.starts_with("  "));
        }
        assert_eq!(wrap("a\n\n  b", 40, 0), "a\n\n  b\n");
    }

    #[test]
    fn json_keeps_values_and_leads_with_identity() {
        let v = serde_json::json!({"updatedAt": "t", "title": "x", "id": "a", "zeta": [], "obj": {}, "number": 1, "n": [1, {"b": null}]});
        let text = json(&v);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v, "the same JSON");
        let keys: Vec<&str> =
            text.lines().filter(|l| l.starts_with("  \"")).map(|l| l.trim().split('"').nth(1).unwrap()).collect();
        assert_eq!(keys, ["id", "number", "title", "n", "obj", "zeta", "updatedAt"]);
    }

    #[test]
    fn numbers_and_bars() {
        assert_eq!(number(350.0), "350");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(bar(0.5, 10), "█████░░░░░");
        assert_eq!(bar(2.0, 4), "████");
        assert_eq!(bar(f64::NAN, 4), "░░░░");
    }
}
