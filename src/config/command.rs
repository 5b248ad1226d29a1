//! The commands pgkeep knows: their names, one-line summaries and help descriptions.
//!
//! Like the option table, this is data: adding a command is a new `Command` variant, a row in
//! [`COMMANDS`] and the command's name in the rules of the options it accepts
//! (src/config/options.rs). What a command does lives in src/command/, not here.

use std::fmt;

/// A pgkeep command, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    ArchiveGet,
    ArchivePush,
    Backup,
    Check,
    Expire,
    Help,
    Info,
    Restore,
    StanzaCreate,
    StanzaDelete,
    StanzaUpgrade,
    Start,
    Stop,
    Verify,
    Version,
}

/// One row of the command table.
#[derive(Debug)]
pub struct CommandDef {
    pub command: Command,
    pub name: &'static str,
    /// Positional parameters as shown in usage, empty when the command takes none.
    pub params: &'static str,
    /// One line for the command list.
    pub summary: &'static str,
    /// A paragraph for `pgkeep help <command>`.
    pub description: &'static str,
}

/// Every command, in `Command` order, which is alphabetical (the order `help` lists them).
pub static COMMANDS: &[CommandDef] = &[
    CommandDef {
        command: Command::ArchiveGet,
        name: "archive-get",
        params: "<WAL segment> <destination>",
        summary: "Get a WAL segment from the archive.",
        description: "Meant to be called by PostgreSQL as its restore_command, as in \
            restore_command = 'pgkeep --stanza=main archive-get %f \"%p\"'. The segment named by \
            the first parameter is found in the archive of the stanza, decompressed and written \
            to the path given by the second. A segment that is not in the archive is not an \
            error: PostgreSQL asks for segments that may not exist yet.",
    },
    CommandDef {
        command: Command::ArchivePush,
        name: "archive-push",
        params: "<WAL segment path>",
        summary: "Push a WAL segment to the archive.",
        description: "Meant to be called by PostgreSQL as its archive_command, as in \
            archive_command = 'pgkeep --stanza=main archive-push %p'. The segment is compressed \
            and stored in the archive of the stanza. Pushing a segment that is already archived \
            with the same content succeeds; with different content it fails.",
    },
    CommandDef {
        command: Command::Backup,
        name: "backup",
        params: "",
        summary: "Backup a database cluster.",
        description: "Copies the data directory of a running cluster to the repository while \
            PostgreSQL keeps working. A full backup copies every file; a differential backup \
            copies what changed since the last full backup; an incremental backup copies what \
            changed since the last backup of any type. When no full backup exists, a full backup \
            is taken whatever type was asked for.",
    },
    CommandDef {
        command: Command::Check,
        name: "check",
        params: "",
        summary: "Check the configuration.",
        description: "Confirms that the stanza is configured end to end: pgkeep connects to the \
            cluster, checks that pg1-path is its data directory, that archive_mode is on and \
            archive_command is set, and that the repository's stanza matches the cluster. It then \
            forces a WAL switch and waits (up to archive-timeout) until the switched segment \
            reaches the archive.",
    },
    CommandDef {
        command: Command::Expire,
        name: "expire",
        params: "",
        summary: "Expire backups that exceed retention.",
        description: "Removes the backups that the retention options (repo1-retention-full, \
            repo1-retention-diff) no longer keep, with the differential and incremental backups \
            that depend on them, and the archived WAL that no remaining backup needs \
            (repo1-retention-archive). Runs after every successful backup; --set expires one \
            backup and its dependents; --dry-run only shows what would be removed.",
    },
    CommandDef {
        command: Command::Help,
        name: "help",
        params: "[<command> [<option>]]",
        summary: "Get help.",
        description: "Shows the list of commands, the options of a command, or the full \
            description of one option of a command.",
    },
    CommandDef {
        command: Command::Info,
        name: "info",
        params: "",
        summary: "Retrieve information about backups.",
        description: "Lists the stanzas in the repository with their backups and the range of \
            archived WAL, as text or as JSON. With --stanza, only that stanza is shown; with \
            --set, the details of one backup.",
    },
    CommandDef {
        command: Command::Restore,
        name: "restore",
        params: "",
        summary: "Restore a database cluster.",
        description: "Restores a backup into the data directory of a stopped cluster and writes \
            the recovery settings that make PostgreSQL fetch archived WAL with archive-get. By \
            default the latest backup is restored and recovery runs to the end of the archive. \
            The data directory must be empty unless --delta or --force is given.",
    },
    CommandDef {
        command: Command::StanzaCreate,
        name: "stanza-create",
        params: "",
        summary: "Create the required stanza data.",
        description: "Creates the archive and backup directories of a stanza in the repository \
            and records the system identifier and version of its cluster. Must run once before \
            archive-push or backup; running it again for the same cluster succeeds.",
    },
    CommandDef {
        command: Command::StanzaDelete,
        name: "stanza-delete",
        params: "",
        summary: "Delete a stanza.",
        description: "Removes every backup and all archived WAL of a stanza from the repository. \
            Refused unless the stanza was stopped first (pgkeep --stanza=<stanza> stop), and \
            while the cluster at pg1-path is running unless --force is given. The stop file is \
            kept: run start before creating the stanza again.",
    },
    CommandDef {
        command: Command::StanzaUpgrade,
        name: "stanza-upgrade",
        params: "",
        summary: "Upgrade a stanza.",
        description: "After a major-version upgrade of the cluster (pg_upgrade), records the \
            new version and system identifier in the stanza: new WAL is archived under a new \
            archive id (e.g. 17-2), the next backup is a full one, and backups of the old \
            version stay listed and restorable with the old version's binaries. Running it \
            again when the stanza is up to date succeeds.",
    },
    CommandDef {
        command: Command::Start,
        name: "start",
        params: "",
        summary: "Allow pgkeep processes to run.",
        description: "Removes the stop file written by the stop command, for one stanza (with \
            --stanza) or for all stanzas.",
    },
    CommandDef {
        command: Command::Stop,
        name: "stop",
        params: "",
        summary: "Stop pgkeep processes from running.",
        description: "Writes a stop file that makes new pgkeep commands fail, for one stanza \
            (with --stanza) or for all stanzas. With --force, running processes are terminated \
            too. Use the start command to undo.",
    },
    CommandDef {
        command: Command::Verify,
        name: "verify",
        params: "",
        summary: "Verify contents of the repository.",
        description: "Reads the repository and checks every backup file against the size and \
            checksum in its manifest, every archived WAL file against the checksum in its name, \
            the info files and manifests against their copies, and that the WAL each backup \
            needs to be consistent is in the archive. Reports each backup as valid or invalid \
            and fails when anything is invalid. With --set, only that backup and its WAL.",
    },
    CommandDef {
        command: Command::Version,
        name: "version",
        params: "",
        summary: "Get version.",
        description: "Shows the version of pgkeep.",
    },
];

