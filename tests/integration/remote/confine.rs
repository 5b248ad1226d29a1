//! Issue 13, defect 2 and the protocol half of defect 3: a client of `pgkeep <command>:remote`
//! stays inside the roots the command serves, and no number in a request becomes an
//! allocation. The real binary is started as the postgres user with piped stdin/stdout (what
//! an `authorized_keys` forced command gives a client, without ssh in between) and driven with
//! the crate's own protocol client. Every escaping request must be refused, nothing outside the
//! root may change, and the server must still answer afterwards.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use pgkeep::error::ErrorKind;
use pgkeep::protocol::{Channel, Conn, Pool};
use pgkeep::storage::{FileType, RemoteStorage, Storage, WriteOptions};
use serde_json::json;

use crate::common::pgkeep::{chown_postgres, pgkeep_bin};
use crate::common::{TempDir, postgres_ids};

/// `pgkeep <args>` as the postgres user, stdin and stdout piped, stderr kept for messages.
fn spawn_server(args: &[String]) -> Child {
    let (uid, gid) = postgres_ids();
    let mut command = Command::new(pgkeep_bin());
    command
        .args(args)
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("PGKEEP_") {
            command.env_remove(&key);
        }
    }
    command.spawn().expect("spawn pgkeep :remote")
}

/// A far side started the way ssh's forced command would start it, and a storage driver over
/// it. The servers are killed when the test ends.
struct Far {
    storage: RemoteStorage,
    children: Arc<Mutex<Vec<Child>>>,
    args: Vec<String>,
}

impl Far {
    fn start(args: Vec<String>) -> Far {
        let children = Arc::new(Mutex::new(Vec::new()));
        let (kept, spawn_args) = (children.clone(), args.clone());
        let connector = move || {
            let mut child = spawn_server(&spawn_args);
            let input = child.stdin.take().unwrap();
            let output = child.stdout.take().unwrap();
            kept.lock().unwrap().push(child);
            Channel::over(Conn::new(Box::new(output), Box::new(input), "'far'"))
        };
        let pool = Pool::new("'far'".into(), Box::new(connector)).expect("greeting");
        Far {
            storage: RemoteStorage::new(pool, None).unwrap(),
            children,
            args,
        }
    }

    /// A raw connection to a new server of the same kind, greeted, for hand-made frames.
    fn raw(&self) -> (Child, Conn) {
        let mut child = spawn_server(&self.args);
        let input = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let mut conn = Conn::new(Box::new(output), Box::new(input), "'far'");
        pgkeep::protocol::client::greet(&mut conn).expect("greeting");
        (child, conn)
    }

    /// The far side still answers on the pool's channel.
    fn assert_alive(&self) {
        assert!(self.storage.info("").unwrap().is_some());
    }
}

impl Drop for Far {
    fn drop(&mut self) {
        for child in self.children.lock().unwrap().iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything under `dir` (not following links): path -> (kind, mode, size, content or target).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).unwrap())
        } else if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
            "dir".to_string()
        } else {
            format!("file {:?}", std::fs::read(&path).unwrap())
        };
        seen.insert(path, format!("{what} mode {:o}", meta.mode()));
    }
    seen
}

/// Asserts `result` is a refusal: an error, never a success, never a lost connection.
#[track_caller]
fn refused<T: std::fmt::Debug>(what: &str, result: pgkeep::error::Result<T>) -> String {
    match result {
        Ok(value) => panic!("{what}: accepted ({value:?}), expected a refusal"),
        Err(err) => {
            assert_ne!(
                err.kind(),
                ErrorKind::Protocol,
                "{what}: the connection failed instead of a refusal: {}",
                err.message()
            );
            err.message().to_string()
        }
    }
}

