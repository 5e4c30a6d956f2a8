//! A Markdown roadmap as units: headings are plans, list items are tasks under the heading they
//! follow, `(after: id, id)` or `(blocked-by: id)` says what must be done first, and phases
//! (headings that start with Phase, Milestone, Step or a number) run in order. Loop nests issues
//! one level deep, so an item nested under a task that already has a parent becomes that task's
//! sibling, and the task waits for it (it is one of its steps). Every unit has a stable id:
//! `{#id}` in its text, else the slug of its title.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub id: String,
    pub title: String,
    /// Plans (headings) or tasks (list items).
    pub kind: Kind,
    pub done: bool,
    pub description: String,
    /// The parent (one level deep, as Loop nests).
    pub parent: Option<String>,
    /// The heading a heading is under: phases are ordered among the headings of one section.
    pub section: Option<String>,
    /// Units that must be done first.
    pub after: Vec<String>,
    /// 1-based, for messages.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plan,
    Task,
}

/// The units of `text`, in file order, or the first mistake with its line number.
pub fn parse(text: &str) -> Result<Vec<Unit>, String> {
    let mut units: Vec<Unit> = Vec::new();
    // Open headings (level, index) and open list items (indent, index) under the last heading.
    let mut headings: Vec<(usize, usize)> = Vec::new();
    let mut items: Vec<(usize, usize)> = Vec::new();
    // The unit the next plain line describes.
    let mut describing: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim_start();
        if let Some((level, rest)) = heading(trimmed) {
            headings.retain(|&(l, _)| l < level);
            items.clear();
            let mut plan = unit(rest, Kind::Plan, false, None, line_no)?;
            plan.section = headings.last().map(|&(_, u)| units[u].id.clone());
            units.push(plan);
            headings.push((level, units.len() - 1));
            describing = Some(units.len() - 1);
        } else if let Some((indent, done, rest)) = list_item(raw) {
            items.retain(|&(ind, _)| ind < indent);
            let enclosing = items.last().or(headings.last()).map(|&(_, u)| u);
            let parent = match enclosing {
                None => None,
                Some(e) if units[e].parent.is_none() => Some(units[e].id.clone()),
                Some(e) => units[e].parent.clone(),
            };
            let task = unit(rest, Kind::Task, done, parent, line_no)?;
            // Nested under a task that has a parent: a sibling the task waits for.
            if let Some(e) = enclosing.filter(|&e| units[e].kind == Kind::Task && units[e].parent.is_some()) {
                units[e].after.push(task.id.clone());
            }
            units.push(task);
            items.push((indent, units.len() - 1));
            describing = Some(units.len() - 1);
        } else if let (Some(u), false) = (describing, trimmed.is_empty()) {
            let d = &mut units[u].description;
            if !d.is_empty() {
                d.push('\n');
            }
            d.push_str(trimmed);
        }
    }
    check_ids(&units)?;
    add_phase_order(&mut units);
    check_references(&units)?;
    check_cycles(&units)?;
    Ok(units)
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let rest = line.get(level..)?;
    (1..=6).contains(&level).then_some(())?;
    rest.strip_prefix(' ').map(|r| (level, r.trim()))
}

/// `- [ ] text`, `* [x] text`, `+ text`, `1. text`: (indent, done, text).
fn list_item(line: &str) -> Option<(usize, bool, &str)> {
    let indent: usize = line.chars().take_while(|c| c.is_whitespace()).map(|c| if c == '\t' { 4 } else { 1 }).sum();
    let t = line.trim_start();
    let rest = if let Some(r) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")).or_else(|| t.strip_prefix("+ ")) {
        r
    } else {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        t.get(digits..).filter(|_| digits > 0)?.strip_prefix(". ")?
    };
    let (done, rest) = match rest.get(..4) {
        Some("[ ] ") => (false, &rest[4..]),
        Some("[x] " | "[X] ") => (true, &rest[4..]),
        _ => (false, rest),
    };
    Some((indent, done, rest.trim()))
}

/// A unit from the text of its heading or item: `{#id}` and `(after: …)` taken out of the title.
fn unit(text: &str, kind: Kind, done: bool, parent: Option<String>, line: usize) -> Result<Unit, String> {
    let mut title = text.to_owned();
    let mut after = Vec::new();
    for marker in ["(after:", "(blocked-by:"] {
        while let Some(start) = title.find(marker) {
            let Some(len) = title[start..].find(')') else {
                return Err(format!("line {line}: {marker} without its closing ')'"));
            };
            let names = title[start + marker.len()..start + len].to_owned();
            after.extend(
                names.split(',').map(|n| n.trim().trim_start_matches('#').to_owned()).filter(|n| !n.is_empty()),
            );
            title.replace_range(start..=start + len, "");
        }
    }
    let mut id = None;
    if let Some(start) = title.find("{#") {
        let Some(len) = title[start..].find('}') else {
            return Err(format!("line {line}: {{# without its closing '}}'"));
        };
        let given = title[start + 2..start + len].trim().to_owned();
        if given.is_empty() || !given.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return Err(format!("line {line}: unit id {given:?} may only use letters, digits, '-', '_' and '.'"));
        }
        id = Some(given);
        title.replace_range(start..=start + len, "");
    }
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return Err(format!("line {line}: an item needs a title"));
    }
    if title.chars().count() > 500 {
        return Err(format!("line {line}: a title is at most 500 characters"));
    }
    let id = id.unwrap_or_else(|| slug(&title));
    Ok(Unit { id, title, kind, done, description: String::new(), parent, section: None, after, line })
}

pub fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            s.push(c);
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_end_matches('-').chars().take(60).collect()
}

