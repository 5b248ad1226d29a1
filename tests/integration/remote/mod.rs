//! SCENARIO §5 (dedicated backup host) and §7 (replication), and the failures of remote
//! operation, over a real sshd on loopback addresses: 127.0.0.2 is the backup host (holds the
//! repository, runs backup and expire), 127.0.0.3 the database host (runs the cluster,
//! archive-push, archive-get, restore). Both "hosts" are this machine, with a config file each.

mod archive_async;
mod block;
mod confine;
mod faults;
mod scenario;
mod standby;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::pgkeep::{Run, chown_postgres, pgkeep_bin, run_pgkeep};
use crate::common::sshd::{BACKUP_HOST, DB_HOST, Sshd};
use crate::common::{ClusterOptions, PgCluster, TempDir};

/// Two pgkeep configurations around one cluster and one sshd.
pub struct Deployment {
    db: PgCluster,
    /// Kept running for the deployment's lifetime.
    _sshd: Sshd,
    backup_conf: PathBuf,
    db_conf: PathBuf,
    repo: PathBuf,
    dir: TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        Deployment::with_options(ClusterOptions::default())
    }

    fn with_options(mut options: ClusterOptions) -> Deployment {
        let sshd = Sshd::start();
        let dir = TempDir::new();
        let root = dir.path();
        let repo = root.join("backup-host/repo");
        for sub in [
            "backup-host/repo",
            "backup-host/lock",
            "backup-host/log",
            "db-host/lock",
            "db-host/log",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let backup_conf = root.join("backup-host/pgkeep.conf");
        let db_conf = root.join("db-host/pgkeep.conf");
        let archive_command = format!(
            "{} --config={} --stanza=demo archive-push %p",
            pgkeep_bin().display(),
            db_conf.display()
        );
        options.settings.extend([
            ("archive_mode".to_string(), "on".to_string()),
            (
                "archive_command".to_string(),
                format!("'{archive_command}'"),
            ),
            ("wal_level".to_string(), "replica".to_string()),
            ("max_wal_senders".to_string(), "5".to_string()),
        ]);
        let db = PgCluster::init(options);
        let port = sshd.port();
        let ssh = sshd.ssh().display();
        // The backup host: the repository, and pg1-host for the cluster.
        std::fs::write(
            &backup_conf,
            format!(
                "[global]\nrepo1-path={}\nlock-path={root}/backup-host/lock\n\
                 log-path={root}/backup-host/log\nstart-fast=y\narchive-timeout=30\n\
                 cmd-ssh={ssh}\nrepo1-retention-full=2\n\n\
                 [demo]\npg1-host={DB_HOST}\npg1-host-user=postgres\npg1-host-port={port}\n\
                 pg1-host-config={}\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
                repo.display(),
                db_conf.display(),
                db.data_dir().display(),
                db.port(),
                db.socket_dir().display(),
                root = root.display(),
            ),
        )
        .unwrap();
        // The database host: the cluster, and repo1-host for the repository.
        std::fs::write(
            &db_conf,
            format!(
                "[global]\nrepo1-host={BACKUP_HOST}\nrepo1-host-user=postgres\n\
                 repo1-host-port={port}\nrepo1-host-config={}\nlock-path={root}/db-host/lock\n\
                 log-path={root}/db-host/log\ncmd-ssh={ssh}\n\n\
                 [demo]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
                backup_conf.display(),
                db.data_dir().display(),
                db.port(),
                db.socket_dir().display(),
                root = root.display(),
            ),
        )
        .unwrap();
        chown_postgres(root);
        std::fs::set_permissions(&repo, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .unwrap();
        db.start();
        Deployment {
            db,
            _sshd: sshd,
            backup_conf,
            db_conf,
            repo,
            dir,
        }
    }

    fn run(conf: &Path, args: &[&str]) -> Run {
        let config = format!("--config={}", conf.display());
        let mut all = vec![config.as_str(), "--stanza=demo"];
        all.extend_from_slice(args);
        run_pgkeep(&all, &[])
    }

    /// pgkeep on the backup host.
    fn on_backup(&self, args: &[&str]) -> Run {
        Deployment::run(&self.backup_conf, args)
    }

    /// pgkeep on the database host.
    fn on_db(&self, args: &[&str]) -> Run {
        Deployment::run(&self.db_conf, args)
    }

    fn labels(&self, run: Run) -> Vec<String> {
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

    fn digest(cluster: &PgCluster, table: &str) -> String {
        cluster.psql(&format!(
            "select count(*) || ':' || md5(string_agg(t::text, ',' order by t::text)) from {table} t"
        ))
    }

    /// Waits until the segment holding the current WAL position is archived (after a switch).
    fn switch_and_wait_archived(&self) {
        let segment = self.db.psql("select pg_walfile_name(pg_current_wal_lsn())");
        self.db.psql("select pg_switch_wal()");
        self.db.wait_for(
            &format!("select last_archived_wal >= '{segment}' from pg_stat_archiver"),
            "t",
            Duration::from_secs(60),
        );
    }
}
