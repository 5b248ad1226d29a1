//! Resuming an interrupted backup.
//!
//! While a backup copies, its set directory holds `backup.resume`: the backup's identity (type,
//! prior, compression, cluster) and the files already stored, rewritten atomically at most once
//! a second. A later backup of the same type, prior and compression finds it, keeps the label,
//! and reuses each recorded file whose source still has the same size and modification time
//! and whose stored copy still verifies against its checksum; everything else is copied again.
//! Any other unfinished set is removed. Bundled files are never recorded: a bundle is durable
//! only as a whole, so the resumed backup removes the interrupted run's bundles and copies
//! their files again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec, stream};
use crate::repo::manifest::{FileEntry, PG_DATA};
use crate::repo::{BackupInfo, BackupLabel, BackupType, info_file, layout};
use crate::storage::Storage;
use crate::{log_detail, log_info, log_warn};

use super::plan::SourceFile;

/// The name of the progress file inside an unfinished backup set.
const RESUME_FILE: &str = "backup.resume";
/// How often progress is saved.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a backup that can be resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeHeader {
    pub label: String,
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    pub prior: Option<String>,
    pub compress_type: CompressType,
    pub system_id: u64,
    pub pg_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeFile {
    header: ResumeHeader,
    files: Vec<FileEntry>,
}

fn resume_path(stanza: &str, label: &str) -> String {
    format!("{}/{RESUME_FILE}", layout::backup_set_dir(stanza, label))
}

/// Files of an interrupted backup that may be reused.
#[derive(Debug)]
pub struct Resumable {
    pub label: String,
    files: HashMap<String, FileEntry>,
}

impl Resumable {
    /// The stored entry for `file`, when its source is unchanged since it was stored.
    pub fn candidate(&self, file: &SourceFile) -> Option<&FileEntry> {
        let entry = self.files.get(&format!("{PG_DATA}/{}", file.rel))?;
        let unchanged = entry.size == file.info.size && entry.mtime == file.info.mtime;
        if !unchanged {
            log_detail!(
                "resume: {} changed since the interrupted run stored it, copied again",
                entry.name
            );
        }
        (unchanged
            && entry.reference.is_none()
            // A block-incremental file is copied again: its map depends on the prior backup.
            && entry.block.is_none()
            && entry.bundle_id.is_none())
        .then_some(entry)
    }
}

/// Removes unfinished backup sets, except one that `wanted` may resume (returned).
pub fn prepare(
    repo: &dyn Storage,
    stanza: &str,
    info: &BackupInfo,
    wanted: Option<&ResumeHeader>,
) -> Result<Option<Resumable>> {
    let mut found = None;
    let Some(entries) = repo.list(&layout::backup_dir(stanza))? else {
        return Ok(None);
    };
    let mut unfinished: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|name| BackupLabel::parse(name).is_some() && info.find(name).is_none())
        .collect();
    unfinished.sort();
    for label in unfinished {
        if found.is_none()
            && let Some(wanted) = wanted
        {
            match info_file::load::<ResumeFile>(repo, &resume_path(stanza, &label)) {
                Ok(Some(progress)) => {
                    let mut header = progress.header.clone();
                    header.label = wanted.label.clone();
                    if header == *wanted && label_after_latest(&label, info) {
                        log_info!(
                            "resumable backup {label} of same type exists: {} files may be reused",
                            progress.files.len()
                        );
                        found = Some(Resumable {
                            label: label.clone(),
                            files: progress
                                .files
                                .into_iter()
                                .map(|f| (f.name.clone(), f))
                                .collect(),
                        });
                        continue;
                    }
                    log_warn!(
                        "backup {label} cannot be resumed (type, prior or compression differ): removing it"
                    );
                }
                Ok(None) => {
                    log_warn!("remove unfinished backup set '{label}' left by an earlier run")
                }
                Err(err) => log_warn!("remove unfinished backup set '{label}': {}", err.message()),
            }
        } else {
            log_warn!("remove unfinished backup set '{label}' left by an earlier run");
        }
        repo.remove_dir(&layout::backup_set_dir(stanza, &label))?;
    }
    Ok(found)
}

fn label_after_latest(label: &str, info: &BackupInfo) -> bool {
    let stamp = |l: &str| BackupLabel::parse(l).map(|l| l.stamp).unwrap_or_default();
    info.latest()
        .is_none_or(|latest| stamp(label) > stamp(&latest.label))
}

/// Checks that the stored copy of `entry` still holds the content it was stored with.
pub fn verify_stored(
    repo: &dyn Storage,
    stanza: &str,
    label: &str,
    entry: &FileEntry,
    compress: CompressType,
    buffer_size: usize,
) -> Result<bool> {
    let path = layout::backup_file(stanza, label, &entry.name, compress.extension());
    let Some(mut reader) = repo.open_read(&path)? else {
        return Ok(false);
    };
    let mut specs = Vec::new();
    if compress != CompressType::None {
        specs.push(FilterSpec::Decompress { kind: compress });
    }
    specs.push(FilterSpec::Size);
    specs.push(FilterSpec::Hash);
    let Ok(results) = stream::copy_through(
        &mut reader,
        &mut FilterChain::from_specs(&specs)?,
        &mut std::io::sink(),
        buffer_size,
    ) else {
        return Ok(false);
    };
    Ok(
        matches!(results.as_slice(), [.., FilterResult::Size(size), FilterResult::Hash(hash)] if *size == entry.size && *hash == entry.checksum),
    )
}

/// Records stored files and saves them for a later resume, at most once per interval.
pub struct Progress<'a> {
    repo: &'a dyn Storage,
    stanza: &'a str,
    state: Mutex<(ResumeFile, Instant)>,
}

impl<'a> Progress<'a> {
    /// Starts recording; saves the header at once so even an early interruption is resumable.
    pub fn start(
        repo: &'a dyn Storage,
        stanza: &'a str,
        header: ResumeHeader,
    ) -> Result<Progress<'a>> {
        let file = ResumeFile {
            header,
            files: Vec::new(),
        };
        info_file::save(repo, &resume_path(stanza, &file.header.label), &file)?;
        Ok(Progress {
            repo,
            stanza,
            state: Mutex::new((file, Instant::now())),
        })
    }

    /// Records one stored file. A failure to save progress only costs resumability.
    pub fn record(&self, entry: &FileEntry) {
        let Ok(mut guard) = self.state.lock() else {
            return;
        };
        let (file, saved) = &mut *guard;
        file.files.push(entry.clone());
        if saved.elapsed() >= SAVE_INTERVAL {
            if let Err(err) = info_file::save(
                self.repo,
                &resume_path(self.stanza, &file.header.label),
                file,
            ) {
                log_warn!("unable to save backup progress: {}", err.message());
            }
            *saved = Instant::now();
        }
    }

    /// Removes the progress file once the manifest is saved.
    pub fn finish(self, label: &str) -> Result<()> {
        let path = resume_path(self.stanza, label);
        self.repo.remove(&path)?;
        self.repo.remove(&format!("{path}{}", layout::COPY_EXT))
    }
}
