//! pgBackRest 2.45 beside pgkeep on one cluster: the differential harness of issue 14.
//!
//! A [`Pair`] is one PostgreSQL 15 cluster whose `archive_command` pushes every segment with
//! pgBackRest and then with pgkeep, each with its own config file, repository, log, lock and
//! spool directories, and `log-level-console=info` in both configs (as pgBackRest's user guide
//! has it). [`Pair::both`] runs the same arguments with each tool; the comparison helpers
//! normalise what legitimately differs (times, labels, sizes, pids, paths, the binary name).
//!
//! pgBackRest comes from Debian's package (`apt-get install pgbackrest`); `.ci/run` installs
//! it, and a missing binary fails the test with how to install it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::pgkeep::{Run, chown_postgres, pgkeep_bin};
use super::{ClusterOptions, PgCluster, TempDir, run_as_postgres};

/// Debian's pgBackRest binary.
pub const PGBACKREST_BIN: &str = "/usr/bin/pgbackrest";

/// The pgBackRest binary; panics with how to install it when it is missing.
pub fn pgbackrest_bin() -> PathBuf {
    let bin = PathBuf::from(PGBACKREST_BIN);
    if !bin.is_file() {
        panic!("'{PGBACKREST_BIN}' not found: run 'apt-get install -y pgbackrest' (as root)");
    }
    bin
}

/// One tool's side of a pair.
pub struct Side {
    pub bin: PathBuf,
    pub conf: PathBuf,
    pub repo: PathBuf,
    pub log: PathBuf,
    pub lock: PathBuf,
    pub spool: PathBuf,
}

impl Side {
    fn new(root: &Path, name: &str, bin: PathBuf) -> Side {
        let dir = root.join(name);
        let side = Side {
            bin,
            conf: dir.join(format!("{name}.conf")),
            repo: dir.join("repo"),
            log: dir.join("log"),
            lock: dir.join("lock"),
            spool: dir.join("spool"),
        };
        for path in [&side.repo, &side.log, &side.lock, &side.spool] {
            std::fs::create_dir_all(path).unwrap();
        }
        side
    }

    /// Writes this side's config file: `global` lines, then the stanza section.
    fn write_conf(&self, stanza: &str, cluster: &PgCluster, global: &str) {
        std::fs::write(
            &self.conf,
            format!(
                "[global]\nrepo1-path={}\nlog-path={}\nlock-path={}\nspool-path={}\n\
                 log-level-console=info\nlog-level-file=off\nstart-fast=y\narchive-timeout=30\n\
                 repo1-retention-full=2\n{global}\n\n[{stanza}]\npg1-path={}\npg1-port={}\n\
                 pg1-socket-path={}\n",
                self.repo.display(),
                self.log.display(),
                self.lock.display(),
                self.spool.display(),
                cluster.data_dir().display(),
                cluster.port(),
                cluster.socket_dir().display(),
            ),
        )
        .unwrap();
    }

    /// Runs this tool as postgres with its config file, `--stanza` and `args`.
    pub fn run(&self, stanza: &str, args: &[&str]) -> Run {
        let mut all = vec![
            format!("--config={}", self.conf.display()),
            format!("--stanza={stanza}"),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        self.run_raw(&all)
    }

    /// Starts this tool as postgres with its config file, `--stanza` and `args`, without
    /// waiting (its output is discarded); for runs that another command must see in progress.
    /// The tool runs directly under the postgres ids, not under `runuser`, so that stopping it
    /// (SIGSTOP) does not also stop a wrapper that then never resumes.
    pub fn spawn(&self, stanza: &str, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = super::postgres_ids();
        std::process::Command::new(&self.bin)
            .arg(format!("--config={}", self.conf.display()))
            .arg(format!("--stanza={stanza}"))
            .args(args)
            .uid(uid)
            .gid(gid)
            .env("LC_ALL", "C")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("start '{}': {err}", self.bin.display()))
    }

    /// Runs this tool as postgres with exactly `args` (no config, no stanza added).
    pub fn run_raw<S: AsRef<str>>(&self, args: &[S]) -> Run {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        let output = run_as_postgres(&self.bin, &args, &[]);
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        }
    }
}

/// The runs of one command by both tools.
pub struct Both {
    pub pgkeep: Run,
    pub pgbackrest: Run,
}

