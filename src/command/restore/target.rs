//! Recovery targets as restore understands them: the `--target` text read for its type.
//!
//! Time targets must carry their time zone (an offset such as `+00`, `+01:00`, `Z`, or a zone
//! name such as `UTC` or `Europe/Paris` after the time). A time without a zone is refused:
//! PostgreSQL would read it in the restored server's `timezone` setting, which pgkeep cannot
//! see, and the backup set would be chosen for a different instant than the one recovery
//! stops at. The target written for PostgreSQL is the same instant in UTC, so both read it
//! alike. LSN targets are parsed so that a backup set can be chosen by its stop LSN; xid and
//! name targets are passed through as given. Nothing here reads options or the clock.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::Lsn;

/// A parsed `--target` for the types that choose a backup set by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `--type=time`: the instant, and the text written to recovery_target_time.
    Time { at: Timestamp, setting: String },
    /// `--type=lsn`.
    Lsn(Lsn),
}

/// Parses a time target; see the module comment for what is accepted.
pub fn parse_time(text: &str) -> Result<Target> {
    let given = text.trim();
    let at = instant(given)?;
    Ok(Target::Time {
        at,
        setting: format_utc(at),
    })
}

/// Parses an LSN target, e.g. `0/3000028`.
pub fn parse_lsn(text: &str) -> Result<Target> {
    text.trim().parse::<Lsn>().map(Target::Lsn).map_err(|_| {
        Error::new(
            ErrorKind::OptionInvalidValue,
            format!("'{text}' is not a valid LSN for option 'target'"),
        )
        .with_hint("an LSN is two hexadecimal halves, e.g. --target=0/3000028")
    })
}

/// An instant as PostgreSQL prints timestamptz values in UTC: `2026-11-24 21:00:00.5+00`.
pub fn format_utc(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S%.f+00").to_string()
}

/// A Unix time in seconds, as [`format_utc`] shows it.
pub fn format_unix(seconds: i64) -> String {
    Timestamp::from_second(seconds)
        .map(format_utc)
        .unwrap_or_else(|_| format!("@{seconds}"))
}

fn instant(text: &str) -> Result<Timestamp> {
    // An offset (`+00`, `-05:30`, `Z`), optionally with a bracketed zone name.
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    if let Ok(civil) = text.parse::<DateTime>() {
        return Err(no_zone(text, civil));
    }
    // A zone name after the time: `2026-11-24 21:00:00 UTC`, `... Europe/Paris`.
    if let Some((time, zone)) = text.rsplit_once(char::is_whitespace)
        && let Ok(civil) = time.trim().parse::<DateTime>()
    {
        // An offset after a space, as psql can print it: `2026-11-24 21:00:00 +00`.
        if let Ok(at) = format!("{}{zone}", time.trim()).parse::<Timestamp>() {
            return Ok(at);
        }
        let tz = TimeZone::get(zone).map_err(|_| {
            Error::new(
                ErrorKind::OptionInvalidValue,
                format!("time target '{text}' has an unknown time zone '{zone}'"),
            )
            .with_hint("use an offset such as +00 or +01:00, or a zone name such as UTC")
        })?;
        return tz.to_ambiguous_timestamp(civil).unambiguous().map_err(|_| {
            Error::new(
                ErrorKind::OptionInvalidValue,
                format!(
                    "time target '{text}' does not name one instant: the clocks of '{zone}' \
                         skip or repeat it"
                ),
            )
            .with_hint("give the offset instead of the zone name, e.g. +01 or +02")
        });
    }
    Err(Error::new(
        ErrorKind::OptionInvalidValue,
        format!("'{text}' is not a valid time for option 'target'"),
    )
    .with_hint("give a timestamp with its time zone, e.g. --target=\"2026-11-24 21:00:00+00\""))
}

