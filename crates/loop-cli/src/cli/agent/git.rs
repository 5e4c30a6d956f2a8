//! The runner's git: one worktree and branch per issue, commits with trailers that name the
//! issue and session, and pushes of that branch only. The agent never runs these.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// A git checkout the runner works from.
#[derive(Debug, Clone)]
pub struct Repo {
    pub dir: PathBuf,
    pub remote: String,
}

/// Runs `git args` in `dir`; its trimmed stdout, or an error naming the command and its stderr.
pub async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never wait for a password or an editor: the runner is unattended.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_EDITOR", "true")
        .output()
        .await
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Repo {
    /// `dir` if it is a git checkout with `remote`.
    pub async fn open(dir: &Path, remote: &str) -> Result<Repo, String> {
        let top = git(dir, &["rev-parse", "--show-toplevel"])
            .await
            .map_err(|_| format!("{} is not a git checkout: give --repo DIR", dir.display()))?;
        git(dir, &["remote", "get-url", remote])
            .await
            .map_err(|_| format!("the checkout {top} has no remote {remote:?}: give --remote NAME"))?;
        Ok(Repo { dir: PathBuf::from(top), remote: remote.to_owned() })
    }

    /// The remote's default branch (what `origin/HEAD` points at), else `main`.
    pub async fn default_branch(&self) -> String {
        let head = format!("refs/remotes/{}/HEAD", self.remote);
        match git(&self.dir, &["symbolic-ref", "--short", &head]).await {
            Ok(r) => r.split_once('/').map_or(r.clone(), |(_, b)| b.to_owned()),
            Err(_) => "main".to_owned(),
        }
    }

    /// Where worktrees live: inside the repository's git directory, out of the checkout's way.
    async fn worktrees(&self) -> Result<PathBuf, String> {
        let common = git(&self.dir, &["rev-parse", "--path-format=absolute", "--git-common-dir"]).await?;
        Ok(PathBuf::from(common).join("loop-worktrees"))
    }

    /// A fresh worktree on a new `branch` from the remote's `base`, replacing any left by an
    /// earlier attempt at the same issue. Returns its directory and the base commit.
    pub async fn worktree(&self, branch: &str, base: &str) -> Result<(PathBuf, String), String> {
        git(&self.dir, &["fetch", "--quiet", &self.remote, base]).await?;
        let base_sha = git(&self.dir, &["rev-parse", "FETCH_HEAD"]).await?;
        let dir = self.worktrees().await?.join(branch.replace('/', "-"));
        if dir.exists() {
            self.remove(&dir).await;
        }
        let path = dir.to_string_lossy().into_owned();
        git(&self.dir, &["worktree", "add", "--quiet", "-B", branch, &path, &base_sha]).await?;
        Ok((dir, base_sha))
    }

    /// Removes a worktree (its branch stays).
    pub async fn remove(&self, dir: &Path) {
        let path = dir.to_string_lossy().into_owned();
        if git(&self.dir, &["worktree", "remove", "--force", &path]).await.is_err() {
            let _ = tokio::fs::remove_dir_all(dir).await;
            let _ = git(&self.dir, &["worktree", "prune"]).await;
        }
    }

    /// Removes the worktrees kept from failed runs (`--keep-failed`) that are older than `age`;
    /// returns the ones it removed.
    pub async fn gc(&self, age: std::time::Duration) -> Result<Vec<PathBuf>, String> {
        let root = self.worktrees().await?;
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(&root) else { return Ok(removed) };
        for entry in entries.flatten() {
            let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= age));
            if old && entry.path().is_dir() {
                self.remove(&entry.path()).await;
                removed.push(entry.path());
            }
        }
        Ok(removed)
    }

    /// Pushes `branch` (never the base: the caller checks) to the remote.
    pub async fn push(&self, worktree: &Path, branch: &str) -> Result<(), String> {
        let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
        git(worktree, &["push", "--quiet", &self.remote, &spec]).await.map(|_| ())
    }
}

/// Commits whatever the agent left in `worktree`, with trailers naming the issue and session.
/// Returns false when there was nothing to commit.
pub async fn commit_all(worktree: &Path, subject: &str, trailers: &[(&str, &str)]) -> Result<bool, String> {
    if git(worktree, &["status", "--porcelain"]).await?.is_empty() {
        return Ok(false);
    }
    git(worktree, &["add", "--all"]).await?;
    let mut message = format!("{subject}\n\n");
    for (k, v) in trailers {
        message.push_str(&format!("{k}: {v}\n"));
    }
    // A machine without a git identity still gets commits, signed by the runner.
    let identity = git(worktree, &["config", "user.email"]).await.is_ok();
    let mut args = vec![];
    if !identity {
        args.extend(["-c", "user.name=Loop agent", "-c", "user.email=loop-agent@localhost"]);
    }
    args.extend(["commit", "--quiet", "--no-verify", "-m", &message]);
    git(worktree, &args).await?;
    Ok(true)
}

/// The commits on HEAD since `base`, oldest first: `(sha, subject)`.
pub async fn commits_since(worktree: &Path, base: &str) -> Result<Vec<(String, String)>, String> {
    let range = format!("{base}..HEAD");
    let log = git(worktree, &["log", "--reverse", "--format=%H %s", &range]).await?;
    Ok(log.lines().filter_map(|l| l.split_once(' ')).map(|(sha, s)| (sha.to_owned(), s.to_owned())).collect())
}

/// `loop/<number>-<slug of the title>`: readable, and one per issue.
pub fn branch_name(number: i64, title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() { format!("loop/{number}") } else { format!("loop/{number}-{slug}") }
}

#[cfg(test)]
mod tests {
    use super::branch_name;

    #[test]
    fn branch_names_are_readable_and_safe() {
        assert_eq!(branch_name(42, "Fix the login timeout!"), "loop/42-fix-the-login-timeout");
        assert_eq!(branch_name(7, "  ../../etc  "), "loop/7-etc");
        assert_eq!(branch_name(3, "日本語"), "loop/3");
        assert!(branch_name(1, &"long words ".repeat(20)).len() <= "loop/1-".len() + 40);
    }
}
