//! The layer rules of DESIGN.md ("Layers"), held by reading the source: each top-level module
//! of `src/` may name only the crate modules its row of [`LAYERS`] lists, and nothing below
//! `command` reads the environment or the wall clock, or prints. Needs no cluster.
//!
//! The check reads `crate::<module>` paths (in `use` lists too) and `super::` paths that climb
//! out of a top-level module, in code with comments, string literals and test code taken out:
//! files named `*tests.rs`, `tests/` folders, and the item after each `#[cfg(test)]` (a
//! `mod x;` there leaves out x's file). Every violation is listed, `file:line: rule`, in one
//! failure message.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the crate modules it may use. A module not listed here
/// fails the test: a new module takes its place in the table (and in DESIGN.md) first.
const LAYERS: &[(&str, &[&str])] = &[
    ("error", &[]),
    // Process locks and stop files: beside `error` at the bottom.
    ("lock", &["error"]),
    // The log file is created with `lock::FILE_MODE`: log and lock files share one mode.
    ("log", &["error", "lock"]),
    ("io", &["error"]),
    ("protocol", &["io", "error", "log"]),
    // `protocol` for the remote driver only (see `PROTOCOL_USERS`).
    ("storage", &["protocol", "io", "error", "log"]),
    // `protocol` for the remote SQL session only (see `PROTOCOL_USERS`).
    ("pg", &["protocol", "storage", "io", "error", "log"]),
    ("repo", &["storage", "io", "pg", "error", "log"]),
    ("config", &["error", "log"]),
    ("exec", &["error", "log"]),
    (
        "command",
        &[
            "error", "lock", "log", "io", "protocol", "storage", "pg", "repo", "config", "exec",
        ],
    ),
];

/// Below `command`, the only files that may use `crate::protocol`: the far side of a
/// connection is reached by the remote storage driver and the remote SQL session, nothing else.
const PROTOCOL_USERS: &[&str] = &["storage/remote/", "pg/remote/"];

/// Files (relative to `src/`) allowed to break a rule of [`BELOW_COMMAND`] for now, with why.
const ALLOWED: &[(&str, Rule, &str)] = &[];

