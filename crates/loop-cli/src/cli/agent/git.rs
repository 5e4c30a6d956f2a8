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

    /// A fresh worktree for `branch`, replacing any left by an earlier attempt at the same
    /// issue: on the remote's `branch` when it has one (the work continues where the pull
    /// request or a question left it), else new from the remote's `base`. Returns its
    /// directory, the commit it starts from, and whether it continues the remote branch.
    pub async fn worktree(&self, branch: &str, base: &str) -> Result<(PathBuf, String, bool), String> {
        self.worktree_as(branch, branch, base).await
    }

    /// [`Repo::worktree`] on the local branch `local`, for one of several attempts at
    /// `branch`: each has its own, and only the one chosen is pushed (as `branch`).
    pub async fn worktree_as(&self, local: &str, branch: &str, base: &str) -> Result<(PathBuf, String, bool), String> {
        let on_remote = format!("refs/heads/{branch}");
        let continued = !git(&self.dir, &["ls-remote", "--heads", &self.remote, &on_remote]).await?.is_empty();
        let from = if continued { branch } else { base };
        git(&self.dir, &["fetch", "--quiet", &self.remote, from]).await?;
        let start = git(&self.dir, &["rev-parse", "FETCH_HEAD"]).await?;
        let dir = self.worktrees().await?.join(local.replace('/', "-"));
        if dir.exists() {
            self.remove(&dir).await;
        }
        let path = dir.to_string_lossy().into_owned();
        git(&self.dir, &["worktree", "add", "--quiet", "-B", local, &path, &start]).await?;
        Ok((dir, start, continued))
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

    /// Pushes what the worktree has checked out as the remote's `branch` (never the base: the
    /// caller checks).
    pub async fn push(&self, worktree: &Path, branch: &str) -> Result<(), String> {
        let spec = format!("HEAD:refs/heads/{branch}");
        git(worktree, &["push", "--quiet", &self.remote, &spec]).await.map(|_| ())
    }

    /// Pushes a rewritten `branch`, only if the remote still has it at `was` (nobody pushed to
    /// it meanwhile).
    pub async fn push_rewritten(&self, worktree: &Path, branch: &str, was: &str) -> Result<(), String> {
        let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
        let lease = format!("--force-with-lease=refs/heads/{branch}:{was}");
        git(worktree, &["push", "--quiet", &lease, &self.remote, &spec]).await.map(|_| ())
    }

    /// Fetches the remote's `branch`; its commit.
    pub async fn fetch(&self, branch: &str) -> Result<String, String> {
        git(&self.dir, &["fetch", "--quiet", &self.remote, branch]).await?;
        git(&self.dir, &["rev-parse", "FETCH_HEAD"]).await
    }
}

/// Brings `onto` into the branch checked out in `worktree`: a rebase, else (a branch whose
/// earlier conflict was resolved in a merge) a merge. `Err` with the conflicting files when
/// neither goes through cleanly; the worktree is left as it was.
pub async fn update_onto(worktree: &Path, onto: &str) -> Result<(), Vec<String>> {
    if git(worktree, &as_runner(worktree, &["rebase", "--quiet", onto]).await).await.is_ok() {
        return Ok(());
    }
    let conflicts = conflicting(worktree).await;
    let _ = git(worktree, &["rebase", "--abort"]).await;
    if git(worktree, &as_runner(worktree, &["merge", "--quiet", "--no-edit", onto]).await).await.is_ok() {
        return Ok(());
    }
    let _ = git(worktree, &["merge", "--abort"]).await;
    Err(conflicts)
}

/// Merges `onto` into the worktree's branch and leaves any conflict in the files (with its
/// markers) for the agent to resolve; the runner's commit completes the merge. Returns the
/// conflicting files.
pub async fn merge_leaving_conflicts(worktree: &Path, onto: &str) -> Result<Vec<String>, String> {
    match git(worktree, &as_runner(worktree, &["merge", "--quiet", "--no-edit", onto]).await).await {
        Ok(_) => Ok(vec![]),
        Err(e) => match conflicting(worktree).await {
            files if files.is_empty() => Err(e),
            files => Ok(files),
        },
    }
}

/// `args` for a git command that writes commits: a machine without a git identity still gets
/// them, signed by the runner.
async fn as_runner<'a>(worktree: &Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![];
    if git(worktree, &["config", "user.email"]).await.is_err() {
        all.extend(["-c", "user.name=Loop agent", "-c", "user.email=loop-agent@localhost"]);
    }
    all.extend_from_slice(args);
    all
}

/// The files with unresolved conflicts.
async fn conflicting(worktree: &Path) -> Vec<String> {
    git(worktree, &["diff", "--name-only", "--diff-filter=U"])
        .await
        .map(|out| out.lines().map(str::to_owned).collect())
        .unwrap_or_default()
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
    git(worktree, &as_runner(worktree, &["commit", "--quiet", "--no-verify", "-m", &message]).await).await?;
    Ok(true)
}

/// The commits on HEAD since `base`, oldest first: `(sha, subject)`.
pub async fn commits_since(worktree: &Path, base: &str) -> Result<Vec<(String, String)>, String> {
    let range = format!("{base}..HEAD");
    let log = git(worktree, &["log", "--first-parent", "--reverse", "--format=%H %s", &range]).await?;
    Ok(log.lines().filter_map(|l| l.split_once(' ')).map(|(sha, s)| (sha.to_owned(), s.to_owned())).collect())
}

/// How many lines the worktree's HEAD changes since `start` (added plus removed): of several
/// verified attempts, the smallest change is chosen.
pub async fn diff_size(worktree: &Path, start: &str) -> Result<u64, String> {
    let stat = git(worktree, &["diff", "--numstat", start, "HEAD"]).await?;
    Ok(stat.lines().flat_map(|l| l.split_whitespace().take(2)).map(|n| n.parse::<u64>().unwrap_or(0)).sum())
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
