//! pgkeep's SQL session against real PostgreSQL servers: connection, identity, non-exclusive
//! backup start and stop, WAL switches, the catalog listings a backup needs, and passwords
//! from `.pgpass`. PostgreSQL 15 always runs; the start/stop round trip also runs on 12 and 17,
//! and fails when `scripts/install-pg.sh` has not installed them.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{ClusterOptions, PgCluster, TempDir, free_port, pg_installed};
use pgkeep::error::ErrorKind;
use pgkeep::pg::wal::DEFAULT_SEGMENT_SIZE;
use pgkeep::pg::{ConnectOptions, ControlData, DbSession, PgVersion, WalSegment};

fn started(options: ClusterOptions) -> PgCluster {
    let cluster = PgCluster::init(options);
    cluster.start();
    cluster
}

fn connect(cluster: &PgCluster) -> DbSession {
    DbSession::connect(&cluster.connect_options()).expect("connect to the test cluster")
}

#[test]
fn session_reports_version_data_directory_and_system_id() {
    let cluster = started(ClusterOptions::default());
    let mut session = connect(&cluster);

    assert_eq!(session.version(), PgVersion::from_major(15));
    assert_eq!(
        session.data_directory().unwrap(),
        cluster.data_dir().to_str().unwrap()
    );
    let control = ControlData::read(&cluster.data_dir().join("global/pg_control")).unwrap();
    assert_eq!(session.system_id().unwrap(), control.system_id);
    assert!(!session.in_recovery().unwrap());
    assert_eq!(
        session.setting("wal_level").unwrap().as_deref(),
        Some("replica")
    );
    assert_eq!(session.setting("no_such_setting").unwrap(), None);
    let application = cluster.psql(
        "select application_name from pg_stat_activity where application_name like 'pgkeep%'",
    );
    assert_eq!(application, "pgkeep-test");
    session.close().unwrap();

    let mut options = cluster.connect_options();
    options.user = Some("no_such_role".to_string());
    let err = DbSession::connect(&options)
        .err()
        .expect("the role does not exist");
    assert_eq!(err.kind(), ErrorKind::DbConnect);
    assert!(
        err.message()
            .ends_with("FATAL: role \"no_such_role\" does not exist"),
        "{}",
        err.message()
    );
}

/// Starts and stops a backup and checks what the server returned.
fn backup_round_trip(cluster: &PgCluster) {
    let mut session = connect(cluster);
    assert_eq!(session.version().major(), cluster.major());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let start = session.backup_start("pgkeep test backup", true).unwrap();
    assert_eq!(start.wal_segment.timeline, 1);
    assert_eq!(
        start.wal_segment,
        WalSegment::from_lsn(1, start.lsn, DEFAULT_SEGMENT_SIZE)
    );
    assert!((start.time - now).abs() < 300, "server time {}", start.time);

    cluster.psql("create table during_backup as select generate_series(1, 1000) as id");
    let stop = session.backup_stop().unwrap();
    assert!(stop.lsn > start.lsn, "{} > {}", stop.lsn, start.lsn);
    assert!(stop.wal_segment >= start.wal_segment);
    assert!(
        stop.backup_label.contains(&format!(
            "START WAL LOCATION: {} (file {})",
            start.lsn, start.wal_segment
        )),
        "{}",
        stop.backup_label
    );
    assert!(stop.backup_label.contains("LABEL: pgkeep test backup"));
    assert_eq!(stop.tablespace_map, None);

    // A second stop has nothing to stop: a query error carrying the server's message.
    let err = session.backup_stop().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DbQuery);
    assert!(
        err.message().contains("ERROR: ") && err.message().contains("backup is not in progress"),
        "{}",
        err.message()
    );
}

#[test]
fn backup_start_and_stop_round_trip_on_15() {
    backup_round_trip(&started(ClusterOptions::default()));
}

/// A missing version fails the test (scripts/test.sh installs every one): a skip would count
/// as a pass.
fn round_trip_on(major: u32) {
    assert!(
        pg_installed(major),
        "PostgreSQL {major} is not installed: run scripts/install-pg.sh {major}"
    );
    backup_round_trip(&started(ClusterOptions::major(major)));
}

#[test]
fn backup_start_and_stop_round_trip_on_12() {
    round_trip_on(12);
}

#[test]
fn backup_start_and_stop_round_trip_on_17() {
    round_trip_on(17);
}

#[test]
fn switch_wal_advances_to_a_new_segment() {
    let cluster = started(ClusterOptions::default());
    let mut session = connect(&cluster);
    let before = session.current_wal_segment().unwrap();
    cluster.psql("create table t as select generate_series(1, 1000) as id");
    let lsn = session.switch_wal().unwrap();
    let after = session.current_wal_segment().unwrap();
    assert!(after > before, "{after} > {before}");
    // The switch LSN ends the segment that was just closed.
    let closed = session.walfile_name(lsn).unwrap();
    assert!(
        closed >= before && closed < after,
        "{before} <= {closed} < {after}"
    );
    assert_eq!(closed.next(DEFAULT_SEGMENT_SIZE), after);
    session.checkpoint().unwrap();
}

