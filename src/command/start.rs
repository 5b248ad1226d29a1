//! start: allow pgkeep to run again after `stop`, for one stanza or all.

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::lock;
use crate::{log_detail, log_warn};

use super::open;

pub fn run(cfg: &Config) -> Result<i32> {
    let lock_path = open::lock_path(cfg);
    let stop_file = lock::stop_file(&lock_path, cfg.stanza());
    match std::fs::remove_file(&stop_file) {
        Ok(()) => log_detail!("stop file removed, pgkeep may run again"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => log_warn!("stop file does not exist"),
        Err(e) => {
            return Err(Error::io(
                ErrorKind::FileRemove,
                "remove stop file",
                stop_file.display(),
                &e,
            ));
        }
    }
    Ok(0)
}
