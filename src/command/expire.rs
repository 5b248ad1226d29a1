//! expire: remove backups and archived WAL that retention no longer keeps.

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};

pub fn run(_cfg: &Config) -> Result<i32> {
    Err(Error::new(ErrorKind::Assert, "expire is being written"))
}
