//! The stores' SQL is written with SQLite's `?` placeholders (numbered `?1` where a value is
//! used twice), so both read alike; this turns it into PostgreSQL's `$1, $2…`. Static SQL is
//! converted once and kept.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// `sql` with PostgreSQL placeholders, converted once per distinct static string.
pub(crate) fn pg(sql: &'static str) -> &'static str {
    static CONVERTED: LazyLock<Mutex<HashMap<&'static str, &'static str>>> = LazyLock::new(Default::default);
    let mut map = CONVERTED.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(sql).or_insert_with(|| Box::leak(placeholders(sql).into_boxed_str()))
}

/// `sql` (built at run time) with PostgreSQL placeholders.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut chars = sql.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    out.push_str(&format!("${next}"));
                } else {
                    out.push('$');
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(placeholders("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
        assert_eq!(placeholders("x = ?1 OR y = ?1"), "x = $1 OR y = $1");
        assert_eq!(placeholders("x LIKE '?' AND y = ?"), "x LIKE '?' AND y = $1");
        assert!(std::ptr::eq(pg("z = ?"), pg("z = ?")), "converted once");
    }
}
