//! `~/.loop/config.json` (`{"url": "...", "token": "..."}`, mode 0600, the TypeScript CLI's
//! format) and how the server URL and API key are chosen: flag, then environment, then the
//! file, then the default URL.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::GlobalArgs;
use super::error::CliError;
use super::output::{Fields, Out, Table, col, emit, flex_col};

pub const DEFAULT_URL: &str = "http://localhost:5667";
pub const URL_ENV: &str = "LOOP_API_URL";
/// Checked in this order; the first is what `loop serve` and the MCP server read, the second
/// is the TypeScript CLI's name.
pub const TOKEN_ENVS: [&str; 2] = ["LOOP_API_KEY", "LOOP_API_TOKEN"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Key {
    /// The Loop server's URL, e.g. http://localhost:5667.
    Url,
    /// The API key (`loop serve` prints it on first start).
    Token,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Url => "url",
            Key::Token => "token",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    File,
    Default,
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File => f.write_str("config file"),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// The connection settings in force.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub url: String,
    pub url_source: Source,
    pub token: Option<String>,
    pub token_source: Source,
}

pub fn path() -> Result<PathBuf, CliError> {
    dirs::home_dir()
        .map(|h| h.join(".loop").join("config.json"))
        .ok_or_else(|| CliError::failed("no home directory (set HOME) to keep ~/.loop/config.json in"))
}

/// The file's keys; a missing file is empty. Unknown keys are kept when writing back.
pub fn read(path: &Path) -> Result<Map<String, Value>, CliError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(CliError::failed(format!("cannot read {}: {e}", path.display()))),
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(CliError::failed(format!(
            "{} is not a JSON object like {{\"url\": \"...\", \"token\": \"...\"}}: fix it or delete it",
            path.display()
        ))),
    }
}

/// Writes the file with mode 0600 (its directory 0700): it holds a secret.
pub fn write(path: &Path, map: &Map<String, Value>) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::failed(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(map.clone())).expect("a map serialises");
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(fail)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Flag, then environment, then the file, then the default; the URL must be an http(s) URL.
pub fn resolve(global: &GlobalArgs) -> Result<Resolved, CliError> {
    let r = settings(global)?;
    if check_url(&r.url).is_err() {
        let (url, source) = (&r.url, &r.url_source);
        let msg =
            format!("the server URL from {source} is {url:?}: use an http:// or https:// URL, e.g. {DEFAULT_URL}");
        return Err(if matches!(source, Source::Flag(_)) { CliError::usage(msg) } else { CliError::failed(msg) });
    }
    Ok(Resolved { url: normalize_url(&r.url), ..r })
}

/// The settings in force, as given.
fn settings(global: &GlobalArgs) -> Result<Resolved, CliError> {
    let file = read(&path()?)?;
    let from_file = |k: &str| file.get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let (url, url_source) = if let Some(u) = global.api_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        (u.to_owned(), Source::Flag("--api-url"))
    } else if let Some(u) = env(URL_ENV) {
        (u, Source::Env(URL_ENV))
    } else if let Some(u) = from_file("url") {
        (u.to_owned(), Source::File)
    } else {
        (DEFAULT_URL.to_owned(), Source::Default)
    };
    let (token, token_source) = if let Some(t) = global.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        (Some(t.to_owned()), Source::Flag("--token"))
    } else if let Some((v, name)) = TOKEN_ENVS.iter().find_map(|n| env(n).map(|v| (v, *n))) {
        (Some(v), Source::Env(name))
    } else if let Some(t) = from_file("token") {
        (Some(t.to_owned()), Source::File)
    } else {
        (None, Source::Unset)
    };
    Ok(Resolved { url, url_source, token, token_source })
}

/// The origin the API paths are appended to: no trailing slash, and a pasted `/api` suffix is
/// dropped (the clients' convention is the origin).
pub fn normalize_url(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    let u = u.strip_suffix("/api").unwrap_or(u);
    u.to_owned()
}

fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("{url:?} is not an http:// or https:// URL, e.g. {DEFAULT_URL}")),
    }
}

