//! pgkeep side by side with pgBackRest 2.45 on one cluster (issue 14): the same commands run
//! by both, comparing exit codes, console lines and JSON. Differences that remain on purpose
//! are listed in docs/compatibility.md; a test that allows one names it.

mod console;
mod errors;
mod flow;
mod info;
mod options;
mod verify;