impl Command {
    /// Every command, in alphabetical order.
    pub fn all() -> impl Iterator<Item = Command> {
        COMMANDS.iter().map(|def| def.command)
    }

    /// The command named `name` on the command line, if there is one.
    pub fn parse(name: &str) -> Option<Command> {
        COMMANDS
            .iter()
            .find(|def| def.name == name)
            .map(|def| def.command)
    }

    /// The command's row in [`COMMANDS`].
    pub fn def(self) -> &'static CommandDef {
        // The table is in `Command` order: `every_command_has_exactly_one_row` checks it.
        &COMMANDS[self as usize]
    }

    /// The name as typed on the command line, e.g. `stanza-create`.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn summary(self) -> &'static str {
        self.def().summary
    }

    pub fn description(self) -> &'static str {
        self.def().description
    }

    /// True when the command accepts positional parameters.
    pub fn takes_params(self) -> bool {
        !self.def().params.is_empty()
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_exactly_one_row() {
        let all = [
            Command::ArchiveGet,
            Command::ArchivePush,
            Command::Backup,
            Command::Check,
            Command::Expire,
            Command::Help,
            Command::Info,
            Command::Restore,
            Command::StanzaCreate,
            Command::StanzaDelete,
            Command::StanzaUpgrade,
            Command::Start,
            Command::Stop,
            Command::Verify,
            Command::Version,
        ];
        assert_eq!(COMMANDS.len(), all.len());
        for (position, def) in COMMANDS.iter().enumerate() {
            assert_eq!(def.command as usize, position, "{}", def.name);
        }
        for command in all {
            assert_eq!(
                COMMANDS.iter().filter(|d| d.command == command).count(),
                1,
                "{command:?}"
            );
            assert_eq!(Command::parse(command.name()), Some(command));
        }
    }

    #[test]
    fn table_is_sorted_by_name() {
        let names: Vec<&str> = COMMANDS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn unknown_names_do_not_parse() {
        assert_eq!(Command::parse("backups"), None);
        assert_eq!(Command::parse(""), None);
        assert_eq!(Command::parse("stanza-create"), Some(Command::StanzaCreate));
        assert_eq!(Command::parse("stanza-delete"), Some(Command::StanzaDelete));
        assert_eq!(Command::parse("check"), Some(Command::Check));
        assert_eq!(Command::parse("verify"), Some(Command::Verify));
    }
}
