//! Shared by the fuzz targets: the readers take paths, so each input goes through a file.

use std::path::PathBuf;

/// Writes `data` to this process's scratch file (in /dev/shm when it exists) and
/// returns its path. One file per process and target, rewritten for every input.
pub fn scratch_file(target: &str, data: &[u8]) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("panns-fuzz-{target}-{}", std::process::id()));
    std::fs::write(&path, data).expect("writing the scratch file");
    path
}
