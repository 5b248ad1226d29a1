//! Which files of a backup go into bundles, how they are grouped, and writing one bundle.
//!
//! [`destination`] is the single dispatch point that picks how a file is stored (a repository
//! file of its own, or a bundle); other storage kinds take their place in it. Bundled files are
//! grouped, in path order, into batches of about `repo1-bundle-size` bytes (before compression,
//! as pgBackRest counts); one batch is one job of the worker pool and one bundle, so each
//! worker writes its own bundle sequentially and workers never share one. A bundle is written
//! under a temp name, fsynced and renamed when its batch is done (its directory is synced once
//! at the end of the backup, like the other directories of the set); a batch whose files are
//! all unchanged or gone writes nothing. The layout is `repo::bundle`'s.

use std::io::Write;

use crate::error::Result;
use crate::repo::bundle;
use crate::storage::{Storage, StorageWrite, WriteOptions};

use super::plan::{Action, SourceFile};
use super::work::Item;

/// The `repo1-bundle*` options.
#[derive(Debug, Clone, Copy)]
pub struct BundleOptions {
    pub enabled: bool,
    /// Target size of a batch, in bytes of original content.
    pub size: u64,
    /// Files smaller than this are bundled.
    pub limit: u64,
    /// Block-incremental storage is on (`repo1-block`): the relation files it stores block by
    /// block keep their own objects and maps whatever the bundle limit.
    pub block: bool,
}

/// How a file's content is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// A repository file of its own, `pg_data/<path>[.<ext>]`.
    Object,
    /// Inside a bundle.
    Bundle,
}

/// Picks the destination of `file` (the size at listing time decides: a file that grows
/// during the backup stays where it was put).
pub fn destination(options: &BundleOptions, file: &SourceFile) -> Destination {
    if options.enabled
        && file.info.size < options.limit
        && !(options.block && super::block::eligible(&file.rel, file.info.size))
    {
        Destination::Bundle
    } else {
        Destination::Object
    }
}

/// One job of the copy pool.
pub enum Job {
    /// Boxed: a batch job is much smaller than one item.
    One(Box<Item>),
    /// A batch of small files for bundle `id`.
    Bundle(u64, Vec<Item>),
}