impl Both {
    /// Panics unless both exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Both {
        assert!(
            self.pgkeep.code == code && self.pgbackrest.code == code,
            "expected exit code {code} from both\n{}",
            self.shown()
        );
        self
    }

    /// Both outputs, for assertion messages.
    pub fn shown(&self) -> String {
        format!(
            "--- pgkeep (exit {}):\n{}{}--- pgBackRest (exit {}):\n{}{}",
            self.pgkeep.code,
            self.pgkeep.stdout,
            self.pgkeep.stderr,
            self.pgbackrest.code,
            self.pgbackrest.stdout,
            self.pgbackrest.stderr
        )
    }
}

/// One cluster archiving to a pgBackRest and a pgkeep repository; see the module documentation.
pub struct Pair {
    pub stanza: String,
    pub cluster: PgCluster,
    pub pgkeep: Side,
    pub pgbackrest: Side,
    pub dir: TempDir,
}

impl Pair {
    /// A started PG 15 cluster archiving with both tools to stanza `demo`; no stanza created.
    pub fn new() -> Pair {
        Pair::with_global("")
    }

    /// As [`Pair::new`], with `global` appended to the `[global]` section of both configs.
    pub fn with_global(global: &str) -> Pair {
        let stanza = "demo".to_string();
        let dir = TempDir::new();
        let pgkeep = Side::new(dir.path(), "pgkeep", pgkeep_bin());
        let pgbackrest = Side::new(dir.path(), "pgbackrest", pgbackrest_bin());
        let push = |side: &Side| {
            format!(
                "{} --config={} --stanza={stanza} archive-push %p",
                side.bin.display(),
                side.conf.display()
            )
        };
        let archive_command = format!("{} && {}", push(&pgbackrest), push(&pgkeep));
        let options = ClusterOptions::default()
            .setting("archive_mode", "on")
            .setting("archive_command", &format!("'{archive_command}'"))
            .setting("wal_level", "replica")
            .setting("max_wal_senders", "3");
        let cluster = PgCluster::init(options);
        pgkeep.write_conf(&stanza, &cluster, global);
        pgbackrest.write_conf(&stanza, &cluster, global);
        chown_postgres(dir.path());
        cluster.start();
        Pair {
            stanza,
            cluster,
            pgkeep,
            pgbackrest,
            dir,
        }
    }

    /// Runs `args` (after `--config` and `--stanza`) with pgkeep, then with pgBackRest.
    pub fn both(&self, args: &[&str]) -> Both {
        Both {
            pgkeep: self.pgkeep.run(&self.stanza, args),
            pgbackrest: self.pgbackrest.run(&self.stanza, args),
        }
    }

    /// As [`Pair::both`] for another stanza than the pair's (`--stanza=<stanza>`).
    pub fn both_in(&self, stanza: &str, args: &[&str]) -> Both {
        Both {
            pgkeep: self.pgkeep.run(stanza, args),
            pgbackrest: self.pgbackrest.run(stanza, args),
        }
    }

    /// Runs exactly `args` with each binary (each side's own paths substituted for the
    /// placeholders `{conf}`, `{repo}`, `{log}`, `{lock}` and `{spool}`).
    pub fn both_raw(&self, args: &[&str]) -> Both {
        let fill = |side: &Side| -> Vec<String> {
            args.iter()
                .map(|a| {
                    a.replace("{conf}", &side.conf.display().to_string())
                        .replace("{repo}", &side.repo.display().to_string())
                        .replace("{log}", &side.log.display().to_string())
                        .replace("{lock}", &side.lock.display().to_string())
                        .replace("{spool}", &side.spool.display().to_string())
                })
                .collect()
        };
        Both {
            pgkeep: self.pgkeep.run_raw(&fill(&self.pgkeep)),
            pgbackrest: self.pgbackrest.run_raw(&fill(&self.pgbackrest)),
        }
    }

    /// Creates the stanza with both tools (both must succeed).
    pub fn stanza_create(&self) {
        let both = self.both(&["stanza-create"]);
        assert!(
            both.pgkeep.code == 0 && both.pgbackrest.code == 0,
            "stanza-create\n{}",
            both.shown()
        );
    }

