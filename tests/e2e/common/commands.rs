//! The `tongban` binary as an operator runs it, and the repository around
//! the tests.

use super::Hub;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root: `tests/python`, `tests/browser`, `deploy/`.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `tongban` binary of this build, quiet but for warnings.
pub fn tongban() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tongban"));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs a command that must succeed (its stderr is in the failure); its
/// standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Hub {
    /// `tongban audit verify` over the hub's data dir, as an operator runs
    /// it; what it printed and its exit status.
    pub fn audit_verify(&self) -> Output {
        tongban()
            .args(["audit", "verify", "--data-dir"])
            .arg(self.data_dir())
            .output()
            .unwrap()
    }

    /// `tongban audit trace --json --key KEY`: the audit records of one
    /// key, as the command prints them.
    pub fn audit_trace(&self, key: &str) -> serde_json::Value {
        let out = tongban()
            .args(["audit", "trace", "--json", "--key"])
            .arg(key)
            .arg("--data-dir")
            .arg(self.data_dir())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "audit trace printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}
