//! What a template may nest and call. Handlebars renders by recursion with no limit, so an
//! inline partial that calls itself (directly or through another), a partial block nested in
//! another (handlebars-rust #697) or blocks nested thousands deep overflow the stack, which
//! aborts the whole server. A template may therefore call Loop's partials and its own inline
//! partials, by name and without cycles, and nest blocks [`MAX_NESTING`] deep.

use std::collections::{HashMap, HashSet};

use handlebars::template::{Parameter, Template, TemplateElement};

use crate::defaults::PARTIALS;

/// How deep blocks (`#if`, `#each`, inline partials…) may nest.
pub const MAX_NESTING: usize = 32;

/// Why `template` could not be rendered safely, if it could not.
pub fn check(template: &Template) -> Result<(), String> {
    let mut calls = Calls::default();
    walk(template, None, 0, &mut calls)?;
    let inline = &calls.by_inline;
    for (from, names) in inline {
        for name in names {
            if !inline.contains_key(&Some(name.clone())) && !PARTIALS.iter().any(|(p, _)| p == name) {
                let from = from.as_deref().map_or(String::new(), |f| format!(" (in inline partial {f:?})"));
                let known: Vec<&str> = PARTIALS.iter().map(|(p, _)| *p).collect();
                return Err(format!(
                    "no partial named {name:?}{from}: use Loop's ({}) or one defined with {{{{#*inline}}}}",
                    known.join(", ")
                ));
            }
        }
    }
    for start in inline.keys().flatten() {
        if let Some(path) = cycle(start, inline) {
            return Err(format!("inline partials call each other in a loop: {}", path.join(" → ")));
        }
    }
    Ok(())
}

/// The partials each inline partial calls (`None`: the template's own body).
#[derive(Default)]
struct Calls {
    by_inline: HashMap<Option<String>, Vec<String>>,
}

fn walk(t: &Template, inside: Option<&str>, depth: usize, calls: &mut Calls) -> Result<(), String> {
    calls.by_inline.entry(inside.map(str::to_owned)).or_default();
    if depth > MAX_NESTING {
        return Err(format!("blocks nest more than {MAX_NESTING} deep"));
    }
    for element in &t.elements {
        match element {
            TemplateElement::HelperBlock(h) => {
                for body in [&h.template, &h.inverse].into_iter().flatten() {
                    walk(body, inside, depth + 1, calls)?;
                }
            }
            TemplateElement::DecoratorBlock(d) if d.name.as_name() == Some("inline") => {
                let name = match d.params.first() {
                    Some(Parameter::Literal(serde_json::Value::String(n))) => n.clone(),
                    _ => return Err("an inline partial needs a quoted name: {{#*inline \"name\"}}".into()),
                };
                if let Some(body) = &d.template {
                    walk(body, Some(&name), depth + 1, calls)?;
                }
            }
            TemplateElement::DecoratorBlock(d) => {
                if let Some(body) = &d.template {
                    walk(body, inside, depth + 1, calls)?;
                }
            }
            TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                let name = match &d.name {
                    Parameter::Literal(serde_json::Value::String(n)) => n.as_str(),
                    Parameter::Name(n) => n.as_str(),
                    Parameter::Path(_) => d.name.as_name().unwrap_or_default(),
                    _ => return Err("a partial must be called by its name, not by an expression".into()),
                };
                if name == "@partial-block" {
                    return Err("{{> @partial-block}} is not supported".into());
                }
                calls.by_inline.entry(inside.map(str::to_owned)).or_default().push(name.to_owned());
                if let Some(body) = &d.template {
                    walk(body, inside, depth + 1, calls)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A chain of calls from `start` back to itself, if there is one.
fn cycle(start: &str, calls: &HashMap<Option<String>, Vec<String>>) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = HashSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("paths are never empty");
        for next in calls.get(&Some(last.clone())).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start.to_owned()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push([path.clone(), vec![next.clone()]].concat());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(source: &str) -> Result<(), String> {
        check(&Template::compile(source).expect("compiles"))
    }

    #[test]
    fn loops_unknown_and_dynamic_partials_and_deep_nesting_are_refused() {
        assert!(
            checked("{{> api_reference}} {{#*inline \"a\"}}x{{> b}}{{/inline}}{{#*inline \"b\"}}y{{/inline}}{{> a}}")
                .is_ok()
        );
        let e = checked("{{#*inline \"p\"}}x{{> p}}{{/inline}}{{> p}}").unwrap_err();
        assert!(e.contains("p → p"), "{e}");
        let e = checked("{{#*inline \"a\"}}{{> b}}{{/inline}}{{#*inline \"b\"}}{{> a}}{{/inline}}{{> a}}").unwrap_err();
        assert!(e.contains("loop"), "{e}");
        assert!(checked("{{> nowhere}}").unwrap_err().contains("no partial named \"nowhere\""));
        assert!(checked("{{#> api_reference}}{{> @partial-block}}{{/api_reference}}").is_err());
        assert!(checked("{{> (lookup issue \"title\")}}").is_err());
        let deep = format!("{}x{}", "{{#if issue}}".repeat(MAX_NESTING + 1), "{{/if}}".repeat(MAX_NESTING + 1));
        assert!(checked(&deep).unwrap_err().contains("nest"));
        let fine = format!("{}x{}", "{{#if issue}}".repeat(MAX_NESTING), "{{/if}}".repeat(MAX_NESTING));
        assert!(checked(&fine).is_ok());
        // As deep as a request body allows: compiling and checking it must not overflow either.
        let n = 1_000_000 / 16;
        let deepest = format!("{}x{}", "{{#if issue}}".repeat(n), "{{/if}}".repeat(n));
        assert!(Template::compile(&deepest).map_or(true, |t| check(&t).is_err()));
    }
}