/// What nothing below `command` may do, and the code that does it. `Instant::now` is not
/// here: a monotonic clock for timeouts (lock waits, protocol reads) decides nothing a user
/// sees as a time, whereas wall-clock time must be passed in (`now`) so it is testable.
const BELOW_COMMAND: &[(Rule, &[&str])] = &[
    (Rule::Environment, &["env::var", "env::args"]),
    (
        Rule::Clock,
        &[
            "SystemTime::now",
            "Timestamp::now",
            "Zoned::now",
            "ZonedDateTime::now",
        ],
    ),
    (
        Rule::Prints,
        &[
            "println!",
            "print!",
            "eprintln!",
            "eprint!",
            "dbg!",
            "io::stdout",
            "io::stderr",
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Environment,
    Clock,
    Prints,
}

impl Rule {
    fn describe(self) -> &'static str {
        match self {
            Rule::Environment => "reads the environment below command",
            Rule::Clock => "reads the wall clock below command (pass `now` in)",
            Rule::Prints => "prints below command (log, or return the text)",
        }
    }
}

/// Where the rules of [`BELOW_COMMAND`] do not apply: `command`, the binary, `config` (which
/// turns the environment into `Config`) and `log` (which owns the console).
fn above_the_rules(rel: &str) -> bool {
    rel.starts_with("command/") || rel.starts_with("config/") || rel == "main.rs" || rel == "log.rs"
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut test_files = BTreeSet::new();
    let mut sources = Vec::new();
    for path in &files {
        let rel = relative(&src, path);
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let (code, test_modules) = without_tests(&code_only(&text));
        for module in test_modules {
            test_files.extend(module_files(&rel, &module));
        }
        sources.push((rel, code));
    }
    for (rel, code) in &sources {
        let is_test_file = rel.ends_with("tests.rs")
            || rel.split('/').any(|part| part == "tests")
            || test_files.iter().any(|t| rel == t || rel.starts_with(t));
        if is_test_file || rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        check_file(rel, code, &mut violations);
    }
    assert!(
        violations.is_empty(),
        "{} layering violations (tests/integration/layering.rs holds DESIGN.md's layers):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// Command modules (a file or folder per command under `src/command/`) do not use each other:
/// what two commands share lives in `command/open.rs`, `command/cluster.rs`, `command/mod.rs`
/// or a lower layer.
#[test]
fn no_command_module_uses_another() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let command_dir = src.join("command");
    let shared = ["mod", "open", "cluster"];
    let commands: BTreeSet<String> = std::fs::read_dir(&command_dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            path.file_stem().unwrap().to_string_lossy().to_string()
        })
        .filter(|stem| !shared.contains(&stem.as_str()))
        .collect();
    assert!(commands.contains("backup") && commands.contains("archive"));
    let mut files = Vec::new();
    rust_files(&command_dir, &mut files);
    let mut violations = Vec::new();
    for path in &files {
        let rel = relative(&src, path);
        // command/<own>.rs or command/<own>/...
        let own = rel.split('/').nth(1).unwrap_or("").trim_end_matches(".rs");
        if shared.contains(&own) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let (code, _) = without_tests(&code_only(&text));
        let mut used: Vec<(usize, String)> = Vec::new();
        for offset in tokens(&code, "crate::command::") {
            let rest = &code[offset + "crate::command::".len()..];
            used.extend(heads(rest).into_iter().map(|name| (offset, name)));
        }
        // As many `super::` as the file is deep below `command` reach `command` itself.
        let depth = rel.trim_end_matches("/mod.rs").split('/').count() - 1;
        for offset in tokens(&code, "super::") {
            if code[..offset].trim_end().ends_with("super::") {
                continue;
            }
            let mut rest = &code[offset..];
            let mut supers = 0;
            while let Some(after) = rest.strip_prefix("super::") {
                supers += 1;
                rest = after.trim_start();
            }
            if supers == depth {
                used.extend(heads(rest).into_iter().map(|name| (offset, name)));
            }
        }
        for (offset, name) in used {
            if name != own && commands.contains(&name) {
                violations.push(format!(
                    "src/{rel}:{}: command '{own}' uses command '{name}'",
                    line_of(&code, offset)
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{} uses of one command by another:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

fn check_file(rel: &str, code: &str, violations: &mut Vec<String>) {
    let top = rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs");
    let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == top) else {
        violations.push(format!(
            "src/{rel}:1: module '{top}' is not in the layer table"
        ));
        return;
    };
    for (offset, used) in crate_paths(rel, code) {
        let line = line_of(code, offset);
        // Items at the crate root (`crate::VERSION`) belong to no layer: every module may
        // name them. Modules are lowercase, constants and types are not.
        if used == top
            || used == "self"
            || used == "*"
            || used.starts_with(|c: char| c.is_ascii_uppercase())
        {
            continue;
        }
        // `#[macro_export]` macros of `log` are named at the crate root.
        let used = if used.starts_with("log_") {
            "log"
        } else {
            used.as_str()
        };
        if used == top {
            continue;
        }
        if used == "config" && !allowed.contains(&used) {
            violations.push(format!(
                "src/{rel}:{line}: '{top}' uses crate::config (nothing below command reads Config)"
            ));
        } else if !allowed.contains(&used) {
            violations.push(format!(
                "src/{rel}:{line}: '{top}' uses crate::{used}, not in its layer ({})",
                allowed.join(", ")
            ));
        } else if used == "protocol"
            && top != "command"
            && !PROTOCOL_USERS.iter().any(|p| rel.starts_with(p))
        {
            violations.push(format!(
                "src/{rel}:{line}: uses crate::protocol outside the remote driver and session ({})",
                PROTOCOL_USERS.join(", ")
            ));
        }
    }
    if above_the_rules(rel) {
        return;
    }
    for (rule, patterns) in BELOW_COMMAND {
        if ALLOWED.iter().any(|(file, r, _)| *file == rel && r == rule) {
            continue;
        }
        for pattern in *patterns {
            for offset in tokens(code, pattern) {
                violations.push(format!(
                    "src/{rel}:{}: {} ({pattern})",
                    line_of(code, offset),
                    rule.describe()
                ));
            }
        }
    }
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn relative(src: &Path, path: &Path) -> String {
    path.strip_prefix(src)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn line_of(code: &str, offset: usize) -> usize {
    code[..offset].matches('\n').count() + 1
}

/// Offsets of `pattern` in `code` where it starts a token (not the tail of a longer name:
/// `print!` is not found inside `eprint!`).
fn tokens(code: &str, pattern: &str) -> Vec<usize> {
    code.match_indices(pattern)
        .map(|(offset, _)| offset)
        .filter(|&offset| {
            !code[..offset]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .collect()
}

/// The crate module each path names, with its offset: `crate::x`, each first name of
/// `crate::{x, y::z}`, and `super::` chains long enough to leave the file's top-level module.
fn crate_paths(rel: &str, code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for offset in tokens(code, "crate::") {
        // `$crate::` in a macro is the same path.
        let rest = &code[offset + "crate::".len()..];
        found.extend(heads(rest).into_iter().map(|name| (offset, name)));
    }
    // A file's module is as deep as its path (`pg/page/mod.rs` is `pg::page`): that many
    // `super::` reach the crate root.
    let depth = rel.trim_end_matches("/mod.rs").split('/').count();
    for offset in tokens(code, "super::") {
        let mut rest = &code[offset..];
        let mut supers = 0;
        while let Some(after) = rest.strip_prefix("super::") {
            supers += 1;
            rest = after.trim_start();
        }
        // Count each chain once, at its first `super::`.
        if code[..offset].trim_end().ends_with("super::") {
            continue;
        }
        if supers >= depth {
            found.push((offset, first_name(rest)));
        }
    }
    found
}

/// The first names a path continues with: `a` for `a::b`, `a` and `b` for `{a, b::c}`.
fn heads(rest: &str) -> Vec<String> {
    let Some(group) = rest.strip_prefix('{') else {
        return vec![first_name(rest)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && (c.is_alphanumeric() || c == '_' || c == '*') => {
                start = false;
                names.push(first_name(&group[i..]));
            }
            _ => {}
        }
    }
    names
}

fn first_name(text: &str) -> String {
    if text.starts_with('*') {
        return "*".to_string();
    }
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `text` with comments, string and character literals blanked (newlines kept, so offsets
/// still give line numbers).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, slice: &[char]| {
        for &c in slice {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p);
            blank(&mut out, &chars[i..end]);
            i = end;
        } else if c == '/' && next == Some('*') {
            // Block comments nest.
            let mut depth = 0;
            let mut end = i;
            while end < chars.len() {
                if chars[end] == '/' && chars.get(end + 1) == Some(&'*') {
                    depth += 1;
                    end += 2;
                } else if chars[end] == '*' && chars.get(end + 1) == Some(&'/') {
                    depth -= 1;
                    end += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    end += 1;
                }
            }
            blank(&mut out, &chars[i..end.min(chars.len())]);
            i = end;
        } else if let Some(end) = raw_string_at(&chars, i) {
            blank(&mut out, &chars[i..end]);
            i = end;
        } else if c == '"' {
            let mut end = i + 1;
            while end < chars.len() && chars[end] != '"' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            out.push('"');
            blank(&mut out, &chars[i + 1..end.min(chars.len())]);
            out.push('"');
            i = end + 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or else a lifetime.
            let end = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|p| i + 2 + p + 1)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, &chars[i..end]);
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// When a raw string (`r"..."`, `r#"..."#`, `br"..."`) starts at `at`, where it ends (one past
/// its closing quote and `#`s).
fn raw_string_at(chars: &[char], at: usize) -> Option<usize> {
    if chars[at] != 'r' {
        return None;
    }
    // `r` ends no longer name, except the `b` of a byte string.
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let before = at.checked_sub(1).map(|i| chars[i]);
    let before_that = at.checked_sub(2).map(|i| chars[i]);
    if ident(before) && (before != Some('b') || ident(before_that)) {
        return None;
    }
    let at = at + 1;
    let hashes = chars[at..].iter().take_while(|&&c| c == '#').count();
    if chars.get(at + hashes) != Some(&'"') {
        return None;
    }
    let mut i = at + hashes + 1;
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(chars.len())
}

/// `code` with each item after `#[cfg(test)]` blanked, and the names of modules declared
/// there without a body (`mod fixture;`), whose files are test code too.
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut bytes = code.as_bytes().to_vec();
    let mut modules = Vec::new();
    let marker = "#[cfg(test)]";
    let mut from = 0;
    while let Some(found) = code[from..].find(marker) {
        let start = from + found;
        let mut i = start + marker.len();
        // Past further attributes, to the item's `;` or its body's closing brace.
        let mut depth = 0usize;
        let mut end = code.len();
        let mut in_attribute = 0usize;
        while i < code.len() {
            match code.as_bytes()[i] {
                b'#' if depth == 0 && in_attribute == 0 => {}
                b'[' if depth == 0 => in_attribute += 1,
                b']' if depth == 0 && in_attribute > 0 => in_attribute -= 1,
                b';' if depth == 0 && in_attribute == 0 => {
                    end = i + 1;
                    break;
                }
                b'{' if in_attribute == 0 => depth += 1,
                b'}' if in_attribute == 0 => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let item = &code[start + marker.len()..end];
        if item.trim_end().ends_with(';') && !item.contains('{') {
            let words: Vec<&str> = item
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            if let Some(at) = words.iter().position(|w| *w == "mod")
                && let Some(name) = words.get(at + 1)
            {
                modules.push((*name).to_string());
            }
        }
        for b in &mut bytes[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    // Only ASCII bytes were replaced, by ASCII spaces: still UTF-8.
    let text = String::from_utf8(bytes).unwrap_or_else(|_| code.to_string());
    (text, modules)
}

/// The files (or folder prefixes) module `name`, declared in `rel`, may live in.
fn module_files(rel: &str, name: &str) -> Vec<String> {
    let dir = match rel.rsplit_once('/') {
        Some((dir, "mod.rs")) => format!("{dir}/"),
        Some((dir, file)) => format!("{dir}/{}/", file.trim_end_matches(".rs")),
        None if rel == "lib.rs" || rel == "main.rs" => String::new(),
        None => format!("{}/", rel.trim_end_matches(".rs")),
    };
    vec![format!("{dir}{name}.rs"), format!("{dir}{name}/")]
}

#[test]
fn the_scanner_sees_paths_and_ignores_comments_strings_and_tests() {
    let code = code_only(
        "use crate::{error::Error, io::{Filter, stream}};\n\
         // crate::config in a comment\n\
         let s = \"crate::config in a string\"; let c = '\"'; let r = r#\"crate::exec\"#;\n\
         fn f<'a>(x: &'a str) { crate::pg::wal::x(); super::super::repo::y(); }\n\
         #[cfg(test)]\n\
         mod tests { use crate::config; }\n\
         #[cfg(test)]\n\
         #[path = \"x_tests.rs\"]\n\
         mod fixture;\n\
         eprintln!(); println!();\n",
    );
    let (code, modules) = without_tests(&code);
    let names = |rel: &str| -> Vec<String> {
        crate_paths(rel, &code)
            .into_iter()
            .map(|(_, name)| name)
            .collect()
    };
    // `super::super::` from `storage::posix` is the crate root; from `storage::posix::file`,
    // `storage`.
    assert_eq!(names("storage/posix/mod.rs"), ["error", "io", "pg", "repo"]);
    assert_eq!(names("storage/posix/file.rs"), ["error", "io", "pg"]);
    assert_eq!(modules, ["fixture"]);
    assert_eq!(tokens(&code, "print!").len(), 0);
    assert_eq!(tokens(&code, "eprintln!").len(), 1);
    assert_eq!(line_of(&code, tokens(&code, "println!")[0]), 10);
    assert_eq!(
        module_files("command/restore/mod.rs", "fixture"),
        ["command/restore/fixture.rs", "command/restore/fixture/"]
    );
}

/// No function in `src/command` is over 150 lines: a command that grows is split into named
/// phases (backup: prepare, copy, finish; restore: plan, write, recover), not lengthened.
#[test]
fn command_functions_stay_under_150_lines() {
    const MAX_LINES: usize = 150;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("command"), &mut files);
    let mut long = Vec::new();
    for path in &files {
        let rel = relative(&src, path);
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut open: Option<(usize, usize, String)> = None;
        for (index, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let signature = trimmed
                .strip_prefix("pub ")
                .or_else(|| trimmed.strip_prefix("pub(crate) "))
                .or_else(|| trimmed.strip_prefix("pub(super) "))
                .unwrap_or(trimmed);
            if open.is_none()
                && let Some(name) = signature.strip_prefix("fn ")
            {
                open = Some((index, indent, first_name(name)));
            } else if let Some((start, fn_indent, name)) = &open
                && indent == *fn_indent
                && trimmed == "}"
            {
                let length = index - start + 1;
                if length > MAX_LINES {
                    long.push(format!(
                        "src/{rel}:{}: fn {name} is {length} lines",
                        start + 1
                    ));
                }
                open = None;
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines in src/command:\n{}",
        long.join("\n")
    );
}
