//! Running the built pgkeep binary against a real cluster: a stanza set up as SCENARIO §1 does
//! (repository, config file, archiving), and a runner that returns exit code and output.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ClusterOptions, PgCluster, TempDir};

/// The pgkeep binary under test.
pub fn pgkeep_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pgkeep"))
}

/// What a pgkeep run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the run exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "pgkeep failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Both streams, for assertions that do not care where a line went.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn contains(self, text: &str) -> Run {
        assert!(
            self.output().contains(text),
            "expected {text:?} in output:\n{}",
            self.output()
        );
        self
    }
}

/// Runs pgkeep as the postgres user with the given arguments (no implicit config).
pub fn run_pgkeep(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(pgkeep_bin())
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    // Tests must not depend on the machine's own pgkeep configuration or environment.
    for (key, _) in std::env::vars() {
        if key.starts_with("PGKEEP_") && !env.iter().any(|(k, _)| *k == key) {
            command.env_remove(&key);
        }
    }
    let output = command.output().expect("run pgkeep");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// A cluster archiving into a pgkeep repository, as SCENARIO §1 configures it.
pub struct Stanza {
    pub name: String,
    pub cluster: PgCluster,
    pub dir: TempDir,
    pub conf: PathBuf,
    pub repo: PathBuf,
    pub lock: PathBuf,
    pub log: PathBuf,
}

impl Stanza {
    /// A PG 15 cluster with archiving to stanza `demo`, started; the stanza is not created.
    pub fn new() -> Stanza {
        Stanza::with_options("demo", ClusterOptions::default(), "")
    }

    /// A cluster of the given options; `extra_conf` is appended to the `[global]` section.
    pub fn with_options(name: &str, mut options: ClusterOptions, extra_conf: &str) -> Stanza {
        let dir = TempDir::new();
        let root = dir.path().to_path_buf();
        let repo = root.join("repo");
        let lock = root.join("lock");
        let log = root.join("log");
        for path in [&repo, &lock, &log] {
            std::fs::create_dir_all(path).unwrap();
        }
        let conf = root.join("pgkeep.conf");
        let archive_command = format!(
            "{} --config={} --stanza={name} archive-push %p",
            pgkeep_bin().display(),
            conf.display()
        );
        options.settings.push(("archive_mode".into(), "on".into()));
        options
            .settings
            .push(("archive_command".into(), format!("'{archive_command}'")));
        options
            .settings
            .push(("wal_level".into(), "replica".into()));
        options
            .settings
            .push(("max_wal_senders".into(), "3".into()));
        let cluster = PgCluster::init(options);
        std::fs::write(
            &conf,
            format!(
                "[global]\nrepo1-path={}\nlock-path={}\nlog-path={}\nstart-fast=y\narchive-timeout=30\n{extra_conf}\n\n[{name}]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
                repo.display(),
                lock.display(),
                log.display(),
                cluster.data_dir().display(),
                cluster.port(),
                cluster.socket_dir().display(),
            ),
        )
        .unwrap();
        chown_postgres(&root);
        std::fs::set_permissions(&repo, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .unwrap();
        cluster.start();
        Stanza {
            name: name.to_string(),
            cluster,
            dir,
            conf,
            repo,
            lock,
            log,
        }
    }

    /// Runs pgkeep with this stanza's config file and `--stanza`.
    pub fn pgkeep(&self, args: &[&str]) -> Run {
        let config = format!("--config={}", self.conf.display());
        let stanza = format!("--stanza={}", self.name);
        let mut all = vec![config.as_str(), stanza.as_str()];
        all.extend_from_slice(args);
        run_pgkeep(&all, &[])
    }

    /// Runs pgkeep with this stanza's config file but no `--stanza`.
    pub fn pgkeep_all(&self, args: &[&str]) -> Run {
        let config = format!("--config={}", self.conf.display());
        let mut all = vec![config.as_str()];
        all.extend_from_slice(args);
        run_pgkeep(&all, &[])
    }

    /// A table's row count and a checksum of its content.
    pub fn table_digest(&self, table: &str) -> String {
        self.cluster.psql(&format!(
            "select count(*) || ':' || coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from {table} t"
        ))
    }

    /// The backup labels listed by `info --output=json`.
    pub fn labels(&self) -> Vec<String> {
        let run = self.pgkeep(&["info", "--output=json"]).ok();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("info json");
        json[0]["backup"]
            .as_array()
            .map(|b| {
                b.iter()
                    .map(|b| b["label"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        self.cluster.data_dir()
    }
}

/// Gives a tree to the postgres user.
pub fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `condition` every 100 ms for up to `seconds`; panics when it never holds.
#[track_caller]
pub fn wait_until(seconds: u64, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("condition not met within {seconds}s");
}

/// Starts pgkeep as the postgres user in the background; the child's pid is pgkeep's own (no
/// runuser in between), so a test can signal it.
pub fn spawn_pgkeep(args: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let (uid, gid) = super::postgres_ids();
    let mut command = Command::new(pgkeep_bin());
    command
        .args(args)
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("PGKEEP_") {
            command.env_remove(&key);
        }
    }
    command.spawn().expect("spawn pgkeep")
}

/// Removes everything inside `dir`, keeping `dir` itself.
pub fn empty_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
}
