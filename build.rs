//! Records the git commit the binary was built from, and whether the work tree had uncommitted
//! changes, for `migbench --version` and run manifests. Without git (a source tarball, a vendored
//! copy) both are "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let dirty = match &commit {
        Some(_) => match git(&["status", "--porcelain"]) {
            Some(s) => (if s.is_empty() { "false" } else { "true" }).to_string(),
            None => "unknown".to_string(),
        },
        None => "unknown".to_string(),
    };
    println!(
        "cargo:rustc-env=MIGBENCH_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=MIGBENCH_GIT_DIRTY={dirty}");
    // Rebuild when HEAD moves or the index changes (a commit, a checkout, `git add`). In a git
    // worktree `.git` is a file naming the real directory, so ask git where its files are.
    for what in ["HEAD", "index"] {
        if let Some(path) = git(&["rev-parse", "--git-path", what]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        if let Some(head) = std::fs::read_to_string(format!("{dir}/HEAD"))
            .ok()
            .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
        {
            if let Some(path) = git(&["rev-parse", "--git-path", &head]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    // And when what goes into the binary changes, so that "dirty" is about the sources compiled.
    for path in ["build.rs", "Cargo.toml", "Cargo.lock", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
