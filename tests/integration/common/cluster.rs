//! Real PostgreSQL test clusters.
//!
//! A [`PgCluster`] is an `initdb` of one major version in a temporary directory owned by
//! postgres: `data/` (the data directory), `socket/` (its Unix socket, its only listener) and
//! `pg_ctl.log` (startup output, before the logging collector takes over). Settings go to the
//! end of postgresql.conf and take effect on (re)start. fsync stays on so tests see real
//! durability; only `synchronous_commit` is relaxed. Dropping a cluster stops its server
//! immediately (by its data directory) and removes everything.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    TempDir, free_port, give_to_postgres, pg_bin, psql_bin, run_as_postgres,
    run_as_postgres_with_input,
};

/// How to make a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The PostgreSQL major version.
    pub major: u32,
    /// Data page checksums (`initdb -k`).
    pub checksums: bool,
    /// Extra postgresql.conf settings, each written as `key = value` with the value as given:
    /// quote strings the way postgresql.conf wants them (`'/bin/false'`).
    pub settings: Vec<(String, String)>,
    /// Another bin directory of that major than the installed default (see `pg_bin`).
    pub bin: Option<PathBuf>,
}

impl Default for ClusterOptions {
    fn default() -> ClusterOptions {
        ClusterOptions {
            major: 15,
            checksums: true,
            settings: Vec::new(),
            bin: None,
        }
    }
}

impl ClusterOptions {
    /// The defaults for another major version.
    pub fn major(major: u32) -> ClusterOptions {
        ClusterOptions {
            major,
            ..ClusterOptions::default()
        }
    }

    /// Runs the binaries in `bin` (which must be of `major`).
    pub fn bin(mut self, bin: PathBuf) -> ClusterOptions {
        self.bin = Some(bin);
        self
    }

    /// Adds a postgresql.conf setting (value as given, see `settings`).
    pub fn setting(mut self, key: &str, value: &str) -> ClusterOptions {
        self.settings.push((key.to_string(), value.to_string()));
        self
    }
}

/// A test cluster; see the module documentation.
pub struct PgCluster {
    major: u32,
    bin: PathBuf,
    port: u16,
    data: PathBuf,
    socket: PathBuf,
    pg_ctl_log: PathBuf,
    // Held for its drop, last, so the server is stopped (in drop) before the directory goes.
    _root: TempDir,
}

/// A postgresql.conf line with the value as given.
fn conf_line(key: &str, value: &str) -> String {
    format!("{key} = {value}\n")
}