/// Turns the planned files (in the order they should run, largest first) into jobs: objects
/// first in the given order, then the bundle batches, then the files only referenced from the
/// prior backup (nothing to copy, so they need no bundle).
pub fn jobs(options: &BundleOptions, items: Vec<Item>) -> Vec<Job> {
    let mut objects = Vec::new();
    let mut bundled = Vec::new();
    let mut referenced = Vec::new();
    for item in items {
        if matches!(item.action, Action::Reference(_)) {
            referenced.push(Job::One(Box::new(item)));
        } else if destination(options, &item.file) == Destination::Bundle {
            bundled.push(item);
        } else {
            objects.push(Job::One(Box::new(item)));
        }
    }
    // Path order keeps a relation's forks and a database's files together.
    bundled.sort_by(|a, b| a.file.rel.cmp(&b.file.rel));
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut batch_size = 0u64;
    for item in bundled {
        batch_size += item.file.info.size;
        batch.push(item);
        if batch_size >= options.size {
            batches.push(std::mem::take(&mut batch));
            batch_size = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    objects.extend(
        batches
            .into_iter()
            .zip(1u64..)
            .map(|(batch, id)| Job::Bundle(id, batch)),
    );
    objects.extend(referenced);
    objects
}

/// A bundle being written: opened on its first byte, so an empty batch leaves nothing.
pub struct OpenBundle<'a> {
    repo: &'a dyn Storage,
    path: String,
    pub id: u64,
    writer: Option<Box<dyn StorageWrite>>,
    /// Bytes written so far: the offset of the next file.
    pub offset: u64,
}

impl<'a> OpenBundle<'a> {
    pub fn new(repo: &'a dyn Storage, stanza: &str, label: &str, id: u64) -> OpenBundle<'a> {
        OpenBundle {
            repo,
            path: bundle::bundle_path(stanza, label, id),
            id,
            writer: None,
            offset: 0,
        }
    }

    /// Makes the bundle visible under its final name, durably, if anything was written.
    pub fn commit(self) -> Result<()> {
        match self.writer {
            Some(writer) => writer.commit(),
            None => Ok(()),
        }
    }
}

impl Write for OpenBundle<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.writer.is_none() {
            let options = WriteOptions::in_prepared_dir();
            let writer = self
                .repo
                .open_write(&self.path, &options)
                .map_err(crate::io::stream::to_io_error)?;
            self.writer = Some(writer);
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(std::io::Error::other("bundle writer is not open"));
        };
        let written = writer.write(bytes)?;
        self.offset += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::backup::work::Owner;
    use crate::storage::{FileInfo, FileType};

    fn item(rel: &str, size: u64, action: Action) -> Item {
        let info = FileInfo {
            name: rel.into(),
            file_type: FileType::File,
            size,
            mtime: 0,
            mode: 0o600,
            uid: 0,
            gid: 0,
            link_target: None,
        };
        let file = SourceFile {
            rel: rel.into(),
            info,
        };
        Item {
            file,
            action,
            owner: Owner::default(),
        }
    }

    fn describe(jobs: &[Job]) -> Vec<String> {
        jobs.iter()
            .map(|job| match job {
                Job::One(item) => item.file.rel.clone(),
                Job::Bundle(id, items) => format!(
                    "{id}:{}",
                    items
                        .iter()
                        .map(|i| i.file.rel.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            })
            .collect()
    }

    #[test]
    fn small_files_are_batched_in_path_order_after_the_large_ones() {
        let options = BundleOptions {
            enabled: true,
            size: 100,
            limit: 50,
            block: false,
        };
        let reference = Action::Reference(crate::repo::manifest::FileEntry {
            name: "pg_data/kept".into(),
            size: 10,
            mtime: 0,
            mode: 0o600,
            user: None,
            group: None,
            checksum: String::new(),
            repo_size: 9,
            reference: Some("F".into()),
            page_errors: None,
            block: None,
            bundle_id: Some(1),
            bundle_offset: Some(0),
        });
        let items = vec![
            item("big", 500, Action::Copy),
            item("d", 40, Action::Copy),
            item("limit", 50, Action::Copy),
            item("c", 40, Action::Copy),
            item("b", 30, Action::Copy),
            item("kept", 10, reference),
            item("a", 0, Action::Copy),
            item("e", 1, Action::Copy),
        ];
        assert_eq!(
            describe(&jobs(&options, items)),
            ["big", "limit", "1:a,b,c,d", "2:e", "kept"]
        );
    }

    #[test]
    fn without_bundling_every_file_is_an_object() {
        let options = BundleOptions {
            enabled: false,
            size: 100,
            limit: 50,
            block: false,
        };
        let items = vec![item("a", 1, Action::Copy), item("b", 0, Action::Copy)];
        assert_eq!(describe(&jobs(&options, items)), ["a", "b"]);
    }

    #[test]
    fn a_bundle_appears_only_once_committed_and_only_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::storage::PosixStorage::new(dir.path().to_path_buf());
        repo.create_dir("backup/s/L/bundle", 0o750).unwrap();
        OpenBundle::new(&repo, "s", "L", 1).commit().unwrap();
        assert!(!repo.exists("backup/s/L/bundle/1").unwrap());
        let mut open = OpenBundle::new(&repo, "s", "L", 2);
        open.write_all(b"abc").unwrap();
        open.write_all(b"de").unwrap();
        assert_eq!(open.offset, 5);
        assert!(!repo.exists("backup/s/L/bundle/2").unwrap());
        open.commit().unwrap();
        assert_eq!(
            repo.read_all("backup/s/L/bundle/2").unwrap().unwrap(),
            b"abcde"
        );
    }
}
