//! Names the commit the binary was built from (`AIOPS_COMMIT`, read by `--version` and
//! `aiops_build_info`): `git rev-parse` in the source tree, or `unknown` where there is no git
//! or no repository (a source tarball). Nothing is downloaded.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8(output.stdout).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AIOPS_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit, checkout or merge appends to HEAD's log.
    if let Some(file) = git(&["rev-parse", "--git-path", "logs/HEAD"]) {
        println!("cargo:rerun-if-changed={file}");
    }
}
