//! The store's SQL is written once, in the subset both databases share, with SQLite's
//! placeholders (`?`, or `?N` where a value is used twice) and PostgreSQL's row-lock clauses
//! (`FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`, `… OF t`, `SKIP LOCKED`) and byte-order
//! collation (`COLLATE "C"`). Each backend adapts it here, once per distinct statement:
//!
//! - SQLite has a single writer, so it needs no row locks: the clauses are dropped, and so is
//!   `COLLATE "C"` (its default collation already compares bytes); `ILIKE` is its `LIKE`, which
//!   ignores ASCII case.
//! - PostgreSQL numbers its placeholders `$1…`, has no `INDEXED BY` (SQLite's planner hint),
//!   and names SQLite's `json_object` and `json_group_array` `json_build_object` and `json_agg`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use crate::db::Dialect;

/// `sql` as `dialect` runs it.
pub fn adapt(dialect: Dialect, sql: &str) -> Arc<str> {
    type Cache = RwLock<HashMap<Box<str>, Arc<str>>>;
    static CACHES: LazyLock<[Cache; 2]> = LazyLock::new(Default::default);
    // Dynamic statements (filters, IN lists) are few in kind; the bound only guards against
    // a pathological client.
    const MAX_CACHED: usize = 4096;
    let cache = &CACHES[dialect as usize];
    if let Some(done) = cache.read().unwrap_or_else(|e| e.into_inner()).get(sql) {
        return done.clone();
    }
    let done: Arc<str> = match dialect {
        Dialect::Sqlite => for_sqlite(sql),
        Dialect::Postgres => for_postgres(sql),
    }
    .into();
    let mut cache = cache.write().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(sql.into(), done.clone());
    done
}

fn for_sqlite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(" FOR ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match lock_clause_len(after) {
            Some(len) => rest = &after[len..],
            None => {
                out.push_str(" FOR");
                rest = &after[3..];
            }
        }
    }
    out.push_str(rest);
    out.replace(" COLLATE \"C\"", "").replace(" ILIKE ", " LIKE ")
}

/// The length of the row-lock clause `s` starts with (`FOR UPDATE OF a, b SKIP LOCKED`), if it
/// starts with one.
fn lock_clause_len(s: &str) -> Option<usize> {
    let strength = ["FOR NO KEY UPDATE", "FOR UPDATE", "FOR SHARE"].into_iter().find(|k| s.starts_with(k))?;
    let mut len = strength.len();
    if let Some(tables) = s[len..].strip_prefix(" OF ") {
        // `OF t1, t2`: identifiers separated by commas.
        let mut used = 0;
        loop {
            let rest = &tables[used..];
            used += rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            match tables[used..].starts_with(", ") {
                true => used += 2,
                false => break,
            }
        }
        len += " OF ".len() + used;
    }
    if s[len..].starts_with(" SKIP LOCKED") {
        len += " SKIP LOCKED".len();
    }
    Some(len)
}

fn for_postgres(sql: &str) -> String {
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
    // `INDEXED BY name` (SQLite's hint) has no PostgreSQL twin: its planner chooses well.
    while let Some(at) = out.find(" INDEXED BY ") {
        let end =
            out[at + 12..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(out.len(), |e| at + 12 + e);
        out.replace_range(at..end, "");
    }
    out.replace("json_object(", "json_build_object(").replace("json_group_array(", "json_agg(")
}

/// Writes that need nothing from each other as one PostgreSQL statement: all but the last
/// become `WITH` clauses (PostgreSQL runs every data-modifying `WITH` exactly once), each
/// statement's placeholders numbered after the previous ones'. `statements` pairs each SQL
/// text with how many arguments it takes.
pub fn together<'a>(statements: impl IntoIterator<Item = (&'a str, usize)>) -> String {
    let mut offset = 0;
    let mut parts = Vec::new();
    for (sql, arity) in statements {
        parts.push(shift_placeholders(&adapt(Dialect::Postgres, sql), offset));
        offset += arity;
    }
    let last = parts.pop().unwrap_or_default();
    let with: Vec<String> = parts.iter().enumerate().map(|(i, p)| format!("w{i} AS ({p})")).collect();
    match with.is_empty() {
        true => last,
        false => format!("WITH {} {last}", with.join(", ")),
    }
}

