//! `.loop/agent.toml`: the runner's flags kept with the repository, so `loop agent run` needs
//! none. Its keys are the flags' names; a flag given on the command line wins.

use std::path::Path;

use serde::Deserialize;

use super::land::LandArgs;
use super::{RunnerArgs, duration};

/// Where the file lives, from the top of the checkout.
pub const FILE: &str = ".loop/agent.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    agent: Option<String>,
    verify: Option<Vec<String>>,
    pr_command: Option<String>,
    name: Option<String>,
    base: Option<String>,
    remote: Option<String>,
    project: Option<String>,
    max_concurrent: Option<u16>,
    timeout: Option<String>,
    stall_timeout: Option<String>,
    max_attempts: Option<u32>,
    max_consecutive_failures: Option<u32>,
    max_runs_per_hour: Option<u32>,
    max_cost_per_day: Option<f64>,
    keep_failed: Option<bool>,
    ready_pr: Option<bool>,
    keep_failed_for: Option<String>,
    cron: Option<String>,
    attempts: Option<u32>,
    attempt_profiles: Option<Vec<String>>,
    profiles: Option<std::collections::BTreeMap<String, super::profiles::Profile>>,
    /// `loop agent land` only.
    merge_command: Option<String>,
}

/// `top/.loop/agent.toml`, if there is one.
fn read(top: &Path) -> Result<Option<(File, std::path::PathBuf)>, String> {
    let path = top.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: File = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some((file, path)))
}

/// `loop agent land`'s flags, with what they leave unset taken from the file.
pub fn merge_land(mut args: LandArgs, top: &Path) -> Result<LandArgs, String> {
    let Some((file, path)) = read(top)? else { return Ok(args) };
    if args.verify.is_empty() {
        args.verify = file.verify.unwrap_or_default();
    }
    args.merge_command = args.merge_command.or(file.merge_command);
    args.name = args.name.or(file.name);
    args.base = args.base.or(file.base);
    args.remote = args.remote.or(file.remote);
    args.project = args.project.or(file.project);
    let timeout = file.timeout.map(|v| duration(&v).map_err(|e| format!("{}: timeout: {e}", path.display())));
    args.timeout = args.timeout.or(timeout.transpose()?);
    Ok(args)
}

/// `args` with what they leave unset taken from `top/.loop/agent.toml`, if there is one.
pub fn merge(mut args: RunnerArgs, top: &Path) -> Result<RunnerArgs, String> {
    let Some((file, path)) = read(top)? else { return Ok(args) };
    let time = |key: &str, v: Option<String>| {
        v.map(|v| duration(&v).map_err(|e| format!("{}: {key}: {e}", path.display()))).transpose()
    };
    args.agent = args.agent.or(file.agent);
    if args.verify.is_empty() {
        args.verify = file.verify.unwrap_or_default();
    }
    args.pr_command = args.pr_command.or(file.pr_command);
    args.name = args.name.or(file.name);
    args.base = args.base.or(file.base);
    args.remote = args.remote.or(file.remote);
    args.project = args.project.or(file.project);
    args.max_concurrent = args.max_concurrent.or(file.max_concurrent);
    args.timeout = args.timeout.or(time("timeout", file.timeout)?);
    args.stall_timeout = args.stall_timeout.or(time("stall-timeout", file.stall_timeout)?);
    args.max_attempts = args.max_attempts.or(file.max_attempts);
    args.max_consecutive_failures = args.max_consecutive_failures.or(file.max_consecutive_failures);
    args.max_runs_per_hour = args.max_runs_per_hour.or(file.max_runs_per_hour);
    args.max_cost_per_day = args.max_cost_per_day.or(file.max_cost_per_day);
    args.keep_failed = args.keep_failed || file.keep_failed.unwrap_or(false);
    args.ready_pr = args.ready_pr || file.ready_pr.unwrap_or(false);
    args.keep_failed_for = args.keep_failed_for.or(time("keep-failed-for", file.keep_failed_for)?);
    args.cron = args.cron.or(file.cron);
    args.attempts = args.attempts.or(file.attempts);
    args.profiles = file.profiles.unwrap_or_default();
    args.attempt_profiles = file.attempt_profiles.unwrap_or_default();
    Ok(args)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn write(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".loop")).unwrap();
        std::fs::write(dir.path().join(FILE), text).unwrap();
        dir
    }

    #[test]
    fn the_file_fills_what_the_flags_leave_unset() {
        let dir = write(
            "agent = \"claude\"\nverify = [\"cargo test\", \"cargo clippy\"]\ntimeout = \"10m\"\nmax-concurrent = 2\n",
        );
        let flags = RunnerArgs { timeout: Some(Duration::from_secs(60)), ..Default::default() };
        let merged = merge(flags, dir.path()).unwrap();
        assert_eq!(merged.agent.as_deref(), Some("claude"));
        assert_eq!(merged.verify, ["cargo test", "cargo clippy"]);
        assert_eq!(merged.timeout, Some(Duration::from_secs(60)), "the flag wins");
        assert_eq!(merged.max_concurrent, Some(2));
        // No file: the flags as they are.
        let none = tempfile::tempdir().unwrap();
        assert_eq!(merge(RunnerArgs::default(), none.path()).unwrap().agent, None);
    }

    #[test]
    fn mistakes_in_the_file_name_the_file_and_the_key() {
        let dir = write("agent = \"claude\"\nverfiy = [\"cargo test\"]\n");
        let err = merge(RunnerArgs::default(), dir.path()).unwrap_err();
        assert!(err.contains("agent.toml") && err.contains("verfiy"), "{err}");
        let dir = write("timeout = \"soon\"\n");
        let err = merge(RunnerArgs::default(), dir.path()).unwrap_err();
        assert!(err.contains("timeout") && err.contains("90s, 30m or 2h"), "{err}");
    }
}
