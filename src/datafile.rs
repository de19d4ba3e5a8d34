//! Files in the data directory, and the one store type every kept file of the agent uses.
//!
//! A file is written whole and atomically (a temporary file, flushed to disk, then a rename),
//! so that a crash never leaves half a file and a reader never sees one; it is readable by its
//! owner only, since adopted phones' passwords and the people's password hashes live there.
//! [`DataFile`] keeps the file's content in memory: loaded once (a missing file is the empty
//! value, a broken one an error naming the file), changed under a lock, written at once or by
//! the next flush.

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
            reason: reason.to_string(),
        }
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
    // The rename itself reaches the disk with the directory; where a directory cannot be
    // opened for that (not on Unix), the file is written all the same.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
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

    /// Reads the file, taking a missing or unreadable one as the empty value: for a cache,
    /// which the agent fills again.
    pub fn load_or_default(path: PathBuf, format: Format) -> DataFile<T> {
        let value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| format.parse(&text).ok())
            .unwrap_or_default();
        DataFile::new(path, format, value)
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

    /// Writes pending changes, if any.
    pub fn flush(&self) -> Result<(), Error> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            self.update(|_| ())?;
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
    fn a_broken_file_is_an_error_naming_it_unless_it_is_a_cache() {
        let (dir, path) = scratch("datafile-broken", "kept.json");
        write(&path, "{not json").unwrap();
        let err = DataFile::<BTreeMap<String, u32>>::load(path.clone(), Format::Json).unwrap_err();
        assert_eq!(err.path, path.display().to_string());
        assert!(err.to_string().starts_with(&path.display().to_string()));
        let cache = DataFile::<BTreeMap<String, u32>>::load_or_default(path, Format::Json);
        assert!(cache.lock().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
