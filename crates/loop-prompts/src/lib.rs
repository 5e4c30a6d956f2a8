//! Loop's prompt engine: renders versioned Handlebars templates written for Handlebars.js
//! (no HTML escaping, non-strict lookups, `list.length`, the `json`, `data` and `priority_label`
//! helpers, Loop's partials), hydrates them from an issue's neighbourhood, validates new
//! versions, and ships the default templates.

mod compat;
mod context;
pub mod defaults;
mod helpers;
pub mod outside;
mod partials;
mod validate;

use std::sync::RwLock;

use handlebars::Handlebars;
use serde_json::Value;

pub use context::{PromptMeta, hydrate};
pub use validate::{CompileError, Validation, validate};

/// Compiled templates are cached by version id (versions never change once written).
pub struct PromptEngine {
    registry: RwLock<Handlebars<'static>>,
}

impl Default for PromptEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl PromptEngine {
    pub fn new() -> Self {
        Self { registry: RwLock::new(registry()) }
    }

    /// Renders `content` (the text of version `version_id`) against `context`. Runs of blank
    /// lines left by empty optional sections are collapsed to one.
    pub fn render(&self, version_id: &str, content: &str, context: Value) -> Result<String, String> {
        // A `Context` built from the owned value: `render(&value)` would deep-copy it first.
        let context = handlebars::Context::from(context);
        let rendered = {
            let reg = self.registry.read().unwrap_or_else(|e| e.into_inner());
            reg.has_template(version_id).then(|| reg.render_with_context(version_id, &context))
        };
        let rendered = match rendered {
            Some(r) => r,
            None => {
                let mut reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
                if !reg.has_template(version_id) {
                    reg.register_template(version_id, compile(content)?);
                }
                reg.render_with_context(version_id, &context)
            }
        };
        rendered.map(|text| collapse_blank_lines(&text)).map_err(|e| e.to_string())
    }
}

impl PromptEngine {
    /// Renders text that is not (yet) a saved version, e.g. an edit being previewed. Nothing
    /// is cached.
    pub fn render_draft(&self, content: &str, context: Value) -> Result<String, String> {
        let context = handlebars::Context::from(context);
        let template = compile(content)?;
        let reg = self.registry.read().unwrap_or_else(|e| e.into_inner());
        let mut out = handlebars::StringOutput::new();
        let mut rc = handlebars::RenderContext::new(None);
        handlebars::Renderable::render(&template, &reg, &context, &mut rc, &mut out).map_err(|e| e.to_string())?;
        out.into_string().map(|text| collapse_blank_lines(&text)).map_err(|e| e.to_string())
    }
}

/// `content` compiled, if it compiles and is safe to render (see `partials.rs`). Versions
/// saved before that check existed are checked here too, so they fail as an error, not a crash.
fn compile(content: &str) -> Result<handlebars::Template, String> {
    let template = handlebars::Template::compile(&compat::rewrite_length(content)).map_err(|e| e.to_string())?;
    partials::check(&template)?;
    Ok(template)
}

fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim_start_matches('\n').split_inclusive('\n') {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
            out.push('\n');
        } else {
            blank_run = 0;
            out.push_str(line);
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// A registry set up like the reference's Handlebars.js: no escaping, missing values render
/// as empty, Loop's helpers and partials.
fn registry() -> Handlebars<'static> {
    let mut reg = Handlebars::new();
    reg.register_escape_fn(handlebars::no_escape);
    reg.set_strict_mode(false);
    helpers::register(&mut reg);
    for (name, text) in defaults::PARTIALS {
        reg.register_partial(name, compat::rewrite_length(text)).expect("the built-in partials compile");
    }
    reg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_handlebars_js() {
        let engine = PromptEngine::new();
        let out = engine
            .render(
                "v1",
                "{{#if list.length}}{{list.length}} items: {{#each list}}{{this}} {{/each}}{{/if}}{{missing.deep}}<b>&</b> {{json obj}} {{priority_label p}}",
                json!({"list": ["a", "b"], "obj": {"k": 1}, "p": 2}),
            )
            .unwrap();
        assert_eq!(out, "2 items: a b <b>&</b> {\n  \"k\": 1\n} high\n");
        let empty = engine.render("v2", "{{#if list.length}}yes{{else}}no{{/if}}", json!({"list": []})).unwrap();
        assert_eq!(empty, "no\n");
    }

    #[test]
    fn compiled_templates_are_cached_by_version() {
        let engine = PromptEngine::new();
        assert_eq!(engine.render("v", "A{{x}}", json!({"x": 1})).unwrap(), "A1\n");
        // Same id: the cached compilation is used, whatever text is passed.
        assert_eq!(engine.render("v", "B{{x}}", json!({"x": 2})).unwrap(), "A2\n");
    }

    #[test]
    fn blank_line_runs_collapse() {
        assert_eq!(collapse_blank_lines("\n\na\n\n\n\nb\n  \n\nc\n\n"), "a\n\nb\n\nc\n");
    }
}