/// `loop_…1a2b`: enough to tell keys apart, not enough to use one.
pub fn mask(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 12 {
        let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
        return format!("…{tail}");
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

// ---------------------------------------------------------------------------------------------
// `loop config`

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Save a setting in ~/.loop/config.json (created with mode 0600).
    #[command(after_help = "Examples:\n  loop config set url http://localhost:5667\n  loop config set token loop_…")]
    Set {
        /// Which setting.
        key: Key,
        /// The URL, or the API key.
        value: String,
    },
    /// Print the value in force (flag, then environment, then the file, then the default).
    Get {
        /// Which setting.
        key: Key,
    },
    /// Show every setting, where it comes from, and the file's path (the token masked).
    #[command(visible_alias = "ls")]
    List,
    /// Remove a setting from the file.
    Unset {
        /// Which setting.
        key: Key,
    },
    /// Print the config file's path.
    Path,
}

pub fn run(args: ConfigArgs, global: &GlobalArgs, out: &Out) -> Result<(), CliError> {
    let path = path()?;
    match args.action {
        ConfigAction::Set { key, value } => {
            let value = value.trim().to_owned();
            if value.is_empty() {
                return Err(CliError::usage(format!("give a value: loop config set {} <value>", key.name())));
            }
            let value = match key {
                Key::Url => {
                    check_url(&value).map_err(CliError::usage)?;
                    normalize_url(&value)
                }
                Key::Token => value,
            };
            let mut map = read(&path)?;
            map.insert(key.name().to_owned(), Value::String(value.clone()));
            write(&path, &map)?;
            let shown = if key == Key::Token { mask(&value) } else { value.clone() };
            if out.mode == super::output::Mode::Json {
                emit(&super::output::json(&json!({ "key": key.name(), "value": shown, "path": path })));
            } else {
                emit(&format!("Saved {} = {shown} in {}", key.name(), path.display()));
            }
            let overridden = match key {
                Key::Url => env(URL_ENV).map(|_| URL_ENV.to_owned()),
                Key::Token => TOKEN_ENVS.iter().find(|n| env(n).is_some()).map(|n| n.to_string()),
            };
            if let Some(var) = overridden {
                eprintln!("note: {var} is set in the environment and overrides this setting");
            }
            Ok(())
        }
        ConfigAction::Get { key } => {
            let r = resolve(global)?;
            let (value, source) = match key {
                Key::Url => (Some(r.url), r.url_source),
                Key::Token => (r.token, r.token_source),
            };
            match out.mode {
                super::output::Mode::Json => emit(&super::output::json(
                    &json!({ "key": key.name(), "value": value, "source": source.to_string() }),
                )),
                _ => match value {
                    Some(v) => emit(&v),
                    None => {
                        return Err(CliError::failed(format!(
                            "{} is not set: loop config set {} <value>",
                            key.name(),
                            key.name()
                        )));
                    }
                },
            }
            Ok(())
        }
        ConfigAction::List => {
            // Shown even when wrong: this is where one looks to find out why.
            let mut r = settings(global)?;
            match check_url(&r.url) {
                Ok(()) => r.url = normalize_url(&r.url),
                Err(e) => eprintln!("warning: the url from {} is wrong: {e}; commands refuse it", r.url_source),
            }
            let token = r.token.as_deref().map(mask);
            match out.mode {
                super::output::Mode::Json => emit(&super::output::json(&json!({
                    "url": r.url,
                    "urlSource": r.url_source.to_string(),
                    "token": token,
                    "tokenSource": r.token_source.to_string(),
                    "path": path,
                }))),
                _ => {
                    let mut t = Table::new(vec![col("KEY"), col("VALUE"), flex_col("FROM")]);
                    t.row(vec!["url".into(), r.url.clone().into(), r.url_source.to_string().into()]);
                    t.row(vec![
                        "token".into(),
                        token.clone().unwrap_or_else(|| "-".into()).into(),
                        r.token_source.to_string().into(),
                    ]);
                    let mut s = t.render(out);
                    if out.human() {
                        let mut f = Fields::new();
                        f.add("file", path.display().to_string());
                        s.push('\n');
                        s.push_str(&f.render(out));
                    }
                    emit(&s);
                }
            }
            Ok(())
        }
        ConfigAction::Unset { key } => {
            let mut map = read(&path)?;
            let had = map.remove(key.name()).is_some();
            if had {
                write(&path, &map)?;
            }
            if out.mode == super::output::Mode::Json {
                emit(&super::output::json(&json!({ "key": key.name(), "removed": had, "path": path })));
            } else if had {
                emit(&format!("Removed {} from {}", key.name(), path.display()));
            } else {
                emit(&format!("{} was not set in {}", key.name(), path.display()));
            }
            Ok(())
        }
        ConfigAction::Path => {
            if out.mode == super::output::Mode::Json {
                emit(&super::output::json(&json!({ "path": path })));
            } else {
                emit(&path.display().to_string());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_origins() {
        assert_eq!(normalize_url("http://localhost:5667/"), "http://localhost:5667");
        assert_eq!(normalize_url("https://loop.example.com/api/"), "https://loop.example.com");
        assert!(check_url("localhost:5667").is_err());
        assert!(check_url("http://localhost:5667").is_ok());
    }

    #[test]
    fn masks_keep_the_ends() {
        assert_eq!(mask("loop_0123456789abcdef"), "loop_…cdef");
        assert_eq!(mask("short"), "…rt");
    }
}
