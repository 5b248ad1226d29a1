//! The harness every integration test uses: PostgreSQL binaries, directories owned by the
//! postgres user, free ports, and real test clusters (`cluster::PgCluster`).
//!
//! Tests run as root, and PostgreSQL refuses to run as root, so every server program runs as
//! the `postgres` user through `runuser`, in directories that user owns. Servers listen on a
//! Unix socket in their own temporary directory only (no TCP), on a port above 50000, and are
//! stopped when their `PgCluster` is dropped. PostgreSQL 15 comes from Debian; the other
//! majors from `scripts/install-pg.sh`'s cache. The area modules of the integration binary
//! reach it as `crate::common`.

pub mod cluster;
pub mod faults;
pub mod pgkeep;
pub mod reference;
pub mod sshd;

pub use cluster::{ClusterOptions, PgCluster};

use std::ffi::OsStr;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Debian's PostgreSQL 15 binaries; also where `psql` comes from for every version.
pub const DEBIAN_PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The cache `scripts/install-pg.sh` installs into: `PGKEEP_PG_CACHE` or its default.
pub fn pg_cache_dir() -> PathBuf {
    std::env::var_os("PGKEEP_PG_CACHE")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pgkeep-pg"))
}

/// Where the binaries of `major` are, or would be once installed.
pub fn pg_bin_dir(major: u32) -> PathBuf {
    if major == 15 {
        PathBuf::from(DEBIAN_PG15_BIN)
    } else {
        pg_cache_dir()
            .join(format!("pg{major}"))
            .join(format!("node_modules/pg{major}/native/bin"))
    }
}

/// Whether the binaries of `major` are installed.
pub fn pg_installed(major: u32) -> bool {
    let dir = pg_bin_dir(major);
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|program| dir.join(program).is_file())
}

/// The bin directory of `major`; panics with how to install it when it is missing.
pub fn pg_bin(major: u32) -> PathBuf {
    if !pg_installed(major) {
        panic!(
            "PostgreSQL {major} binaries not found in '{}': run 'scripts/install-pg.sh {major}' \
             (as root)",
            pg_bin_dir(major).display()
        );
    }
    pg_bin_dir(major)
}

/// The complete PostgreSQL 16 (with pg_upgrade) of `scripts/install-pg.sh 16-full`; panics
/// with how to install it when it is missing.
pub fn pg16_full_bin() -> PathBuf {
    let bin = pg_cache_dir().join("pg16-full/pgserver/pginstall/bin");
    if !bin.join("pg_upgrade").is_file() {
        panic!(
            "PostgreSQL 16 with pg_upgrade not found in '{}': run 'scripts/install-pg.sh 16-full' \
             (as root)",
            bin.display()
        );
    }
    bin
}

/// Debian's psql 15, used against servers of every version.
pub fn psql_bin() -> PathBuf {
    let psql = Path::new(DEBIAN_PG15_BIN).join("psql");
    if !psql.is_file() {
        panic!(
            "'{}' not found: run 'scripts/install-pg.sh 15' (as root)",
            psql.display()
        );
    }
    psql
}

/// The uid and gid of the postgres user.
pub fn postgres_ids() -> (u32, u32) {
    let user = nix::unistd::User::from_name("postgres")
        .expect("look up the postgres user")
        .expect("the postgres user exists (install postgresql-15)");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// Makes `path` owned by postgres with mode 0700.
pub fn give_to_postgres(path: &Path) {
    let (uid, gid) = postgres_ids();
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|err| panic!("chown '{}': {err}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|err| panic!("chmod '{}': {err}", path.display()));
}

/// A temporary directory owned by postgres, mode 0700, removed on drop.
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    pub fn new() -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix("pgkeep-")
            .tempdir()
            .expect("create a temporary directory");
        give_to_postgres(dir.path());
        TempDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A port in 50000..60000 no other test of this process has had, free on 127.0.0.1 when
/// asked. The start depends on the process id so concurrent test processes (another
/// checkout's suite) rarely meet.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id() % 1000 * 10;
    for _ in 0..10000 {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 50000 + ((base + offset) % 10000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 50000..60000");
}

/// Runs `program` as the postgres user (directly when already postgres) from `/`, with the
/// C locale so messages are in English, plus `env`.
pub fn run_as_postgres<S: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    args: &[S],
    env: &[(&str, &str)],
) -> Output {
    run_as_postgres_with_input(program, args, env, None)
}

/// [`run_as_postgres`] with `input` on standard input.
pub fn run_as_postgres_with_input<S: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    args: &[S],
    env: &[(&str, &str)],
    input: Option<&str>,
) -> Output {
    let (uid, _) = postgres_ids();
    let mut command = if nix::unistd::Uid::effective().as_raw() == uid {
        Command::new(program.as_ref())
    } else {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program.as_ref());
        command
    };
    command
        .args(args)
        .env("LC_ALL", "C")
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = Path::new(program.as_ref()).display().to_string();
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("run '{shown}' as postgres: {err}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|err| panic!("write to '{shown}': {err}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("wait for '{shown}': {err}"))
}
