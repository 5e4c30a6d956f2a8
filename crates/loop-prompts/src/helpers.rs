//! The helpers templates written for the reference use.

use handlebars::{Handlebars, handlebars_helper};
use serde_json::Value;

use crate::outside;

// Prompts show JSON that mostly came from outside: its strings lose what a reader cannot see.
handlebars_helper!(json: |v: Json| serde_json::to_string_pretty(&outside::clean_json(v)).unwrap_or_default());

// `{{data issue.description}}`: outside text, fenced and introduced as data.
handlebars_helper!(data: |v: Json| match v {
    Value::Null => String::new(),
    Value::String(s) => outside::fence(s),
    other => outside::fence(&serde_json::to_string_pretty(other).unwrap_or_default()),
});

handlebars_helper!(priority_label: |v: Json| match v.as_i64() {
    Some(0) => "none",
    Some(1) => "urgent",
    Some(2) => "high",
    Some(3) => "medium",
    Some(4) => "low",
    _ => "unknown",
});

handlebars_helper!(len: |v: Json| match v {
    Value::Array(a) => a.len(),
    Value::Object(o) => o.len(),
    Value::String(s) => s.chars().count(),
    _ => 0,
});

pub fn register(reg: &mut Handlebars<'static>) {
    reg.register_helper("json", Box::new(json));
    reg.register_helper("data", Box::new(data));
    reg.register_helper("priority_label", Box::new(priority_label));
    reg.register_helper("len", Box::new(len));
}
