use std::path::PathBuf;

/// The cache where `scripts/fetch-assets.sh` puts models and runtimes: `LECTERN_CACHE_DIR`,
/// else `/var/cache/lectern` when it holds assets, else the user's cache folder.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LECTERN_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let system = PathBuf::from("/var/cache/lectern");
    if system.join("assets").is_dir() {
        return system;
    }
    let user_cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    user_cache.join("lectern")
}
