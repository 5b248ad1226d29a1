//! Converting an option's text to a typed value, with its type's checks.
//!
//! Every source (command line, environment, file, table default) hands over text; this file
//! turns it into a [`Value`] for one command: booleans are `y`/`n`, numbers are parsed and
//! range-checked, sizes and times understand their units, paths must be absolute, enums must
//! be one of the command's allowed words. Which source wins is resolve.rs's business.

use crate::config::command::Command;
use crate::config::def::{Kind, OptionDef};
use crate::error::{Error, ErrorKind, Result};

/// A typed option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    /// Integer and Size (in bytes).
    Int(i64),
    /// Time, in milliseconds.
    TimeMs(u64),
    /// String, Path and Enum.
    Text(String),
    List(Vec<String>),
    Hash(Vec<(String, String)>),
}

/// Converts the text given for `def` (named `key`, e.g. `pg1-path`) for `command`. `values`
/// holds one element unless the option is a list or hash. `origin` is appended to messages to
/// say where a bad value came from, e.g. "at line 3 of '/etc/pgkeep/pgkeep.conf'"; it is
/// empty for the command line.
pub fn convert(
    def: &OptionDef,
    command: Command,
    key: &str,
    values: &[String],
    origin: &str,
) -> Result<(Value, String)> {
    let fail = |kind: ErrorKind, message: String| Error::new(kind, format!("{message}{origin}"));
    if values.iter().any(|v| v.is_empty()) {
        return Err(fail(
            ErrorKind::OptionInvalidValue,
            format!("option '{key}' must have a value"),
        ));
    }
    let text = values.first().cloned().unwrap_or_default();
    let invalid = || {
        fail(
            ErrorKind::OptionInvalidValue,
            format!("'{text}' is not valid for '{key}' option"),
        )
    };
    let out_of_range = |hint: String| {
        fail(
            ErrorKind::OptionInvalidValue,
            format!("'{text}' is out of range for '{key}' option"),
        )
        .with_hint(hint)
    };
    let value = match def.kind {
        Kind::Boolean => match text.as_str() {
            "y" => Value::Bool(true),
            "n" => Value::Bool(false),
            _ => {
                return Err(fail(
                    ErrorKind::OptionInvalidValue,
                    format!("boolean option '{key}' must be 'y' or 'n'"),
                ));
            }
        },
        Kind::Integer { min, max } => {
            let number: i64 = text.parse().map_err(|_| invalid())?;
            if number < min || number > max {
                return Err(out_of_range(format!("use a value from {min} to {max}")));
            }
            Value::Int(number)
        }
        Kind::Size { min, max } => {
            let bytes = parse_size(&text).ok_or_else(|| {
                invalid().with_hint("use a number of bytes, optionally with a unit: 4KiB, 1MB")
            })?;
            if bytes < min || bytes > max {
                let hint = format!("use a size from {} to {}", show_size(min), show_size(max));
                return Err(out_of_range(hint));
            }
            Value::Int(bytes)
        }
        Kind::Time { min_ms, max_ms } => {
            let ms = parse_time_ms(&text)
                .ok_or_else(|| invalid().with_hint("use a number of seconds, e.g. 60 or 0.5"))?;
            if ms < min_ms || ms > max_ms {
                let hint = format!(
                    "use a time from {} to {} seconds",
                    show_time(min_ms),
                    show_time(max_ms)
                );
                return Err(out_of_range(hint));
            }
            Value::TimeMs(ms)
        }
        // The stanza name becomes part of paths: it has a rule of its own.
        Kind::String if def.id == crate::config::Opt::Stanza => {
            super::stanza::check(&text, origin)?;
            Value::Text(text.clone())
        }
        Kind::String => Value::Text(text.clone()),
        Kind::Path => {
            if !text.starts_with('/') {
                return Err(fail(
                    ErrorKind::OptionInvalidValue,
                    format!("'{text}' must begin with / for '{key}' option"),
                )
                .with_hint("give an absolute path"));
            }
            if text.contains("//") {
                return Err(fail(
                    ErrorKind::OptionInvalidValue,
                    format!("'{text}' cannot contain // for '{key}' option"),
                ));
            }
            // One spelling per path, so that paths can be compared and joined as text.
            let path = match text.strip_suffix('/') {
                Some(trimmed) if !trimmed.is_empty() => trimmed.to_string(),
                _ => text.clone(),
            };
            return Ok((Value::Text(path.clone()), path));
        }
        Kind::Enum(_) => {
            let allowed = def.allowed_for(command).unwrap_or(&[]);
            if !allowed.contains(&text.as_str()) {
                return Err(invalid().with_hint(format!("use one of: {}", allowed.join(", "))));
            }
            Value::Text(text.clone())
        }
        Kind::List => Value::List(values.to_vec()),
        Kind::Hash => {
            let mut pairs = Vec::with_capacity(values.len());
            for pair in values {
                let Some((name, value)) = pair.split_once('=') else {
                    return Err(fail(
                        ErrorKind::OptionInvalidValue,
                        format!("key/value '{pair}' not valid for '{key}' option"),
                    )
                    .with_hint("use key=value"));
                };
                // `recovery-option = a = b` in a file means the pair (a, b).
                pairs.push((name.trim().to_string(), value.trim().to_string()));
            }
            Value::Hash(pairs)
        }
    };
    Ok((value, text))
}

