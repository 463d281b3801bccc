//! The `--history FILE` of `replay run` and `replay event`: the execution history in AWS's
//! `GetExecutionHistory` shape, its destination checked before anything runs.

use std::path::{Path, PathBuf};

use asl::Outcome;
use serde_json::json;

/// Why the execution history could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("HistoryNotWritten: cannot write the execution history to {}: {source}", path.display())]
    NotWritten { path: PathBuf, source: std::io::Error },
}

/// Refuses, before anything runs, a history path that cannot be written: a folder that does not
/// exist, a path that is a folder, a file that cannot be created or opened for writing. A file it
/// creates to find out is removed again; an existing one is left as it was.
pub fn check_destination(path: &Path) -> Result<(), HistoryError> {
    let refuse = |source| HistoryError::NotWritten { path: path.to_owned(), source };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        let why = format!("no folder {}", folder.display());
        return Err(refuse(std::io::Error::new(std::io::ErrorKind::NotFound, why)));
    }
    if path.is_dir() {
        return Err(refuse(std::io::Error::other("it is a folder; name a file in it")));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map_err(refuse)?;
    if !existed {
        std::fs::remove_file(path).map_err(refuse)?;
    }
    Ok(())
}

/// Writes the history of `outcome` to `path`: `{"events": [...]}`.
pub fn write(path: &Path, outcome: &Outcome) -> Result<(), HistoryError> {
    let refuse = |source| HistoryError::NotWritten { path: path.to_owned(), source };
    let text = serde_json::to_string_pretty(&json!({"events": outcome.history})).map_err(|e| refuse(e.into()))?;
    std::fs::write(path, text).map_err(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("replay-history-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn a_missing_folder_is_refused_by_name() {
        let error = check_destination(Path::new("/no/such/folder/h.json")).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "HistoryNotWritten: cannot write the execution history to /no/such/folder/h.json: no folder /no/such/folder"
        );
    }

    #[test]
    fn a_folder_is_refused() {
        let dir = scratch("folder");
        let error = check_destination(&dir).expect_err("refused");
        assert!(error.to_string().ends_with("it is a folder; name a file in it"), "{error}");
    }

    #[test]
    fn a_writable_path_is_accepted_and_left_as_it_was() {
        let dir = scratch("ok");
        let new = dir.join("new.json");
        let _ = std::fs::remove_file(&new);
        check_destination(&new).expect("a new file in an existing folder");
        assert!(!new.exists(), "the check leaves no file behind");
        let old = dir.join("old.json");
        std::fs::write(&old, "kept").expect("write");
        check_destination(&old).expect("an existing file");
        assert_eq!(std::fs::read_to_string(&old).expect("read"), "kept");
        check_destination(Path::new("history.json")).expect("the current folder");
    }
}
