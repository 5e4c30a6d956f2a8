//! A PostgreSQL for tests. `LOOP_TEST_POSTGRES_URL` (a server and a user that may create
//! databases) when it is set; otherwise a throwaway server started on first use: `initdb` into a
//! temporary directory, `postgres` on a free port of 127.0.0.1, stopped and removed when the
//! test run ends. Each caller gets a fresh, empty database of its own.
//!
//! When neither can be had, [`database`] panics with what to install: a PostgreSQL test never
//! passes by skipping.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::Connection;

/// A database that exists until this value is dropped.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot await; a short-lived runtime on its own thread removes the database.
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(super::admin::drop_database(&admin, &name)).ok()
        })
        .join();
    }
}

/// A new, empty database on the test server.
pub async fn database() -> TestDatabase {
    let admin_url = server_url();
    let name = format!("loop_test_{}", loop_core::id::new_id().replace('-', ""));
    // A server that has just started accepts connections before it can serve them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match sqlx::PgConnection::connect(&admin_url).await {
            Ok(conn) => break conn,
            Err(e) if Instant::now() < deadline && e.to_string().contains("starting up") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot connect to the test PostgreSQL at {admin_url}: {e}"),
        }
    };
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    let url = super::admin::with_database(&admin_url, &name);
    TestDatabase { url, name, admin_url }
}

/// The admin URL of the test server, starting a throwaway one on first use if needed.
fn server_url() -> String {
    if let Ok(url) = std::env::var("LOOP_TEST_POSTGRES_URL") {
        return url;
    }
    static THROWAWAY: OnceLock<Result<String, String>> = OnceLock::new();
    match THROWAWAY.get_or_init(throwaway) {
        Ok(url) => url.clone(),
        Err(why) => panic!(
            "no PostgreSQL for the tests: {why}. Set LOOP_TEST_POSTGRES_URL=postgres://user@127.0.0.1:5432/postgres \
             or install PostgreSQL's server binaries (Debian: apt-get install postgresql)"
        ),
    }
}

/// One throwaway server per test run. nextest runs every test in a process of its own, so
/// the first process of a run (`NEXTEST_RUN_ID`) starts the server and the others find its
/// URL in the run's directory. A detached supervisor stops the server and removes the
/// directory once the process that owns the run (the nextest runner, or this test binary under
/// `cargo test`) has exited.
fn throwaway() -> Result<String, String> {
    let (key, owner) = match std::env::var("NEXTEST_RUN_ID") {
        Ok(run) => (run, parent_pid().ok_or("cannot read this process's parent")?),
        Err(_) => (format!("pid-{}", std::process::id()), std::process::id()),
    };
    let dir = std::env::temp_dir().join(format!("loop-pg-{key}"));
    let url_file = dir.join("url");
    if std::fs::create_dir(&dir).is_ok() {
        let started = start(&dir, owner);
        let record = match &started {
            Ok(url) => url.clone(),
            Err(why) => format!("error: {why}"),
        };
        std::fs::write(dir.join("url.tmp"), &record)
            .and_then(|_| std::fs::rename(dir.join("url.tmp"), &url_file))
            .map_err(|e| e.to_string())?;
        return started;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(url) = std::fs::read_to_string(&url_file) {
            return match url.strip_prefix("error: ") {
                Some(why) => Err(why.to_owned()),
                None => Ok(url),
            };
        }
        if Instant::now() > deadline {
            return Err(format!(
                "another test process was starting the throwaway server in {} and never finished",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the server in `dir` under a supervisor that outlives this process and cleans up
/// after `owner` exits.
fn start(dir: &std::path::Path, owner: u32) -> Result<String, String> {
    let bin = binaries().ok_or("initdb and postgres were not found on PATH or in /usr/lib/postgresql/*/bin")?;
    let data = dir.join("data");
    // PostgreSQL refuses to run as root; then it runs as the `postgres` user.
    let as_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    let run_as = if as_root { "runuser -u postgres -- " } else { "" };
    if as_root {
        let status = Command::new("chown").arg("postgres").arg(dir).status();
        if !status.is_ok_and(|s| s.success()) {
            return Err("running as root, and the temporary directory could not be given to the postgres user".into());
        }
    }
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let initdb = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{run_as}'{}' -D '{}' -U postgres -A trust --no-sync -E UTF8 >'{}/initdb.log' 2>&1",
            bin.join("initdb").display(),
            data.display(),
            dir.display()
        ))
        .status()
        .map_err(|e| e.to_string())?;
    if !initdb.success() {
        return Err(format!("initdb failed: {}", std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default()));
    }
    let script = format!(
        "{run_as}'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
           -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 >'{dir}/server.log' 2>&1 &\n\
         while kill -0 {owner} 2>/dev/null; do sleep 1; done\n\
         kill -INT \"$(head -n 1 '{data}/postmaster.pid')\" 2>/dev/null\n\
         while [ -e '{data}/postmaster.pid' ]; do sleep 0.2; done\n\
         rm -rf '{dir}'\n",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the server's supervisor: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!("the throwaway server did not start: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

/// This process's parent (Linux).
fn parent_pid() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The directory holding `initdb` and `postgres`: PATH first, then Debian's versioned
/// directories, newest first.
fn binaries() -> Option<PathBuf> {
    let has_both = |d: &PathBuf| d.join("initdb").exists() && d.join("postgres").exists();
    let on_path = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(has_both));
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(has_both)
            .collect();
        versions.sort_by_key(|p| {
            p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
        });
        versions.pop()
    })
}

/// A PostgreSQL server of the caller's own, which it may stop and start again (to see what a
/// restart does to a running node). Removed when dropped.
pub struct PrivateServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: &'static str,
}

impl PrivateServer {
    /// `initdb` into a temporary directory, and the server started on a free port of 127.0.0.1.
    pub fn start() -> PrivateServer {
        let bin = binaries().expect("initdb and postgres, on PATH or in /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        let as_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
        let run_as = if as_root { "runuser -u postgres -- " } else { "" };
        if as_root {
            assert!(Command::new("chown").arg("postgres").arg(dir.path()).status().is_ok_and(|s| s.success()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PrivateServer { dir, bin, port, run_as };
        server.sh(&format!(
            "{run_as}'{}' -D '{}' -U postgres -A trust --no-sync -E UTF8 >'{}/initdb.log' 2>&1",
            server.bin.join("initdb").display(),
            server.data().display(),
            server.dir.path().display()
        ));
        server.resume();
        server
    }

    /// An admin URL (user `postgres`, database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (PostgreSQL's fast shutdown: open transactions are aborted).
    pub fn stop(&self) {
        self.sh(&format!(
            "kill -INT \"$(head -n 1 '{data}/postmaster.pid')\"; while [ -e '{data}/postmaster.pid' ]; do sleep 0.05; done",
            data = self.data().display()
        ));
    }

    /// Starts the stopped server again on the same port and data, and waits until it answers.
    pub fn resume(&self) {
        self.sh(&format!(
            "{run_as}'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
               -c max_connections=100 >>'{dir}/server.log' 2>&1 &",
            run_as = self.run_as,
            postgres = self.bin.join("postgres").display(),
            data = self.data().display(),
            port = self.port,
            dir = self.dir.path().display(),
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the private PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn sh(&self, script: &str) {
        let status = Command::new("sh").arg("-c").arg(script).status().expect("sh");
        assert!(status.success(), "{script}");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            self.stop();
        }
    }
}
