//! Markdown to safe HTML. Raw HTML in the source is shown as text, never passed through, and
//! links or images may only point at http(s), mailto or relative URLs, so an issue written by
//! anyone (a webhook, an agent) cannot run script in the dashboard.

use maud::{Markup, PreEscaped};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

pub fn render(source: &str) -> Markup {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(source, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut out = String::with_capacity(source.len() * 2);
    html::push_html(&mut out, events);
    PreEscaped(out)
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    if is_safe_url(&url) { url } else { CowStr::Borrowed("#") }
}

/// Whether a URL from user content may be a link: http(s), mailto, or relative.
pub fn is_safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| !s.contains(['/', '?', '#']));
    matches!(scheme, None | Some("http" | "https" | "mailto"))
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn formats_markdown() {
        let html = render("# Title\n\nSome **bold** and `code`.\n\n- [x] done").into_string();
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("checkbox"));
    }

    #[test]
    fn raw_html_and_script_urls_are_neutralised() {
        let html = render("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(2)>\n\n[a](javascript:alert(3)) [b](JavaScript:x) [c](https://ok.example/x) [d](/issues/2) ![i](data:text/html,x)").into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(html.contains(r#"href="https://ok.example/x""#));
        assert!(html.contains(r#"href="/issues/2""#));
    }
}
