//! A real OpenSSH server on loopback addresses, for the remote tests.
//!
//! One `sshd` (Debian's openssh-server, installed on first use when missing) listens on
//! 127.0.0.2 and 127.0.0.3, which stand for two hosts (the backup host and the database host)
//! and need no setup. It has its own host key, pidfile, log and `authorized_keys` in a
//! temporary directory, allows only the postgres user and only key authentication (PAM is on
//! because Debian's postgres account is locked, and sshd refuses locked accounts without it).
//! The client side is a `cmd-ssh` wrapper script that gives ssh this harness's key and
//! known_hosts file, so nothing in ~postgres is touched and host keys are still checked.
//! Never a network namespace: traffic to their addresses could leave this machine.
//! The server is stopped by its pid (from its pidfile) on drop.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{TempDir, free_port, postgres_ids};

/// The address standing for the backup host.
pub const BACKUP_HOST: &str = "127.0.0.2";
/// The address standing for the database host.
pub const DB_HOST: &str = "127.0.0.3";

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd; see the module documentation.
pub struct Sshd {
    port: u16,
    pid_file: PathBuf,
    log: PathBuf,
    ssh: PathBuf,
    dir: TempDir,
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs openssh-server when sshd is missing (Debian's package; its service is not used).
fn ensure_installed() {
    if Path::new(SSHD).exists() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "openssh-server"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("run apt-get");
    assert!(
        status.success() && Path::new(SSHD).exists(),
        "install openssh-server"
    );
}

/// A port free on both loopback hosts.
fn free_port_on_hosts() -> u16 {
    loop {
        let port = free_port();
        if [BACKUP_HOST, DB_HOST]
            .iter()
            .all(|host| TcpListener::bind((*host, port)).is_ok())
        {
            return port;
        }
    }
}

fn write_file(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Sshd {
    /// Starts sshd and waits until both addresses accept connections.
    pub fn start() -> Sshd {
        ensure_installed();
        let dir = TempDir::new();
        let root = dir.path();
        // sshd reads its files as root; the client files must be the postgres user's.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let host_key = root.join("host_key");
        let client_key = root.join("client_key");
        for key in [&host_key, &client_key] {
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    &key.display().to_string(),
                ],
            );
        }
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&client_key, Some(uid), Some(gid)).unwrap();
        let client_pub = std::fs::read_to_string(root.join("client_key.pub")).unwrap();
        write_file(&root.join("authorized_keys"), &client_pub, 0o644);

        let port = free_port_on_hosts();
        let host_pub = std::fs::read_to_string(root.join("host_key.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let known_hosts: String = [BACKUP_HOST, DB_HOST]
            .iter()
            .map(|host| format!("[{host}]:{port} {}\n", host_pub.join(" ")))
            .collect();
        let known_hosts_file = root.join("known_hosts");
        write_file(&known_hosts_file, &known_hosts, 0o644);

        let ssh = root.join("ssh");
        write_file(
            &ssh,
            &format!(
                "#!/bin/sh\nexec ssh -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes \"$@\"\n",
                client_key.display(),
                known_hosts_file.display()
            ),
            0o755,
        );

        let pid_file = root.join("sshd.pid");
        let log = root.join("sshd.log");
        let config = root.join("sshd_config");
        write_file(
            &config,
            &format!(
                "Port {port}\nListenAddress {BACKUP_HOST}\nListenAddress {DB_HOST}\n\
                 HostKey {}\nPidFile {}\nUsePAM yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers postgres\n\
                 StrictModes no\nAuthorizedKeysFile {}\nMaxStartups 100\nMaxSessions 100\n",
                host_key.display(),
                pid_file.display(),
                root.join("authorized_keys").display()
            ),
            0o644,
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let config_arg = config.display().to_string();
        run(SSHD, &["-t", "-f", &config_arg]);
        run(SSHD, &["-f", &config_arg, "-E", &log.display().to_string()]);
        let sshd = Sshd {
            port,
            pid_file,
            log,
            ssh,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sshd.pid_file.exists()
            || [BACKUP_HOST, DB_HOST]
                .iter()
                .any(|host| std::net::TcpStream::connect((*host, port)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `cmd-ssh` wrapper: ssh with this harness's key and known hosts.
    pub fn ssh(&self) -> &Path {
        &self.ssh
    }

    /// sshd's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The harness's directory (owned by root, readable by all).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
        else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
