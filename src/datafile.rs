//! Files in the data directory, and the one store type every kept file of the agent uses.
//!
//! A file is written whole and atomically (a temporary file, flushed to disk, then a rename),
//! so that a crash never leaves half a file and a reader never sees one; it is readable by its
//! owner only, since adopted phones' passwords and the people's password hashes live there.
//! [`DataFile`] keeps the file's content in memory: loaded once (a missing file is the empty
//! value, a broken one an error naming the file, never emptied), changed under a lock, written
//! at once or by the next flush. The file and its directory are flushed to disk before a write
//! returns, so that what a write acknowledged survives a crash or a power cut.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A data file that could not be read, parsed, serialised or written; it names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Error {
    pub path: String,
    pub reason: String,
}

impl Error {
    fn new(path: &Path, reason: impl std::fmt::Display) -> Error {
        Error {
            path: path.display().to_string(),
            reason: one_line(&reason.to_string()),
        }
    }
}

/// A parser's report on one line, for the one line a failed start prints: TOML's shows the
/// line it stopped at under its first line, and says what is wrong in its last.
fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    match lines.next_back() {
        Some(last) if last != first => format!("{first}: {last}"),
        _ => first.to_string(),
    }
}

/// Replaces `path` with `text`; the error names the file.
pub fn write(path: &Path, text: &str) -> Result<(), Error> {
    write_bytes(path, text.as_bytes())
}

/// Replaces `path` with `bytes`: its directory created if need be, a temporary file beside it
/// (owner only), flushed to disk, renamed over the old one, the directory flushed too.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|err| Error::new(dir, err))?;
    // The process id keeps a command-line tool and a running gateway off each other's file.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    fn fill(temporary: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = owner_only(temporary, true)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    if let Err(err) = fill(&temporary, bytes) {
        let _ = std::fs::remove_file(&temporary);
        return Err(Error::new(&temporary, err));
    }
    std::fs::rename(&temporary, path).map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        Error::new(path, err)
    })?;
    sync_dir(dir).map_err(|err| Error::new(dir, err))
}

/// Flushes a directory's entries to disk: the rename of a file written in it only survives a
/// power cut once its directory is flushed.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Elsewhere a directory cannot be opened to be flushed; the rename is as durable as the file
/// system makes it.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Opens for writing, creating it readable by its owner only (0600 on Unix).
pub fn owner_only(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// How a kept value is written.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// Compact JSON: a cache the agent writes for itself.
    Json,
    /// Indented JSON, for people who look.
    PrettyJson,
    /// TOML like phone2mqtt.toml, for people who edit it, after a comment saying what it is.
    Toml { header: &'static str },
}

impl Format {
    fn parse<T: DeserializeOwned>(self, text: &str) -> Result<T, String> {
        match self {
            Format::Json | Format::PrettyJson => {
                serde_json::from_str(text).map_err(|err| err.to_string())
            }
            Format::Toml { .. } => toml::from_str(text).map_err(|err| err.to_string()),
        }
    }

    fn render<T: Serialize>(self, value: &T) -> Result<String, String> {
        match self {
            Format::Json => serde_json::to_string(value).map_err(|err| err.to_string()),
            Format::PrettyJson => serde_json::to_string_pretty(value).map_err(|e| e.to_string()),
            Format::Toml { header } => toml::to_string_pretty(value)
                .map(|text| format!("{header}{text}"))
                .map_err(|err| err.to_string()),
        }
    }
}

/// A value kept in a file of the data directory.
#[derive(Debug)]
pub struct DataFile<T> {
    path: PathBuf,
    format: Format,
    value: Mutex<T>,
    /// Changed in memory, not written yet.
    dirty: AtomicBool,
    /// Held from serialising to renaming, so that writes reach the file in the order of the
    /// changes they carry.
    writing: Mutex<()>,
}

impl<T: Serialize + DeserializeOwned + Default> DataFile<T> {
    /// Reads the file; a missing one is the empty value, a broken one an error naming it
    /// (rather than silently forgetting what it held).
    pub fn load(path: PathBuf, format: Format) -> Result<DataFile<T>, Error> {
        let value = match std::fs::read_to_string(&path) {
            Ok(text) => format.parse(&text).map_err(|err| Error::new(&path, err))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => T::default(),
            Err(err) => return Err(Error::new(&path, err)),
        };
        Ok(DataFile::new(path, format, value))
    }

    fn new(path: PathBuf, format: Format, value: T) -> DataFile<T> {
        DataFile {
            path,
            format,
            value: Mutex::new(value),
            dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value, to read or change in memory only.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the value now and writes it with the next [`flush`](Self::flush): for changes
    /// that come in bursts, since the file is rewritten whole and one write covers many.
    pub fn change_soon<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let result = change(&mut self.lock());
        self.dirty.store(true, Ordering::SeqCst);
        result
    }

    /// Writes pending changes, if any; when the write fails they stay pending, for the next
    /// flush.
    pub fn flush(&self) -> Result<(), Error> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            if let Err(err) = self.update(|_| ()) {
                self.dirty.store(true, Ordering::SeqCst);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Changes the value and writes the file at once.
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
        let mut value = self.lock();
        let result = change(&mut value);
        let text = self
            .format
            .render(&*value)
            .map_err(|err| Error::new(&self.path, err))?;
        let writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        drop(value);
        write(&self.path, &text)?;
        drop(writing);
        Ok(result)
    }
}

/// An empty directory of its own for a test, and the path of `file` in it.
#[cfg(test)]
pub(crate) fn scratch(tag: &str, file: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("p2m-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join(file);
    (dir, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn values_round_trip_private_and_whole() {
        let (dir, path) = scratch("datafile-round", "kept.toml");
        let header = "# Kept.\n\n";
        let file: DataFile<BTreeMap<String, u32>> =
            DataFile::load(path.clone(), Format::Toml { header }).unwrap();
        assert!(file.lock().is_empty());
        file.change_soon(|map| map.insert("a".into(), 1));
        assert!(!path.exists());
        file.flush().unwrap();
        file.update(|map| map.insert("b".into(), 2)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(header) && text.contains("b = 2"), "{text}");
        let again: DataFile<BTreeMap<String, u32>> =
            DataFile::load(path.clone(), Format::Toml { header }).unwrap();
        assert_eq!(*again.lock(), *file.lock());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file stays behind");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it_and_stays_as_it_was() {
        let (dir, path) = scratch("datafile-broken", "kept.json");
        write(&path, "{not json").unwrap();
        let err = DataFile::<BTreeMap<String, u32>>::load(path.clone(), Format::Json).unwrap_err();
        assert_eq!(err.path, path.display().to_string());
        assert!(err.to_string().starts_with(&path.display().to_string()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
        // TOML's report is several lines; the error is one, with where and what.
        let toml = Format::Toml { header: "" };
        let err = DataFile::<BTreeMap<String, u32>>::load(path.clone(), toml).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
        assert!(err.reason.contains("line 1"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failed_flush_keeps_the_change_pending() {
        let (dir, _) = scratch("datafile-retry", "kept.json");
        // Where the file's directory should be, a file: no write can succeed.
        let blocked = dir.join("sub");
        let path = blocked.join("kept.json");
        let file: DataFile<BTreeMap<String, u32>> =
            DataFile::load(path.clone(), Format::Json).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&blocked, "in the way").unwrap();
        file.change_soon(|map| map.insert("a".into(), 1));
        let err = file.flush().unwrap_err();
        assert!(err.path.contains("sub"), "{err}");
        std::fs::remove_file(&blocked).unwrap();
        file.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
