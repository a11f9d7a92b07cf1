//! Which migbench this is: the package version, and the git commit it was built from with whether
//! the work tree had uncommitted changes (from `build.rs`; "unknown" when built without git).

/// The git commit the binary was built from, or `unknown`.
pub fn git_commit() -> &'static str {
    env!("MIGBENCH_GIT_COMMIT")
}

/// Whether tracked or untracked files differed from that commit when the binary was built:
/// `Some(true)` dirty, `Some(false)` clean, `None` unknown (built without git).
pub fn git_dirty() -> Option<bool> {
    match env!("MIGBENCH_GIT_DIRTY") {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `0.1.0 (commit 4f3c971…, clean)`: what `migbench --version` prints after the name.
pub fn long() -> &'static str {
    static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LONG.get_or_init(|| {
        let tree = match git_dirty() {
            Some(true) => "dirty: uncommitted changes",
            Some(false) => "clean",
            None => "tree state unknown",
        };
        format!(
            "{} (commit {}, {tree})",
            env!("CARGO_PKG_VERSION"),
            git_commit()
        )
    })
}
