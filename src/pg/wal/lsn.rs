//! Log sequence numbers: byte positions in the WAL stream.
//!
//! An [`Lsn`] is written the way PostgreSQL writes it, two hexadecimal halves without leading
//! zeros (`0/1A000028`), so values can be compared with `pg_current_wal_lsn()` output and with
//! backup_label lines. Mapping an LSN to a segment file is `WalSegment::from_lsn`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// A position in the WAL stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `InvalidXLogRecPtr`: no position.
    pub const INVALID: Lsn = Lsn(0);

    /// The high 32 bits, the "log id" of the first half of the text form.
    pub fn high(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The low 32 bits.
    pub fn low(self) -> u32 {
        self.0 as u32
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> u64 {
        lsn.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.high(), self.low())
    }
}

impl FromStr for Lsn {
    type Err = Error;

    /// Parses `0/1A000028`. Like PostgreSQL's `pg_lsn` input, either case of hex digit is
    /// accepted and each half has one to eight digits.
    fn from_str(text: &str) -> Result<Lsn, Error> {
        let invalid = || Error::new(ErrorKind::Format, format!("invalid LSN '{text}'"));
        let half = |part: &str| -> Result<u64, Error> {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            u64::from_str_radix(part, 16).map_err(|_| invalid())
        };
        let (high, low) = text.split_once('/').ok_or_else(invalid)?;
        Ok(Lsn(half(high)? << 32 | half(low)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips_as_postgresql_writes_it() {
        let lsn: Lsn = "0/1A000028".parse().unwrap();
        assert_eq!(lsn, Lsn(0x1A00_0028));
        assert_eq!(lsn.to_string(), "0/1A000028");
        let big: Lsn = "AB/0".parse().unwrap();
        assert_eq!(big, Lsn(0xAB_0000_0000));
        assert_eq!(big.to_string(), "AB/0");
        assert_eq!("ff/ffffffff".parse::<Lsn>().unwrap(), Lsn(0xFF_FFFF_FFFF));
    }

    #[test]
    fn malformed_lsns_are_format_errors() {
        for bad in ["", "0", "/0", "0/", "0/123456789", "G/0", "0/1/2", " 0/1"] {
            let err = bad.parse::<Lsn>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Format, "{bad}");
            assert_eq!(err.message(), format!("invalid LSN '{bad}'"));
        }
    }

    #[test]
    fn lsns_order_numerically() {
        assert!("0/FFFFFFFF".parse::<Lsn>().unwrap() < "1/0".parse::<Lsn>().unwrap());
    }
}