/// A temp dir holding `root` (served), `outside` (a sentinel with a secret) and whatever a
/// test adds; owned by postgres, as the server runs as postgres.
struct Dirs {
    dir: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let dir = TempDir::new();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside/sub")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        std::fs::write(dir.path().join("outside/sub/deep"), b"deep").unwrap();
        Dirs { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn lock(&self) -> String {
        format!("--lock-path={}", self.dir.path().display())
    }

    fn log(&self) -> String {
        format!("--log-path={}", self.dir.path().display())
    }
}

fn repo_server(dirs: &Dirs) -> Far {
    Far::start(vec![
        "archive-push:remote".into(),
        "--remote-type=repo".into(),
        "--stanza=demo".into(),
        format!("--repo1-path={}", dirs.root().display()),
        dirs.lock(),
        dirs.log(),
        "--log-level-file=off".into(),
    ])
}

fn pg_server(dirs: &Dirs) -> Far {
    Far::start(vec![
        "backup:remote".into(),
        "--remote-type=pg".into(),
        "--stanza=demo".into(),
        format!("--pg1-path={}", dirs.root().display()),
        dirs.lock(),
        dirs.log(),
        "--log-level-file=off".into(),
    ])
}

#[test]
fn repo_remote_refuses_every_path_that_leaves_the_repository() {
    let dirs = Dirs::new();
    let root = dirs.root();
    std::fs::create_dir_all(root.join("archive/demo/15-1")).unwrap();
    std::fs::write(root.join("archive/demo/15-1/seg"), b"wal").unwrap();
    symlink(dirs.outside(), root.join("link-out")).unwrap();
    symlink("/etc", root.join("link-etc")).unwrap();
    symlink("../../outside", root.join("archive/rel-out")).unwrap();
    // A link that stays inside is the repository's own business.
    symlink("15-1", root.join("archive/demo/inside")).unwrap();
    chown_postgres(dirs.dir.path());
    let before = snapshot(&dirs.outside());
    let far = repo_server(&dirs);
    let repo = &far.storage;

    // Names that leave the root.
    refused("info ..", repo.info("../outside/secret"));
    refused("read ..", repo.read_all("archive/../../outside/secret"));
    refused("info absolute", repo.info("/etc/passwd"));
    refused("read absolute", repo.read_all("/etc/passwd"));
    // Links planted in the repository that lead out of it.
    refused("read through link", repo.read_all("link-out/secret"));
    refused("read through /etc link", repo.read_all("link-etc/passwd"));
    refused(
        "read through relative link",
        repo.read_all("archive/rel-out/secret"),
    );
    refused("list through link", repo.list("link-etc"));
    refused("list below link", repo.list("link-out/sub"));
    refused("info through link", repo.info("link-out/secret"));
    refused("info of linked dir", repo.info("link-etc/"));
    refused(
        "range through link",
        repo.read_range("link-etc/passwd", 0, 16),
    );
    refused(
        "write through link",
        repo.put("link-out/planted", b"x", &WriteOptions::default()),
    );
    refused(
        "write through link, no create_path",
        repo.put(
            "link-out/planted2",
            b"x",
            &WriteOptions {
                create_path: false,
                ..WriteOptions::default()
            },
        ),
    );
    refused(
        "create_dir through link",
        repo.create_dir("link-out/made", 0o777),
    );
    refused(
        "create_dir below link",
        repo.create_dir("link-out/sub/made", 0o777),
    );
    refused("sync through link", repo.sync_dir("link-out/sub"));
    refused("remove through link", repo.remove("link-out/secret"));
    refused("remove_dir through link", repo.remove_dir("link-out/sub"));
    refused(
        "rename out",
        repo.rename("archive/demo/15-1/seg", "link-out/stolen"),
    );
    refused("rename in", repo.rename("link-out/secret", "archive/got"));
    // Links the client would create: only a plain name in the same directory ('latest').
    refused("symlink to /etc", repo.symlink("/etc", "evil"));
    refused("symlink to ..", repo.symlink("../outside", "evil"));
    refused("symlink to a path", repo.symlink("archive/demo", "evil"));
    refused("symlink to ..", repo.symlink("..", "evil"));
    // None of them was made, so there is nothing to read through.
    assert!(repo.read_all("evil/secret").unwrap().is_none());
    refused(
        "symlink placed through link",
        repo.symlink("x", "link-out/latest"),
    );

    // What is inside stays usable: a link inside, and a 'latest'-style link.
    assert_eq!(
        repo.read_all("archive/demo/inside/seg").unwrap().unwrap(),
        b"wal"
    );
    repo.symlink("15-1", "archive/demo/latest").unwrap();
    let latest = repo.info("archive/demo/latest").unwrap().unwrap();
    assert_eq!(latest.file_type, FileType::Link);
    assert_eq!(latest.link_target.as_deref(), Some("15-1"));
    // The planted links themselves are entries of the repository: listed, never followed.
    let names: Vec<String> = repo
        .list("")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(names.contains(&"link-etc".to_string()), "{names:?}");
    assert!(!root.join("evil").exists() && std::fs::symlink_metadata(root.join("evil")).is_err());
    assert_eq!(
        std::fs::read(root.join("archive/demo/15-1/seg")).unwrap(),
        b"wal"
    );
    assert_eq!(
        snapshot(&dirs.outside()),
        before,
        "something outside the root changed"
    );
    far.assert_alive();
}

#[test]
fn repo_remote_refuses_a_link_swapped_into_a_path_between_requests() {
    let dirs = Dirs::new();
    let root = dirs.root();
    std::fs::create_dir_all(root.join("backup/demo")).unwrap();
    std::fs::write(root.join("backup/demo/file"), b"ours").unwrap();
    chown_postgres(dirs.dir.path());
    let before = snapshot(&dirs.outside());
    let far = repo_server(&dirs);
    let repo = &far.storage;
    assert_eq!(repo.read_all("backup/demo/file").unwrap().unwrap(), b"ours");

    // Someone with write access to the repository swaps the directory for a link.
    std::fs::rename(root.join("backup/demo"), root.join("backup/old")).unwrap();
    symlink(dirs.outside(), root.join("backup/demo")).unwrap();
    refused("read after swap", repo.read_all("backup/demo/secret"));
    refused("list after swap", repo.list("backup/demo"));
    refused(
        "write after swap",
        repo.put("backup/demo/new", b"x", &WriteOptions::default()),
    );
    refused("remove_dir after swap", repo.remove_dir("backup/demo/sub"));
    refused(
        "rename after swap",
        repo.rename("backup/demo/secret", "got"),
    );
    // The link itself is inside: removing the entry removes the link, not what it points to.
    repo.remove("backup/demo").unwrap();
    assert_eq!(
        snapshot(&dirs.outside()),
        before,
        "something outside the root changed"
    );
    far.assert_alive();
}

#[test]
fn repo_remote_bounds_range_reads_and_frames() {
    let dirs = Dirs::new();
    std::fs::write(dirs.root().join("small"), b"0123456789").unwrap();
    chown_postgres(dirs.dir.path());
    let far = repo_server(&dirs);

    // Lengths far beyond the file and the cap: refused or cut at the file's end, never an
    // allocation of that size (which aborted the server).
    let (mut child, mut conn) = far.raw();
    for len in [u64::MAX, 1 << 62, 1 << 40, 64 << 20] {
        let answer = conn.call(
            "storage.read_range",
            json!({ "path": "small", "offset": 0, "len": len }),
        );
        let err = answer.expect_err("a length over the cap is refused");
        assert_eq!(err.kind(), ErrorKind::Protocol, "{}", err.message());
        assert!(
            err.message().contains("over the limit"),
            "{}",
            err.message()
        );
    }
    for offset in [u64::MAX, 1 << 62, 11] {
        let answer = conn
            .call(
                "storage.read_range",
                json!({ "path": "small", "offset": offset, "len": 4096 }),
            )
            .unwrap();
        assert_eq!(answer, json!(""), "offset {offset}");
    }
    let answer = conn
        .call(
            "storage.read_range",
            json!({ "path": "small", "offset": 8, "len": 1 << 20 }),
        )
        .unwrap();
    assert_eq!(answer, json!("3839"));
    // A number that is no length at all is an invalid request, answered as such.
    let answer = conn.call(
        "storage.read_range",
        json!({ "path": "small", "offset": -1, "len": 4 }),
    );
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::Protocol);
    // The same server still answers.
    let info = conn
        .call("storage.info", json!({ "path": "small" }))
        .unwrap();
    assert_eq!(info["size"], 10);
    drop(conn);
    let _ = child.kill();
    let _ = child.wait();
    // Through the driver, a length over the cap is read as a stream instead.
    let bytes = far
        .storage
        .read_range("small", 2, 1 << 30)
        .unwrap()
        .unwrap();
    assert_eq!(bytes, b"23456789");
    far.assert_alive();
}