#[test]
fn databases_and_tablespaces_are_listed() {
    let cluster = started(ClusterOptions::default());
    let location = TempDir::new();
    let location_text = location.path().to_str().unwrap().to_string();
    cluster.psql(&format!(
        "create tablespace ts1 location '{location_text}';\ncreate database app tablespace ts1;"
    ));
    let mut session = connect(&cluster);

    let databases = session.databases().unwrap();
    let names: Vec<&str> = databases.iter().map(|(_, name)| name.as_str()).collect();
    for expected in ["postgres", "template0", "template1", "app"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let app_oid: u32 = cluster
        .psql("select oid from pg_database where datname = 'app'")
        .parse()
        .unwrap();
    assert!(databases.contains(&(app_oid, "app".to_string())));

    let ts_oid: u32 = cluster
        .psql("select oid from pg_tablespace where spcname = 'ts1'")
        .parse()
        .unwrap();
    assert_eq!(
        session.tablespaces().unwrap(),
        [(ts_oid, "ts1".to_string(), location_text)]
    );

    // A backup with a tablespace returns its tablespace_map.
    let start = session.backup_start("with tablespace", true).unwrap();
    let stop = session.backup_stop().unwrap();
    assert!(stop.lsn > start.lsn);
    let map = stop.tablespace_map.expect("a tablespace_map");
    assert!(map.starts_with(&format!("{ts_oid} ")), "{map}");
}

#[test]
fn connecting_to_a_wrong_port_fails_with_db_connect() {
    let socket = TempDir::new();
    let port = free_port();
    let options = ConnectOptions {
        socket_path: Some(socket.path().to_path_buf()),
        port,
        user: Some("postgres".to_string()),
        ..ConnectOptions::default()
    };
    let err = DbSession::connect(&options)
        .err()
        .expect("no server listens there");
    assert_eq!(err.kind(), ErrorKind::DbConnect);
    let expected = format!(
        "unable to connect to 'dbname='postgres' port={port} host='{}'': ",
        socket.path().display()
    );
    assert!(err.message().starts_with(&expected), "{}", err.message());
    // No socket file there: the socket file tried and the operating system's reason, as libpq
    // says them, and a hint that the server may not be running.
    let socket_file = format!("{}/.s.PGSQL.{port}", socket.path().display());
    assert!(
        err.message().ends_with(&format!(
            "connection to server on socket \"{socket_file}\" failed: No such file or directory"
        )),
        "{}",
        err.message()
    );
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("is the server running")),
        "{:?}",
        err.hint()
    );
}

#[test]
fn harness_settings_apply_on_restart_and_immediate_stop_crashes() {
    let cluster = started(ClusterOptions::default().setting("work_mem", "7MB"));
    assert_eq!(cluster.psql("show work_mem"), "7MB");
    assert_eq!(cluster.psql("show fsync"), "on");
    cluster.set("work_mem", "'9MB'");
    cluster.restart();
    assert_eq!(cluster.psql("show work_mem"), "9MB");
    cluster.wait_for("select 1 + 1", "2", Duration::from_secs(5));
    assert!(cluster.try_psql("select * from no_such_table").is_err());
    assert!(cluster.server_log().contains("database system is ready"));

    cluster.stop_immediate();
    assert!(!cluster.is_running());
    let control = ControlData::read(&cluster.data_dir().join("global/pg_control")).unwrap();
    assert!(!control.is_shut_down(), "state {}", control.state);
}

/// Connects as `app` with the given .pgpass content; `expect` is "ok" or part of the error.
fn connect_with_pgpass(cluster: &PgCluster, pgpass: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(&file, pgpass).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let options = ConnectOptions {
        socket_path: Some(cluster.socket_dir().to_path_buf()),
        port: cluster.port(),
        user: Some("app".to_string()),
        pgpass_file: Some(file),
        ..ConnectOptions::default()
    };
    match DbSession::connect(&options) {
        Ok(session) => {
            assert_eq!(expect, "ok");
            session.close().unwrap();
        }
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::DbConnect);
            assert!(err.message().contains(expect), "{}", err.message());
        }
    }
}

#[test]
fn passwords_come_from_the_pgpass_file() {
    let cluster = PgCluster::init(ClusterOptions::default());
    std::fs::write(
        cluster.data_dir().join("pg_hba.conf"),
        "local all postgres trust\nlocal all all scram-sha-256\n",
    )
    .unwrap();
    cluster.start();
    cluster.psql("create role app login password 'secret'");

    let socket = cluster.socket_dir().display().to_string();
    let port = cluster.port();
    connect_with_pgpass(&cluster, &format!("{socket}:{port}:*:app:secret\n"), "ok");
    connect_with_pgpass(
        &cluster,
        &format!("other:{port}:*:app:wrong\n*:*:*:app:secret\n"),
        "ok",
    );
    connect_with_pgpass(
        &cluster,
        "*:*:*:app:wrong\n",
        "password authentication failed",
    );
}

#[test]
fn db_timeout_becomes_the_session_statement_timeout() {
    let cluster = started(ClusterOptions::default());
    let options = ConnectOptions {
        statement_timeout_ms: Some(1500),
        ..cluster.connect_options()
    };
    let mut session = DbSession::connect(&options).unwrap();
    assert_eq!(
        session.setting("statement_timeout").unwrap().as_deref(),
        Some("1500ms")
    );
    let mut plain = connect(&cluster);
    assert_eq!(
        plain.setting("statement_timeout").unwrap().as_deref(),
        Some("0")
    );
}