    /// Normalises one tool's output for comparison; see [`normalise`].
    pub fn normalise(&self, text: &str) -> String {
        let paths = [
            (self.pgkeep.conf.display().to_string(), "<CONF>"),
            (self.pgbackrest.conf.display().to_string(), "<CONF>"),
            (self.pgkeep.repo.display().to_string(), "<REPO>"),
            (self.pgbackrest.repo.display().to_string(), "<REPO>"),
            (self.pgkeep.log.display().to_string(), "<LOG>"),
            (self.pgbackrest.log.display().to_string(), "<LOG>"),
            (self.pgkeep.lock.display().to_string(), "<LOCK>"),
            (self.pgbackrest.lock.display().to_string(), "<LOCK>"),
            (self.pgkeep.spool.display().to_string(), "<SPOOL>"),
            (self.pgbackrest.spool.display().to_string(), "<SPOOL>"),
            (self.cluster.data_dir().display().to_string(), "<PGDATA>"),
            (self.cluster.socket_dir().display().to_string(), "<SOCKET>"),
            (self.cluster.port().to_string(), "<PORT>"),
        ];
        let mut text = text.to_string();
        for (path, name) in paths {
            text = text.replace(&path, name);
        }
        normalise(&text)
    }
}

/// Replaces what legitimately differs between two runs: the binary name and version,
/// timestamps, backup labels, durations, sizes, pids and exec ids.
pub fn normalise(text: &str) -> String {
    // WAL names and LSNs before sizes: a segment name ending in `B` reads as a size.
    let rules: [(&str, &str); 12] = [
        (r"\b[0-9A-F]{24}\b", "<WAL>"),
        (r"\b[0-9A-F]{1,8}/[0-9A-F]{1,8}\b", "<LSN>"),
        (r"\b(pgbackrest|pgkeep)\b", "<TOOL>"),
        (r"version = \d+\.\d+(\.\d+)?", "version = <VERSION>"),
        (
            r"\b(pgBackRest|pgkeep) \d+\.\d+(\.\d+)?\b",
            "<TOOL> <VERSION>",
        ),
        (r"command begin \d+\.\d+(\.\d+)?", "command begin <VERSION>"),
        (r"\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?", "<LABEL>"),
        (
            r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:?\d{2})?)?",
            "<TIME>",
        ),
        (r"\(\d+ms\)", "(<MS>ms)"),
        (r"\d+(\.\d+)? ?(B|KB|MB|GB|TB)\b", "<SIZE>"),
        (r"--exec-id=[0-9a-f-]+", "--exec-id=<ID>"),
        (r"\bpid \d+", "pid <PID>"),
    ];
    let mut text = text.to_string();
    for (pattern, replacement) in rules {
        let re = regex::Regex::new(pattern).expect("normalisation pattern");
        text = re.replace_all(&text, replacement).to_string();
    }
    text
}

/// Every key path of a JSON value with its JSON type: arrays are `[]`, so `backup[].label` is
/// one path whatever the number of backups. Values of the same path with different types are
/// kept as one `a|b` entry.
pub fn key_paths(value: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &serde_json::Value, path: String, out: &mut BTreeMap<String, String>) {
    use serde_json::Value;
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !path.is_empty() {
        let entry = out.entry(path.clone()).or_insert_with(|| kind.to_string());
        if !entry.split('|').any(|k| k == kind) {
            entry.push('|');
            entry.push_str(kind);
        }
    }
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, format!("{path}[]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(item, child, out);
            }
        }
        _ => {}
    }
}

/// The key paths of `reference` that `ours` lacks or holds with another type (`null` on either
/// side matches any type: pgBackRest emits null for values it does not know).
pub fn missing_key_paths(ours: &serde_json::Value, reference: &serde_json::Value) -> Vec<String> {
    let ours = key_paths(ours);
    let mut missing = Vec::new();
    for (path, kind) in key_paths(reference) {
        match ours.get(&path) {
            None => missing.push(format!("{path} ({kind})")),
            Some(our_kind) => {
                let compatible = kind
                    .split('|')
                    .all(|k| k == "null" || our_kind.split('|').any(|o| o == k || o == "null"));
                if !compatible {
                    missing.push(format!("{path} (pgBackRest {kind}, pgkeep {our_kind})"));
                }
            }
        }
    }
    missing
}

/// Process `pid` and all its descendants, found through `/proc/<pid>/task/*/children` (so the
/// tool's own worker processes are there too).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let tasks = format!("/proc/{}/task", pids[i]);
        for task in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    pids
}

/// Sends `signal` to process `pid` and to all its descendants ([`process_tree`]).
pub fn signal_tree(pid: u32, signal: nix::sys::signal::Signal) {
    for pid in process_tree(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}