/// `ChildStdin` cannot be cloned; a duplicate of its descriptor can.
trait CloneStdin {
    fn try_clone_stdin(&self) -> std::fs::File;
}

impl CloneStdin for std::process::ChildStdin {
    fn try_clone_stdin(&self) -> std::fs::File {
        use std::os::fd::AsFd;
        std::fs::File::from(self.as_fd().try_clone_to_owned().unwrap())
    }
}

#[test]
fn repo_remote_refuses_frames_over_the_limit_without_allocating() {
    let dirs = Dirs::new();
    chown_postgres(dirs.dir.path());
    let mut raw = spawn_server(&[
        "archive-push:remote".into(),
        "--remote-type=repo".into(),
        "--stanza=demo".into(),
        format!("--repo1-path={}", dirs.root().display()),
        dirs.lock(),
        dirs.log(),
        "--log-level-file=off".into(),
    ]);
    let input = raw.stdin.take().unwrap();
    let output = raw.stdout.take().unwrap();
    let mut writer = input.try_clone_stdin();
    let mut conn = Conn::new(Box::new(output), Box::new(input), "'far'");
    pgkeep::protocol::client::greet(&mut conn).unwrap();
    let mut header = vec![b'D'];
    header.extend_from_slice(&u32::MAX.to_be_bytes());
    writer.write_all(&header).unwrap();
    writer.flush().unwrap();
    drop(writer);
    drop(conn);
    let status = raw.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(raw.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(39), "{status:?}: {stderr}");
    assert!(stderr.contains("over the limit"), "{stderr}");
}

