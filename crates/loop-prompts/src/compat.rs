//! Handlebars.js features handlebars-rust lacks, rewritten into equivalents it has.
//!
//! `list.length` is the one templates use: handlebars-rust cannot look up `length` on an
//! array. Inside every mustache tag, `path.length` becomes the `len` helper: `{{x.length}}` →
//! `{{len x}}`, and in a helper's parameters (`{{#if x.length}}`) → `(len x)`.

pub fn rewrite_length(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = &rest[start..start + len + 2];
        out.push_str(&rewrite_tag(tag));
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn rewrite_tag(tag: &str) -> String {
    if !tag.contains(".length") || tag.starts_with("{{!") {
        return tag.to_owned();
    }
    // `{{ path.length }}` alone: a plain helper call.
    let inner = tag.trim_start_matches('{').trim_end_matches('}');
    let (open, close) =
        (&tag[..tag.len() - tag.trim_start_matches('{').len()], &tag[tag.trim_end_matches('}').len()..]);
    let trimmed = inner.trim().trim_start_matches('~').trim_end_matches('~').trim();
    if let Some(path) = trimmed.strip_suffix(".length")
        && is_path(path)
    {
        return format!("{open}{}{close}", inner.replacen(trimmed, &format!("len {path}"), 1));
    }
    // Otherwise every `path.length` token becomes a subexpression.
    let mut out = String::new();
    for (i, token) in inner.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let (lead, core) = token.split_at(token.len() - token.trim_start_matches('(').len());
        let core_end = core.trim_end_matches(')');
        let trail = &core[core_end.len()..];
        match core_end.strip_suffix(".length") {
            Some(path) if is_path(path) => out.push_str(&format!("{lead}(len {path}){trail}")),
            _ => out.push_str(token),
        }
    }
    format!("{open}{out}{close}")
}

fn is_path(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_.@/[]-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::rewrite_length;

    #[test]
    fn length_becomes_the_len_helper() {
        assert_eq!(rewrite_length("{{previousSessions.length}}"), "{{len previousSessions}}");
        assert_eq!(rewrite_length("{{ a.b.length }}"), "{{ len a.b }}");
        assert_eq!(rewrite_length("{{#if list.length}}x{{/if}}"), "{{#if (len list)}}x{{/if}}");
        assert_eq!(rewrite_length("{{#unless (eq x.length 0)}}"), "{{#unless (eq (len x) 0)}}");
        assert_eq!(rewrite_length("{{! list.length }} plain {{x}}"), "{{! list.length }} plain {{x}}");
    }
}
