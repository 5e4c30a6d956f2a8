//! Checks a template before it is saved: it must compile, and variables no context provides
//! are reported as warnings (a typo such as `{{isue.title}}` renders as nothing).

use serde::Serialize;

use crate::{compat, context::ROOTS};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompileError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Validation {
    pub warnings: Vec<String>,
}

const HELPERS: &[&str] =
    &["json", "data", "priority_label", "len", "if", "unless", "each", "with", "lookup", "log", "else"];

pub fn validate(content: &str) -> Result<Validation, CompileError> {
    let rewritten = compat::rewrite_length(content);
    let template = handlebars::Template::compile(&rewritten).map_err(|e| {
        let (line, column) = e.pos().map(|(l, c)| (Some(l), Some(c))).unwrap_or((None, None));
        CompileError { message: e.reason().to_string(), line, column }
    })?;
    crate::partials::check(&template).map_err(|message| CompileError { message, line: None, column: None })?;
    Ok(Validation { warnings: unknown_variables(content) })
}

/// Top-level names used outside `#each`/`#with` blocks that the context does not provide.
fn unknown_variables(content: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut depth = 0usize; // inside blocks that change the context
    let mut rest = content;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let tag = after[..end].trim_start_matches('{').trim_start_matches('~').trim();
        rest = &after[end + 2..];
        if tag.starts_with('!') || tag.starts_with('>') {
            continue;
        }
        if let Some(block) = tag.strip_prefix('#') {
            let name = block.split_whitespace().next().unwrap_or("");
            if name == "each" || name == "with" {
                check(block.split_whitespace().nth(1), &mut warnings);
                depth += 1;
                continue;
            }
            for word in block.split_whitespace().skip(1) {
                if depth == 0 {
                    check(Some(word), &mut warnings);
                }
            }
            continue;
        }
        if let Some(close) = tag.strip_prefix('/') {
            if matches!(close.trim(), "each" | "with") {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if depth > 0 {
            continue;
        }
        let words: Vec<&str> = tag.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [single] => check(Some(single), &mut warnings),
            [helper, args @ ..] if HELPERS.contains(helper) => args.iter().for_each(|a| check(Some(a), &mut warnings)),
            [other, ..] => warnings.push(format!("unknown helper or variable: {other}")),
        }
    }
    warnings.sort();
    warnings.dedup();
    warnings
}

fn check(word: Option<&str>, warnings: &mut Vec<String>) {
    let Some(word) = word else { return };
    let word = word.trim_matches(|c| c == '(' || c == ')').trim_end_matches('~');
    if word.is_empty() || word.starts_with('@') || word.starts_with('"') || word.starts_with('\'') {
        return;
    }
    if word.parse::<f64>().is_ok()
        || matches!(word, "this" | "true" | "false" | "null" | "else")
        || word.starts_with("this.")
        || word.starts_with("../")
    {
        return;
    }
    if HELPERS.contains(&word) {
        return;
    }
    let root = word.split(['.', '[']).next().unwrap_or(word);
    if !ROOTS.contains(&root) {
        warnings.push(format!("no context provides `{word}` (known: {})", ROOTS.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_name_the_line_and_column() {
        let e = validate("line one\n{{#if issue}}\nno close").unwrap_err();
        assert!(e.line.is_some(), "{e:?}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn unknown_variables_are_warnings() {
        let v = validate(
            "{{issue.title}} {{isue.title}} {{#each siblings}}{{title}}{{/each}} {{json issue.signalPayload}}",
        )
        .unwrap();
        assert_eq!(v.warnings.len(), 1, "{v:?}");
        assert!(v.warnings[0].contains("isue.title"));
    }

    #[test]
    fn the_defaults_compile_without_warnings() {
        for t in crate::defaults::TEMPLATES {
            let v = validate(t.content).unwrap_or_else(|e| panic!("{}: {e:?}", t.slug));
            assert!(v.warnings.is_empty(), "{}: {:?}", t.slug, v.warnings);
        }
        for (name, text) in crate::defaults::PARTIALS {
            let v = validate(text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(v.warnings.is_empty(), "{name}: {:?}", v.warnings);
        }
    }
}