/// `sql` (in PostgreSQL's `$n` form) with every placeholder moved `by` places up.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '\'' => in_string = !in_string,
            '$' if !in_string => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                match digits.parse::<usize>() {
                    Ok(n) => out.push_str(&(n + by).to_string()),
                    Err(_) => out.push_str(&digits),
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_drops_row_locks_and_byte_collation() {
        let s = |sql| for_sqlite(sql);
        assert_eq!(s("SELECT 1 FROM t WHERE id = ? FOR SHARE"), "SELECT 1 FROM t WHERE id = ?");
        assert_eq!(s("SELECT * FROM t WHERE a = ?1 FOR NO KEY UPDATE"), "SELECT * FROM t WHERE a = ?1");
        assert_eq!(
            s("SELECT * FROM (SELECT x FROM t ORDER BY k LIMIT 1 FOR UPDATE SKIP LOCKED) t"),
            "SELECT * FROM (SELECT x FROM t ORDER BY k LIMIT 1) t"
        );
        assert_eq!(
            s("SELECT s.* FROM s JOIN i ON i.id = s.i LIMIT 1 FOR UPDATE OF s, i"),
            "SELECT s.* FROM s JOIN i ON i.id = s.i LIMIT 1"
        );
        assert_eq!(s(r#"ORDER BY name COLLATE "C", id"#), "ORDER BY name, id");
        assert_eq!(s("WHERE title ILIKE ? ESCAPE '\\'"), "WHERE title LIKE ? ESCAPE '\\'");
        assert_eq!(s("SELECT 'FOR fun' FOR"), "SELECT 'FOR fun' FOR");
    }

    #[test]
    fn postgres_numbers_placeholders_and_drops_index_hints() {
        let p = |sql| for_postgres(sql);
        assert_eq!(p("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
        assert_eq!(p("x = ?1 OR y = ?1"), "x = $1 OR y = $1");
        assert_eq!(p("x LIKE '?' AND y = ?"), "x LIKE '?' AND y = $1");
        assert_eq!(p("SELECT * FROM issues INDEXED BY issues_ready WHERE a = ?"), "SELECT * FROM issues WHERE a = $1");
        assert_eq!(
            p("SELECT json_group_array(json_object('id', x.id))"),
            "SELECT json_agg(json_build_object('id', x.id))"
        );
    }

    #[test]
    fn postgres_runs_independent_writes_as_one_statement() {
        let sql = together([
            ("UPDATE a SET x = ?1 WHERE id = ?2", 2),
            ("INSERT INTO b (k, v) VALUES (?, 'it''s ?')", 1),
            ("UPDATE c SET n = n + 1 WHERE id = ?", 1),
        ]);
        assert_eq!(
            sql,
            "WITH w0 AS (UPDATE a SET x = $1 WHERE id = $2), w1 AS (INSERT INTO b (k, v) VALUES ($3, 'it''s ?')) \
             UPDATE c SET n = n + 1 WHERE id = $4"
        );
        assert_eq!(together([("DELETE FROM t WHERE id = ?", 1)]), "DELETE FROM t WHERE id = $1");
    }

    #[test]
    fn each_statement_is_adapted_once() {
        let a = adapt(Dialect::Postgres, "z = ?");
        assert!(Arc::ptr_eq(&a, &adapt(Dialect::Postgres, "z = ?")));
        assert_eq!(&*adapt(Dialect::Sqlite, "z = ? FOR SHARE"), "z = ?");
    }
}