#[test]
fn pg_remote_reads_its_data_directory_and_its_links_and_changes_nothing() {
    let dirs = Dirs::new();
    let root = dirs.root();
    std::fs::write(root.join("PG_VERSION"), b"15\n").unwrap();
    std::fs::create_dir_all(root.join("base/1")).unwrap();
    std::fs::write(root.join("base/1/1259"), b"relation").unwrap();
    // A tablespace outside the data directory: its link is the cluster's own and is followed.
    let tablespace = dirs.dir.path().join("ts");
    std::fs::create_dir_all(tablespace.join("PG_15_202209061/1")).unwrap();
    std::fs::write(tablespace.join("PG_15_202209061/1/16400"), b"ts relation").unwrap();
    // A link inside the tablespace leading further out is not followed.
    symlink(dirs.outside(), tablespace.join("PG_15_202209061/out")).unwrap();
    std::fs::create_dir_all(root.join("pg_tblspc")).unwrap();
    symlink(&tablespace, root.join("pg_tblspc/16400")).unwrap();
    chown_postgres(dirs.dir.path());
    let before_root = snapshot(&root);
    let before_ts = snapshot(&tablespace);
    let before = snapshot(&dirs.outside());
    let far = pg_server(&dirs);
    let pg = &far.storage;

    // What a backup does: list, info, read, and through the tablespace link.
    assert_eq!(pg.read_all("base/1/1259").unwrap().unwrap(), b"relation");
    let link = pg.info("pg_tblspc/16400").unwrap().unwrap();
    assert_eq!(link.file_type, FileType::Link);
    let dir = pg.info("pg_tblspc/16400/").unwrap().unwrap();
    assert_eq!(dir.file_type, FileType::Path);
    let names: Vec<String> = pg
        .list("pg_tblspc/16400/PG_15_202209061")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(names.contains(&"1".to_string()), "{names:?}");
    assert_eq!(
        pg.read_all("pg_tblspc/16400/PG_15_202209061/1/16400")
            .unwrap()
            .unwrap(),
        b"ts relation"
    );
    assert_eq!(
        pg.read_range("pg_tblspc/16400/PG_15_202209061/1/16400", 3, 8)
            .unwrap()
            .unwrap(),
        b"relation"
    );

    // Out of the data directory by name, or further out through a link in the tablespace.
    refused("read ..", pg.read_all("../outside/secret"));
    refused("read absolute", pg.read_all("/etc/passwd"));
    refused(
        "read through tablespace's link",
        pg.read_all("pg_tblspc/16400/PG_15_202209061/out/secret"),
    );
    refused(
        "list through tablespace's link",
        pg.list("pg_tblspc/16400/PG_15_202209061/out"),
    );
    // Nothing in the data directory is the client's to change.
    refused("write", pg.put("planted", b"x", &WriteOptions::default()));
    refused(
        "write in tablespace",
        pg.put("pg_tblspc/16400/planted", b"x", &WriteOptions::default()),
    );
    refused("remove", pg.remove("PG_VERSION"));
    refused("remove_dir", pg.remove_dir("base"));
    refused("create_dir", pg.create_dir("made", 0o700));
    refused("rename", pg.rename("PG_VERSION", "moved"));
    refused("symlink", pg.symlink("/etc", "pg_tblspc/16401"));
    refused("symlink plain", pg.symlink("base", "latest"));

    assert_eq!(snapshot(&root), before_root, "the data directory changed");
    assert_eq!(snapshot(&tablespace), before_ts, "the tablespace changed");
    assert_eq!(
        snapshot(&dirs.outside()),
        before,
        "something outside changed"
    );
    far.assert_alive();
}