/// A postgresql.conf string value: single-quoted, quotes doubled.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn check(what: &str, output: &std::process::Output) {
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl PgCluster {
    /// Runs initdb and writes the settings; the server is not started.
    pub fn init(options: ClusterOptions) -> PgCluster {
        let bin = options.bin.clone().unwrap_or_else(|| pg_bin(options.major));
        let root = TempDir::new();
        let data = root.path().join("data");
        let socket = root.path().join("socket");
        std::fs::create_dir(&socket).expect("create the socket directory");
        give_to_postgres(&socket);

        let data_arg = data.display().to_string();
        let mut args = vec![
            "-D",
            &data_arg,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            // initdb's final sync only; the server keeps fsync on.
            "--no-sync",
        ];
        if options.checksums {
            args.push("-k");
        }
        check("initdb", &run_as_postgres(bin.join("initdb"), &args, &[]));

        let cluster = PgCluster {
            major: options.major,
            bin,
            port: free_port(),
            pg_ctl_log: root.path().join("pg_ctl.log"),
            data,
            socket,
            _root: root,
        };
        let mut conf = String::from("\n# pgkeep test harness\n");
        for (key, value) in [
            ("port", cluster.port.to_string()),
            (
                "unix_socket_directories",
                quoted(&cluster.socket.display().to_string()),
            ),
            ("listen_addresses", quoted("")),
            ("log_line_prefix", quoted("")),
            ("logging_collector", "on".to_string()),
            ("log_directory", quoted("log")),
            ("log_filename", quoted("postgresql.log")),
            ("synchronous_commit", "off".to_string()),
        ] {
            conf.push_str(&conf_line(key, &value));
        }
        for (key, value) in &options.settings {
            conf.push_str(&conf_line(key, value));
        }
        cluster.append_conf(&conf);
        cluster
    }

    fn append_conf(&self, text: &str) {
        use std::io::Write;
        let path = self.data.join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|err| panic!("open '{}': {err}", path.display()));
        file.write_all(text.as_bytes())
            .unwrap_or_else(|err| panic!("write '{}': {err}", path.display()));
    }

    pub fn major(&self) -> u32 {
        self.major
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.data.display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        run_as_postgres(self.bin.join("pg_ctl"), &all, &[])
    }

    /// Starts the server and waits until it accepts connections; panics with the server log
    /// when it does not start.
    pub fn start(&self) {
        if let Err(err) = self.try_start() {
            panic!("{err}");
        }
    }

    /// [`PgCluster::start`] returning pg_ctl's output and the server log on failure.
    pub fn try_start(&self) -> Result<(), String> {
        let log = self.pg_ctl_log.display().to_string();
        let output = self.pg_ctl(&["start", "-w", "-t", "120", "-l", &log]);
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "pg_ctl start failed ({}):\n{}{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.server_log()
        ))
    }

    /// Stops the server cleanly (fast shutdown) and waits for it.
    pub fn stop(&self) {
        check(
            "pg_ctl stop",
            &self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "120"]),
        );
    }

    /// Stops the server without a shutdown checkpoint, as a crash would.
    pub fn stop_immediate(&self) {
        check(
            "pg_ctl stop -m immediate",
            &self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "120"]),
        );
    }

    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    pub fn is_running(&self) -> bool {
        self.pg_ctl(&["status"]).status.success()
    }

    /// Appends a setting to postgresql.conf (value as given: quote strings); it takes effect
    /// on restart.
    pub fn set(&self, key: &str, value: &str) {
        self.append_conf(&conf_line(key, value));
    }

    /// Runs SQL with psql in database postgres; returns its unaligned, tuples-only output.
    /// Panics with psql's error output on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|err| panic!("psql failed for '{sql}':\n{err}"))
    }

    /// [`PgCluster::psql`] returning psql's error output instead of panicking.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.try_psql_in("postgres", sql)
    }

    /// [`PgCluster::try_psql`] in another database.
    pub fn try_psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let socket = self.socket.display().to_string();
        let port = self.port.to_string();
        let args = [
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &socket,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            database,
            "-f",
            "-",
        ];
        // Statements go through standard input so each runs on its own, outside an implicit
        // transaction (CREATE DATABASE and CREATE TABLESPACE refuse to run in one).
        let output = run_as_postgres_with_input(psql_bin(), &args, &[], Some(sql));
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout)
                .trim_end_matches('\n')
                .to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// The server's log: pg_ctl's startup output, then the logging collector's file.
    pub fn server_log(&self) -> String {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        read(self.pg_ctl_log.clone()) + &read(self.data.join("log/postgresql.log"))
    }

    /// Polls `sql` until its output is `expected`; panics after `timeout`.
    pub fn wait_for(&self, sql: &str, expected: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.try_psql(sql);
            if result.as_deref() == Ok(expected) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("'{sql}' did not return '{expected}' within {timeout:?}: last {result:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Options for pgkeep's own session to this cluster.
    pub fn connect_options(&self) -> pgkeep::pg::ConnectOptions {
        pgkeep::pg::ConnectOptions {
            socket_path: Some(self.socket.clone()),
            host: None,
            port: self.port,
            user: Some("postgres".to_string()),
            database: "postgres".to_string(),
            application_name: "pgkeep-test".to_string(),
            pgpass_file: None,
            statement_timeout_ms: None,
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            // Best effort: a failing stop must not hide the test's own panic.
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"]);
        }
    }
}