fn check_ids(units: &[Unit]) -> Result<(), String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for u in units {
        if let Some(first) = seen.insert(&u.id, u.line) {
            return Err(format!(
                "line {}: unit {:?} is already line {first}: give one of them its own id with {{#some-id}}",
                u.line, u.id
            ));
        }
    }
    Ok(())
}

/// Phases run in order: each task of a phase waits for the tasks directly in the phase before.
fn add_phase_order(units: &mut [Unit]) {
    let is_phase = |t: &str| {
        let lower = t.to_lowercase();
        ["phase", "milestone", "step"].iter().any(|p| lower.starts_with(p))
            || t.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut phases_by_parent: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for u in units.iter().filter(|u| u.kind == Kind::Plan && is_phase(&u.title)) {
        phases_by_parent.entry(u.section.clone()).or_default().push(u.id.clone());
    }
    for phases in phases_by_parent.values() {
        for pair in phases.windows(2) {
            let earlier: Vec<String> = tasks_of(units, &pair[0]);
            for u in units.iter_mut().filter(|u| u.kind == Kind::Task && u.parent.as_deref() == Some(&pair[1])) {
                for e in &earlier {
                    if !u.after.contains(e) {
                        u.after.push(e.clone());
                    }
                }
            }
        }
    }
}

fn tasks_of(units: &[Unit], plan: &str) -> Vec<String> {
    units.iter().filter(|u| u.kind == Kind::Task && u.parent.as_deref() == Some(plan)).map(|u| u.id.clone()).collect()
}

fn check_references(units: &[Unit]) -> Result<(), String> {
    for u in units {
        for a in &u.after {
            if !units.iter().any(|o| &o.id == a) {
                return Err(format!(
                    "line {}: {:?} waits for {a:?}, which is not a unit of this roadmap",
                    u.line, u.title
                ));
            }
            if a == &u.id {
                return Err(format!("line {}: {:?} waits for itself", u.line, u.title));
            }
        }
    }
    Ok(())
}

fn check_cycles(units: &[Unit]) -> Result<(), String> {
    let index: HashMap<&str, &Unit> = units.iter().map(|u| (u.id.as_str(), u)).collect();
    // 0 unvisited, 1 on the path, 2 done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        index: &HashMap<&'a str, &'a Unit>,
        state: &mut HashMap<&'a str, u8>,
    ) -> Result<(), &'a Unit> {
        match state.get(id) {
            Some(2) => return Ok(()),
            Some(1) => return Err(index[id]),
            _ => {}
        }
        state.insert(id, 1);
        for a in &index[id].after {
            visit(a, index, state)?;
        }
        state.insert(id, 2);
        Ok(())
    }
    for u in units {
        visit(&u.id, &index, &mut state)
            .map_err(|at| format!("line {}: {:?} waits, through others, for itself (a cycle)", at.line, at.title))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROADMAP: &str = "\
# Checkout {#checkout}
Make paying painless.

## Phase 1: Payments
- [ ] Stripe client {#stripe}
  Wrap the API with retries.
  - [x] Pick the SDK
- [ ] Webhooks (after: stripe)

## Phase 2: Refunds
1. Refund flow
2. Refund emails (blocked-by: refund-flow)

## Ideas
- Apple Pay
";

    #[test]
    fn headings_items_nesting_markers_and_phases() {
        let units = parse(ROADMAP).unwrap();
        let by = |id: &str| units.iter().find(|u| u.id == id).unwrap_or_else(|| panic!("no {id}"));
        assert_eq!(by("checkout").kind, Kind::Plan);
        assert_eq!(by("checkout").description, "Make paying painless.");
        // Plans do not nest (Loop nests one level); the heading they are under orders phases.
        assert_eq!(
            (by("phase-1-payments").parent.as_deref(), by("phase-1-payments").section.as_deref()),
            (None, Some("checkout"))
        );
        assert_eq!(by("stripe").parent.as_deref(), Some("phase-1-payments"));
        assert_eq!(by("stripe").description, "Wrap the API with retries.");
        // A step of a task that has a parent: its sibling, which the task waits for.
        assert_eq!((by("pick-the-sdk").parent.as_deref(), by("pick-the-sdk").done), (Some("phase-1-payments"), true));
        assert_eq!(by("stripe").after, ["pick-the-sdk"]);
        assert_eq!(by("webhooks").after, ["stripe"]);
        // Phase 2's tasks wait for phase 1's.
        assert_eq!(by("refund-flow").after, ["stripe", "pick-the-sdk", "webhooks"]);
        assert_eq!(by("refund-emails").after, ["refund-flow", "stripe", "pick-the-sdk", "webhooks"]);
        // "Ideas" is not a phase.
        assert!(by("apple-pay").after.is_empty());
        assert_eq!(by("refund-flow").line, 11);
    }

    #[test]
    fn mistakes_name_their_line() {
        let e = parse("- A (after: nowhere)\n").unwrap_err();
        assert!(e.starts_with("line 1:") && e.contains("nowhere"), "{e}");
        let e = parse("- A {#x} (after: y)\n- B {#y} (after: x)\n").unwrap_err();
        assert!(e.contains("cycle") && e.starts_with("line "), "{e}");
        let e = parse("- Same\n- Other\n- Same\n").unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("line 1") && e.contains("{#some-id}"), "{e}");
        assert!(parse("- A (after: x\n").unwrap_err().contains("closing"));
        assert!(parse("- {#bad id} A\n").unwrap_err().contains("letters, digits"));
        // Not under a heading: a nested item is the item's child.
        let units = parse("- Top\n  - Step\n").unwrap();
        assert_eq!(units[1].parent.as_deref(), Some("top"));
    }
}
