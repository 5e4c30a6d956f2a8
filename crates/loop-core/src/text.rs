//! Bounded strings. A field that parses into one of these is known to respect its length
//! limit, so no later code re-checks it (parse, don't validate).

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string of `MIN..=MAX` characters (Unicode scalar values, as JavaScript clients count
/// them closely enough), with no surrounding-whitespace-only content when `MIN > 0`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

/// Titles and names: 1–500 characters.
pub type Title = Text<1, 500>;
/// Markdown bodies (descriptions, comments, template content): up to 100,000 characters.
pub type Body = Text<0, 100_000>;
/// A required Markdown body.
pub type RequiredBody = Text<1, 100_000>;
/// Short identifiers and labels: 1–200 characters.
pub type Short = Text<1, 200>;

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        let n = s.chars().count();
        if n > MAX {
            return Err(format!("must be at most {MAX} characters, got {n}"));
        }
        if MIN > 0 && blank(&s) {
            return Err("must not be empty".into());
        }
        if n < MIN {
            return Err(format!("must be at least {MIN} characters, got {n}"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A rejected value as an error message quotes it: whole when short, else its start and its
/// length, so a megabyte of bad input is not sent back three times over.
pub fn echo(value: &str) -> String {
    match clipped(value) {
        None => format!("{value:?}"),
        Some(start) => format!("{start:?}… ({} characters)", value.chars().count()),
    }
}

/// The start of a rejected value too long to quote whole (see [`echo`]), or `None`.
pub fn clipped(value: &str) -> Option<String> {
    const SHOWN: usize = 60;
    value.char_indices().nth(SHOWN).map(|(end, _)| value[..end].to_owned())
}

impl<const MIN: usize, const MAX: usize> Deref for Text<MIN, MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Debug for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Display for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MIN: usize, const MAX: usize> Serialize for Text<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Whitespace as the API document's `\S` pattern means it (ECMAScript's `\s`), so that what the
/// document calls "not only whitespace" is exactly what the server accepts. (Rust's own
/// whitespace adds U+0085 and lacks U+FEFF.)
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

/// Nothing but [`is_space`] characters.
pub fn blank(s: &str) -> bool {
    s.chars().all(is_space)
}

/// `s` without leading and trailing [`is_space`] characters.
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Text<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// Each bound is its own schema (`Title`, `Short`, `Body`…) with the lengths the parser
/// enforces, and, when it may not be empty, a pattern that refuses whitespace alone.
#[cfg(feature = "openapi")]
impl<const MIN: usize, const MAX: usize> utoipa::PartialSchema for Text<MIN, MAX> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let mut s = ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX));
        if MIN > 0 {
            s = s.min_length(Some(MIN)).pattern(Some(r"\S"));
        }
        s.description(Some(match MIN {
            0 => format!("Up to {MAX} characters."),
            _ => format!("{MIN} to {MAX} characters, not only whitespace."),
        }))
        .into()
    }
}

#[cfg(feature = "openapi")]
impl<const MIN: usize, const MAX: usize> utoipa::ToSchema for Text<MIN, MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        match (MIN, MAX) {
            (1, 500) => "Title".into(),
            (0, 100_000) => "Body".into(),
            (1, 100_000) => "RequiredBody".into(),
            (1, 200) => "Short".into(),
            _ => format!("Text_{MIN}_{MAX}").into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_what_the_documents_pattern_means() {
        // U+0085 is whitespace to Rust but not to the document's \S: a name of it is a name.
        assert!(!blank("\u{85}") && Text::<1, 10>::new("\u{85}").is_ok());
        assert!(blank(" \t\u{FEFF}\u{3000}") && Text::<1, 10>::new("\u{FEFF}").is_err());
        assert_eq!(trim(" bug\u{A0}"), "bug");
    }

    #[test]
    fn echo_quotes_short_values_whole_and_long_ones_by_their_start() {
        assert_eq!(echo("Bad Slug!"), r#""Bad Slug!""#);
        let long = "é".repeat(900_000);
        let shown = echo(&long);
        assert_eq!(shown, format!("{:?}… (900000 characters)", "é".repeat(60)));
    }

    #[test]
    fn bounds_are_enforced_with_a_message_that_says_the_rule() {
        assert!(Title::new("x").is_ok());
        assert_eq!(Title::new("").unwrap_err(), "must not be empty");
        assert_eq!(Title::new("   ").unwrap_err(), "must not be empty");
        assert!(Title::new("é".repeat(500)).is_ok());
        assert_eq!(Title::new("a".repeat(501)).unwrap_err(), "must be at most 500 characters, got 501");
        assert!(Body::new("").is_ok());
    }
}
