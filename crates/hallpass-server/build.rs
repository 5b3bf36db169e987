//! Names the source of the build in `hallpass --version`: `hallpass 0.1.0 (abc1234
//! 2026-12-06)`, the short commit and its commit date (not the build date, so two builds
//! of one commit print the same), `-dirty` after the hash when the tree had changes.
//!
//! `HALLPASS_BUILD_COMMIT`, when set, is used as it is instead of asking git: packagers
//! building from a source tarball (no `.git`) know the commit and git does not. Without
//! either, the version is the bare `hallpass 0.1.0`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HALLPASS_BUILD_COMMIT");
    let detail = match std::env::var("HALLPASS_BUILD_COMMIT") {
        Ok(given) => given.trim().to_owned(),
        Err(_) => from_git().unwrap_or_default(),
    };
    let suffix = if detail.is_empty() { String::new() } else { format!(" ({detail})") };
    println!("cargo:rustc-env=BUILD_COMMIT_DETAIL={suffix}");
}

/// `abc1234 2026-12-06` (or `abc1234-dirty 2026-12-06`), or `None` when git or the
/// repository is missing. Also tells cargo which git files to watch.
fn from_git() -> Option<String> {
    // HEAD lives in the worktree's own git directory; branches and packed-refs in the
    // common one. They differ in a `git worktree` checkout, where `.git` is a file.
    let git_dir = git_path(&["rev-parse", "--absolute-git-dir"])?;
    let common_dir = git_path(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .unwrap_or_else(|| git_dir.clone());
    // Only these change when HEAD moves (a commit, a checkout, a reset) or something is
    // staged, so a build without such a change does not rerun this script nor rebuild
    // the crate. Unstaged edits alone therefore do not set `-dirty` until the next of
    // these: the mark is a hint for developers, release builds come from clean trees.
    watch(&git_dir.join("HEAD"));
    // HEAD's reflog grows with every move, also when the branch's ref lives only in
    // packed-refs and a commit then writes it loose (a file not watched before).
    watch(&git_dir.join("logs").join("HEAD"));
    watch(&git_dir.join("index"));
    watch(&common_dir.join("packed-refs"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&common_dir.join(branch));
    }

    let hash = git(&["rev-parse", "--short=7", "HEAD"])?;
    let date = git(&["log", "-1", "--format=%cs", "HEAD"]).unwrap_or_default();
    // `--no-optional-locks`: without it `git status` may rewrite the index it reads, which
    // is a watched file, and every build would then run this script again.
    let dirty = git(&["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let mark = if dirty { "-dirty" } else { "" };
    Some(format!("{hash}{mark} {date}").trim_end().to_owned())
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git_path(args: &[&str]) -> Option<PathBuf> {
    git(args).map(PathBuf::from)
}

/// The trimmed stdout of a successful git command run in this crate's directory.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}
