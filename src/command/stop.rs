//! stop: forbid new pgkeep runs, for one stanza or all; `--force` also ends running ones.

use std::os::unix::fs::OpenOptionsExt;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::lock;
use crate::{log_info, log_warn};

use super::open;

pub fn run(cfg: &Config) -> Result<i32> {
    let lock_path = open::lock_path(cfg);
    let stanza = cfg.stanza();
    std::fs::create_dir_all(&lock_path).map_err(|e| {
        Error::io(
            ErrorKind::PathCreate,
            "create lock path",
            lock_path.display(),
            &e,
        )
    })?;
    let stop_file = lock::stop_file(&lock_path, stanza);
    let scope = match stanza {
        Some(stanza) => format!("stanza {stanza}"),
        None => "all stanzas".to_string(),
    };
    if stop_file.exists() {
        log_warn!("stop file already exists for {scope}");
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(lock::FILE_MODE)
            .open(&stop_file)
            .map_err(|e| {
                Error::io(
                    ErrorKind::FileWrite,
                    "create stop file",
                    stop_file.display(),
                    &e,
                )
            })?;
        log_info!("stop file created for {scope}");
    }
    if cfg.bool(Opt::Force) {
        for (path, pid) in lock::holders(&lock_path, stanza)? {
            if pid == std::process::id() as i32 {
                continue;
            }
            match nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            ) {
                Ok(()) => log_info!(
                    "sent term signal to process {pid} holding '{}'",
                    path.display()
                ),
                Err(e) => log_warn!("unable to send term signal to process {pid}: {e}"),
            }
        }
    }
    Ok(0)
}