/// Bytes in `text`: a whole number with an optional unit, case-insensitive: b; k, kb, kib;
/// m, mb, mib; g, gb, gib; t, tb, tib; p, pb, pib. Every unit is a power of 1024, as in
/// pgBackRest (where 1MB has always meant 1048576 bytes).
pub fn parse_size(text: &str) -> Option<i64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let number: i64 = digits.parse().ok()?;
    let power = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        "p" | "pb" | "pib" => 5,
        _ => return None,
    };
    number.checked_mul(1024_i64.checked_pow(power)?)
}

/// Milliseconds in `text`, a number of seconds with optional decimals (`60`, `0.5`).
/// Digits past the millisecond are dropped.
pub fn parse_time_ms(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || text.ends_with('.') {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let mut ms_digits: String = fraction.chars().take(3).collect();
    while ms_digits.len() < 3 {
        ms_digits.push('0');
    }
    let ms: u64 = ms_digits.parse().ok()?;
    seconds.checked_mul(1000)?.checked_add(ms)
}

/// A size for messages: the largest binary unit that divides it exactly.
pub fn show_size(bytes: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes;
    let mut unit = 0;
    while unit + 1 < units.len() && value != 0 && value % 1024 == 0 {
        value /= 1024;
        unit += 1;
    }
    format!("{value}{}", units[unit])
}

/// Milliseconds as seconds for messages: `0.1`, `60`.
pub fn show_time(ms: u64) -> String {
    let text = format!("{}.{:03}", ms / 1000, ms % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::Opt;

    #[test]
    fn sizes_accept_pgbackrest_units() {
        let cases = [
            ("1048576", Some(1_048_576)),
            ("1MiB", Some(1_048_576)),
            ("1MB", Some(1_048_576)),
            ("1mb", Some(1_048_576)),
            ("16KiB", Some(16_384)),
            ("16KB", Some(16_384)),
            ("4K", Some(4096)),
            ("1GiB", Some(1_073_741_824)),
            ("2g", Some(2_147_483_648)),
            ("1tb", Some(1_099_511_627_776)),
            ("100b", Some(100)),
            ("1.5MB", None),
            ("MB", None),
            ("1 MB", None),
            ("1XB", None),
            ("-1", None),
            ("", None),
            ("99999999999PiB", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), expected, "{text}");
        }
    }

    #[test]
    fn times_are_seconds_with_decimals_kept_as_milliseconds() {
        let cases = [
            ("60", Some(60_000)),
            ("0.1", Some(100)),
            ("1.5", Some(1500)),
            ("2.0005", Some(2000)),
            ("86400", Some(86_400_000)),
            (".5", None),
            ("1.", None),
            ("1s", None),
            ("-1", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_time_ms(text), expected, "{text}");
        }
    }

    #[test]
    fn sizes_and_times_display_for_messages() {
        assert_eq!(show_size(16 * 1024), "16KiB");
        assert_eq!(show_size(64 * 1024 * 1024), "64MiB");
        assert_eq!(show_size(1000), "1000B");
        assert_eq!(show_time(100), "0.1");
        assert_eq!(show_time(86_400_000), "86400");
    }

    fn convert_one(opt: Opt, command: Command, text: &str) -> Result<Value> {
        let def = opt.def();
        convert(def, command, &def.key(1), &[text.to_string()], "").map(|(v, _)| v)
    }

    #[test]
    fn values_are_typed_and_checked() {
        use Command::*;
        #[rustfmt::skip]
        let ok = [
            (Opt::ProcessMax, Backup, "4", Value::Int(4)),
            (Opt::BufferSize, Backup, "16KiB", Value::Int(16_384)),
            (Opt::ArchiveTimeout, Backup, "0.1", Value::TimeMs(100)),
            (Opt::StartFast, Backup, "y", Value::Bool(true)),
            (Opt::PgPath, Backup, "/data/", Value::Text("/data".into())),
            (Opt::PgPath, Backup, "/", Value::Text("/".into())),
            (Opt::Type, Backup, "full", Value::Text("full".into())),
            (Opt::Type, Restore, "immediate", Value::Text("immediate".into())),
            (Opt::CompressLevel, Backup, "-5", Value::Int(-5)),
        ];
        for (opt, command, text, expected) in ok {
            assert_eq!(
                convert_one(opt, command, text).ok(),
                Some(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_option_and_kind() {
        use Command::*;
        use ErrorKind::*;
        #[rustfmt::skip]
        let bad = [
            (Opt::ProcessMax, Backup, "0", OptionInvalidValue, "'0' is out of range for 'process-max' option"),
            (Opt::ProcessMax, Backup, "many", OptionInvalidValue, "'many' is not valid for 'process-max' option"),
            (Opt::BufferSize, Backup, "1KiB", OptionInvalidValue, "'1KiB' is out of range for 'buffer-size' option"),
            (Opt::ArchiveTimeout, Backup, "0.05", OptionInvalidValue, "'0.05' is out of range for 'archive-timeout' option"),
            (Opt::CompressType, Backup, "bz3", OptionInvalidValue, "'bz3' is not valid for 'compress-type' option"),
            (Opt::Type, Backup, "immediate", OptionInvalidValue, "'immediate' is not valid for 'type' option"),
            (Opt::Type, Restore, "full", OptionInvalidValue, "'full' is not valid for 'type' option"),
            (Opt::PgPath, Backup, "data", OptionInvalidValue, "'data' must begin with / for 'pg1-path' option"),
            (Opt::PgPath, Backup, "/a//b", OptionInvalidValue, "'/a//b' cannot contain // for 'pg1-path' option"),
            (Opt::StartFast, Backup, "yes", OptionInvalidValue, "boolean option 'start-fast' must be 'y' or 'n'"),
            (Opt::RecoveryOption, Restore, "nokey", OptionInvalidValue, "key/value 'nokey' not valid for 'recovery-option' option"),
            (Opt::Stanza, Backup, "", OptionInvalidValue, "option 'stanza' must have a value"),
        ];
        for (opt, command, text, kind, message) in bad {
            let err = convert_one(opt, command, text).err();
            assert_eq!(err.as_ref().map(|e| e.kind()), Some(kind), "{text}");
            assert_eq!(err.as_ref().map(|e| e.message()), Some(message));
        }
    }

    #[test]
    fn lists_keep_every_value_in_order() {
        // No option is a list yet; the type is declared for those to come (e.g. exclusions).
        let def = OptionDef {
            kind: Kind::List,
            ..OptionDef::BASE
        };
        let values = vec!["b".to_string(), "a".to_string(), "b".to_string()];
        let converted = convert(&def, Command::Backup, "x", &values, "").map(|(v, _)| v);
        assert_eq!(converted.ok(), Some(Value::List(values)));
    }

    #[test]
    fn enum_hints_list_the_allowed_values_for_the_command() {
        let err = convert_one(Opt::Type, Command::Backup, "xid").err();
        assert_eq!(
            err.as_ref().and_then(|e| e.hint()),
            Some("use one of: full, diff, incr")
        );
        let err = convert_one(Opt::CompressType, Command::Backup, "bz2").err();
        assert_eq!(
            err.as_ref().and_then(|e| e.hint()),
            Some("use one of: none, gz, lz4, zst")
        );
    }
}