/// docs/remote.md, "Security": a key limited by `restrict,command="pgkeep ... :remote"` still
/// serves pgkeep (archive-push and check from the database host through the repository host),
/// and whatever else the key's holder asks ssh to run, it gets that server and nothing else.
#[test]
fn a_forced_command_key_serves_pgkeep_and_nothing_else() {
    let d = super::Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    let keys = d._sshd.dir().join("authorized_keys");
    let key = std::fs::read_to_string(&keys).unwrap();
    let forced = format!(
        "restrict,command=\"{} --config={} --stanza=demo --remote-type=repo \
         --log-level-console=off --log-level-stderr=error archive-get:remote\" {}",
        pgkeep_bin().display(),
        d.backup_conf.display(),
        key.trim()
    );
    std::fs::write(&keys, format!("{forced}\n")).unwrap();

    // pgkeep on the database host works through the forced command.
    d.switch_and_wait_archived();
    d.on_db(&["check"]).ok();
    d.on_db(&["info"]).ok().contains("stanza: demo");

    // Anything else asked of that key gets the pgkeep server: its greeting frame on stdout,
    // never the output of the command asked for.
    let (uid, gid) = postgres_ids();
    let output = Command::new(d._sshd.ssh())
        .args([
            "-p",
            &d._sshd.port().to_string(),
            &format!("postgres@{}", crate::common::sshd::BACKUP_HOST),
        ])
        .args(["cat /etc/passwd; touch /tmp/pgkeep-forced-command-escaped"])
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with('M'), "{stdout:?}");
    assert!(stdout.contains("\"name\":\"pgkeep\""), "{stdout:?}");
    assert!(!stdout.contains("root:"), "{stdout:?}");
    assert!(!Path::new("/tmp/pgkeep-forced-command-escaped").exists());
}
