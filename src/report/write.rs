//! Writing the report file: refused when DuckDB's `enable_external_access`
//! is false, and atomic (a temporary file in the target's directory, then a
//! rename), so a reader never sees a half-written report and an error
//! leaves any earlier report in place.

use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` atomically; returns the bytes written.
pub fn write_atomically(path: &str, external_access: bool, contents: &[u8]) -> Result<u64> {
    if !external_access {
        return Err(crate::error::host(
            "writing files is disabled (enable_external_access is false), \
             run the report in a session that allows file access",
        ));
    }
    if path.is_empty() {
        return Err(crate::error::param(
            "path is empty, pass a file name such as path := 'report.html'",
        ));
    }
    if path.contains('\0') {
        return Err(crate::error::param(
            "path contains a NUL character, pass a plain file name",
        ));
    }
    let target = Path::new(path);
    let name = target.file_name().ok_or_else(|| {
        crate::error::param(format!(
            "path '{path}' names a directory, pass a file name such as 'report.html'"
        ))
    })?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(crate::error::param(format!(
            "the directory '{}' of path '{path}' does not exist, create it or pass a path in an existing directory",
            dir.display()
        )));
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let temp = dir.join(format!(
        ".{}.{}-{stamp}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(crate::error::host(format!(
            "could not write '{path}': {e}, pass a writable path"
        )));
    }
    Ok(contents.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        let p = path.to_str().unwrap();
        assert_eq!(write_atomically(p, true, b"first").unwrap(), 5);
        assert_eq!(write_atomically(p, true, b"second!").unwrap(), 7);
        assert_eq!(std::fs::read(&path).unwrap(), b"second!");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_without_external_access_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        let p = path.to_str().unwrap();
        write_atomically(p, true, b"old").unwrap();
        let e = write_atomically(p, false, b"new").unwrap_err();
        assert_eq!(crate::error::kind_of(&e), crate::error::Kind::Host);
        let e = e.to_string();
        assert!(e.contains("enable_external_access is false"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let missing = dir.path().join("no/such/dir/r.html");
        let e = write_atomically(missing.to_str().unwrap(), true, b"x").unwrap_err();
        assert_eq!(crate::error::kind_of(&e), crate::error::Kind::Param);
        let e = e.to_string();
        assert!(e.contains("does not exist"), "{e}");
        // A directory as target: the rename fails, the temporary file goes.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("keep"), b"k").unwrap();
        assert!(write_atomically(sub.to_str().unwrap(), true, b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