/// The refusal of a time without a zone, with the same wall time in this host's zone as a
/// suggestion (not a guess: the DBA must confirm it).
fn no_zone(text: &str, civil: DateTime) -> Error {
    let suggestion = TimeZone::try_system()
        .ok()
        .and_then(|tz| {
            let at = tz.to_ambiguous_timestamp(civil).unambiguous().ok()?;
            let offset = tz.to_offset(at);
            Some(format!(
                "; in this host's time zone that is --target=\"{}{}\"",
                civil.strftime("%Y-%m-%d %H:%M:%S%.f"),
                offset_text(offset.seconds())
            ))
        })
        .unwrap_or_default();
    Error::new(
        ErrorKind::OptionInvalidValue,
        format!("time target '{text}' has no time zone"),
    )
    .with_hint(format!(
        "add the zone the time was noted in, e.g. --target=\"{}+00\"{suggestion}",
        civil.strftime("%Y-%m-%d %H:%M:%S%.f")
    ))
}

/// `+01`, `-05:30`.
fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    if minutes == 0 {
        format!("{sign}{hours:02}")
    } else {
        format!("{sign}{hours:02}:{minutes:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> String {
        match parse_time(text).unwrap() {
            Target::Time { setting, .. } => setting,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn time_targets_with_a_zone_become_the_same_instant_in_utc() {
        assert_eq!(at("2026-11-24 21:00:00+00"), "2026-11-24 21:00:00+00");
        assert_eq!(at("2026-11-24 22:00:00+01:00"), "2026-11-24 21:00:00+00");
        assert_eq!(at("2026-11-24 22:00:00+0100"), "2026-11-24 21:00:00+00");
        assert_eq!(at("2026-11-24T21:00:00Z"), "2026-11-24 21:00:00+00");
        assert_eq!(
            at("  2026-11-24 15:30:00.123456-05:30 "),
            "2026-11-24 21:00:00.123456+00"
        );
        assert_eq!(at("2026-11-24 21:00:00 UTC"), "2026-11-24 21:00:00+00");
        assert_eq!(at("2026-11-24 23:00:00 +02"), "2026-11-24 21:00:00+00");
        assert_eq!(
            at("2026-11-24 22:00:00 Europe/Paris"),
            "2026-11-24 21:00:00+00"
        );
        assert_eq!(
            at("2026-07-24 23:00:00 Europe/Paris"),
            "2026-07-24 21:00:00+00"
        );
    }

    #[test]
    fn a_time_without_a_zone_is_refused_with_a_suggestion() {
        let err = parse_time("2026-11-24 21:00:00").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OptionInvalidValue);
        assert_eq!(
            err.message(),
            "time target '2026-11-24 21:00:00' has no time zone"
        );
        assert!(
            err.hint().unwrap().starts_with(
                "add the zone the time was noted in, e.g. --target=\"2026-11-24 21:00:00+00\""
            ),
            "{:?}",
            err.hint()
        );
        assert!(parse_time("2026-11-24").is_err());
    }

    #[test]
    fn unknown_zones_repeated_hours_and_garbage_are_refused() {
        let err = parse_time("2026-11-24 21:00:00 Mars/Olympus").unwrap_err();
        assert_eq!(
            err.message(),
            "time target '2026-11-24 21:00:00 Mars/Olympus' has an unknown time zone 'Mars/Olympus'"
        );
        // 02:30 happens twice in Paris on 2026-10-25.
        let err = parse_time("2026-10-25 02:30:00 Europe/Paris").unwrap_err();
        assert!(err.message().contains("does not name one instant"), "{err}");
        let err = parse_time("yesterday").unwrap_err();
        assert_eq!(
            err.message(),
            "'yesterday' is not a valid time for option 'target'"
        );
    }

    #[test]
    fn lsn_targets_parse_or_say_what_an_lsn_is() {
        assert_eq!(
            parse_lsn("0/3000028").unwrap(),
            Target::Lsn(Lsn(0x300_0028))
        );
        let err = parse_lsn("3000028").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OptionInvalidValue);
        assert_eq!(
            err.message(),
            "'3000028' is not a valid LSN for option 'target'"
        );
    }

    #[test]
    fn offsets_print_like_postgresql() {
        assert_eq!(offset_text(0), "+00");
        assert_eq!(offset_text(3600), "+01");
        assert_eq!(offset_text(-19800), "-05:30");
        assert_eq!(format_unix(0), "1970-01-01 00:00:00+00");
    }
}
