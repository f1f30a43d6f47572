//! Signed checkpoints of the audit log's Merkle tree (docs/audit.md):
//!
//! - `audit prove` gives inclusion and consistency proofs that a third
//!   party's verifier, written from the RFC in Python
//!   (`tests/python/verify_audit.py`), accepts — and rejects once the
//!   record or the key is another;
//! - `audit verify --checkpoint FILE` catches a log cut off at its end, and
//!   a log rewritten with its chain recomputed, even when the catalog's head
//!   and checkpoints were rewritten to match (the chain alone passes both);
//! - a signed note that was altered is refused.

use crate::common::{Hub, expect_json, tongban};
use crate::python_clients::python;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Output;

async fn lookups(hub: &Hub, keys: &[String], case: &str) {
    for key in keys {
        let body =
            json!({"keys": [key], "items": ["name"], "matter": "310000-JZZ-001", "case": case});
        expect_json(
            hub.post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
                .await,
            200,
        )
        .await;
    }
}

/// `tongban audit ARGS --data-dir DIR`.
fn audit(dir: &Path, args: &[&str]) -> Output {
    tongban()
        .arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A checkpoint taken now: its note, saved to `name`, and its size.
fn checkpoint(dir: &Path, keep: &Path, name: &str) -> (std::path::PathBuf, u64) {
    let out = audit(dir, &["checkpoint"]);
    assert!(out.status.success(), "{}", text(&out));
    let note = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert!(lines[0].starts_with("tongban/audit/"), "{note}");
    assert_eq!(lines[3], "", "a blank line before the signature: {note}");
    assert!(lines[4].starts_with("\u{2014} tongban/audit/"), "{note}");
    let path = keep.join(name);
    std::fs::write(&path, &note).unwrap();
    (path, lines[1].parse().unwrap())
}

/// Runs the third party's verifier on a proof.
fn third_party(proof: &Value, vkey: &str, keep: &Path) -> Output {
    let file = keep.join("proof.json");
    std::fs::write(&file, serde_json::to_vec(proof).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/verify_audit.py");
    std::process::Command::new(python())
        .arg(script)
        .arg(&file)
        .arg(vkey)
        .output()
        .unwrap()
}

/// The hash a record line carries, as the chain computes it: SHA-256 of
/// the previous hash and the line without its `hash` member.
fn sealed(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Rewrites the log from record `from` on, as someone who can write the
/// disk would: each line edited by `edit`, the chain recomputed so that
/// it verifies. Returns the new last line's sequence number and hash.
fn forge(segment: &Path, from: usize, edit: impl Fn(&str) -> String) -> (u64, String) {
    let lines: Vec<String> = std::fs::read_to_string(segment)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut out: Vec<String> = lines[..from - 1].to_vec();
    let mut prev = match from {
        1 => "0".repeat(64),
        _ => serde_json::from_str::<Value>(&lines[from - 2]).unwrap()["hash"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    for line in &lines[from - 1..] {
        // `…,"hash":"<64 hex>"}`: the body is the line without that member.
        let old: Value = serde_json::from_str(line).unwrap();
        let body = format!("{}}}", &line[..line.len() - 75]);
        let body = edit(&body).replacen(
            &format!("\"prev\":\"{}\"", old["prev"].as_str().unwrap()),
            &format!("\"prev\":\"{prev}\""),
            1,
        );
        let hash = sealed(&prev, &body);
        out.push(format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]));
        prev = hash;
    }
    std::fs::write(segment, out.join("\n") + "\n").unwrap();
    (out.len() as u64, prev)
}

/// Sets the catalog's head of the log (and drops its checkpoints), as
/// someone with the database would, to match a forged log.
async fn rewrite_catalog(dir: &Path, seq: u64, hash: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("catalog.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_heads SET seq = ?, hash = ?")
        .bind(seq as i64)
        .bind(hash)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_checkpoints")
        .execute(&mut db)
        .await
        .unwrap();
}

#[tokio::test]
async fn checkpoints_prove_records_and_catch_a_cut_off_or_rewritten_log() {
    let keep = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(None).await;
    let dir = hub.data_dir().to_path_buf();
    let keys = hub.citizen_ids(12).await;
    lookups(&hub, &keys[..5], "CP-1").await;
    let (first, first_size) = checkpoint(&dir, keep.path(), "first.note");
    assert!(first_size >= 5, "one record per lookup at least");
    lookups(&hub, &keys[5..], "CP-2").await;
    let (second, n) = checkpoint(&dir, keep.path(), "second.note");
    assert_eq!(n, first_size + 7);
    let (n_text, from_text) = (n.to_string(), first_size.to_string());

    // A proof of record 3 in the tree of 12, extending the tree of 5,
    // checked by the third party's verifier with the published key.
    let vkey = String::from_utf8(audit(&dir, &["key"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let out = audit(
        &dir,
        &[
            "prove", "--seq", "3", "--size", &n_text, "--from", &from_text,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof["tree_size"], n);
    assert_eq!(proof["leaf_index"], 2);
    assert!(proof["record"].as_str().unwrap().contains("\"seq\":3,"));
    let checked = third_party(&proof, &vkey, keep.path());
    let said = text(&checked);
    assert!(
        checked.status.success()
            && said.contains(&format!(
                "ok: record 3 is leaf 2 of the tree of {n} records"
            ))
            && said.contains(&format!(
                "extends the tree of its first {first_size} records"
            )),
        "{said}"
    );
    // Another record in its place (its leaf hash made to match): no.
    let mut swapped = proof.clone();
    let record = proof["record"].as_str().unwrap().replace("CP-1", "CP-9");
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(record.as_bytes());
    swapped["record"] = record.into();
    swapped["leaf_hash"] = hex::encode(leaf.finalize()).into();
    let refused = third_party(&swapped, &vkey, keep.path());
    assert!(
        !refused.status.success() && text(&refused).contains("is not in the tree"),
        "{}",
        text(&refused)
    );
    // Another replica's key: not its signature.
    let other = String::from_utf8(audit(&dir, &["key", "--replica", "other"]).stdout).unwrap();
    let refused = third_party(&proof, other.trim(), keep.path());
    assert!(
        !refused.status.success() && text(&refused).contains("no signature by"),
        "{}",
        text(&refused)
    );

    // Intact: both saved checkpoints, and the catalog's, match.
    let out = audit(&dir, &["verify", "--checkpoint", first.to_str().unwrap()]);
    assert!(
        out.status.success() && text(&out).contains(&format!("audit log intact: {n} records")),
        "{}",
        text(&out)
    );
    // An altered note is refused, whatever the log holds.
    let altered = keep.path().join("altered.note");
    let note = std::fs::read_to_string(&second).unwrap();
    std::fs::write(&altered, note.replacen(&format!("\n{n}\n"), "\n11\n", 1)).unwrap();
    let out = audit(&dir, &["verify", "--checkpoint", altered.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out).contains("does not verify"),
        "{}",
        text(&out)
    );

    hub.stop().await;
    let segment = dir.join("audit/audit-000001.jsonl");
    let original = std::fs::read_to_string(&segment).unwrap();
    assert_eq!(
        original.lines().count() as u64,
        n,
        "nothing recorded on stop"
    );

    // Cut off: the last 4 records removed, the catalog's head moved back to
    // match and its checkpoints dropped. The chain alone cannot tell...
    let lines: Vec<&str> = original.lines().collect();
    let kept = n as usize - 4;
    std::fs::write(&segment, lines[..kept].join("\n") + "\n").unwrap();
    let last: Value = serde_json::from_str(lines[kept - 1]).unwrap();
    rewrite_catalog(&dir, kept as u64, last["hash"].as_str().unwrap()).await;
    let out = audit(&dir, &["verify"]);
    assert!(
        out.status.success() && text(&out).contains(&format!("audit log intact: {kept} records")),
        "{}",
        text(&out)
    );
    // ... the checkpoint kept outside does, and names the gap.
    let out = audit(&dir, &["verify", "--checkpoint", second.to_str().unwrap()]);
    assert!(
        !out.status.success()
            && text(&out).contains(&format!("records {}–{n} were cut off", kept + 1)),
        "{}",
        text(&out)
    );
    // The earlier checkpoint still holds: the first 5 are as they were.
    let out = audit(&dir, &["verify", "--checkpoint", first.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // Rewritten: record 2 edited, the chain recomputed after it, the head
    // moved to the new end. The chain and the head pass; both checkpoints
    // (covering record 2) catch the fork.
    std::fs::write(&segment, &original).unwrap();
    let (seq, hash) = forge(&segment, 2, |body| body.replacen("CP-1", "CP-X", 1));
    assert_eq!(seq, n);
    rewrite_catalog(&dir, seq, &hash).await;
    assert!(
        audit(&dir, &["verify"]).status.success(),
        "the forged chain verifies"
    );
    for saved in [&first, &second] {
        let out = audit(&dir, &["verify", "--checkpoint", saved.to_str().unwrap()]);
        assert!(
            !out.status.success()
                && text(&out).contains("are not those the checkpoint given signed"),
            "{}",
            text(&out)
        );
    }
}

/// The national-algorithm option (GB/T 39786): a hub configured with
/// `audit_hash = "sm3"` and `audit_signature = "sm2"` seals its chain, its
/// tree and its key hashes with SM3 and signs its checkpoints with SM2;
/// `audit verify`, `prove` and `checkpoint` work on it as on the default,
/// and a cut-off tail is still caught against an SM2-signed checkpoint.
#[tokio::test]
async fn an_sm3_log_with_sm2_checkpoints_verifies_and_catches_a_cut_off() {
    use tongban_audit::checkpoint::{SigAlg, Verifier};
    use tongban_audit::merkle::HashAlg;
    let keep = tempfile::tempdir().unwrap();
    let mut hub = Hub::start_with(None, |c| {
        c.audit_hash = HashAlg::Sm3;
        c.audit_signature = SigAlg::Sm2;
    })
    .await;
    let dir = hub.data_dir().to_path_buf();
    let keys = hub.citizen_ids(6).await;
    lookups(&hub, &keys, "SM-1").await;
    hub.stop().await;

    let segment = dir.join("audit/audit-000001.jsonl");
    let original = std::fs::read_to_string(&segment).unwrap();
    let n = original.lines().count();
    assert!(n >= 6);
    assert_eq!(
        tongban_audit::log_alg(&dir.join("audit")).unwrap(),
        Some(HashAlg::Sm3)
    );
    // Keys are HMAC-SM3 of the hub's secret.
    let sm3 = tongban_audit::key_hash_with(HashAlg::Sm3, hub.mask_key().as_bytes(), &keys[0]);
    assert!(
        original.contains(&sm3)
            && !original.contains(&tongban_audit::key_hash(
                hub.mask_key().as_bytes(),
                &keys[0]
            ))
    );

    // The checkpoint the hub took on stop is signed with SM2.
    let config = keep.path().join("sm.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\naudit_hash = \"sm3\"\naudit_signature = \"sm2\"\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let with_config = |args: &[&str]| {
        tongban()
            .arg("audit")
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let vkey = String::from_utf8(with_config(&["key"]).stdout).unwrap();
    let verifier = Verifier::parse(vkey.trim()).unwrap();
    let out = with_config(&["checkpoint"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("RFC 9162 tree, SM3, signed with sm2"),
        "{}",
        text(&out)
    );
    let note = String::from_utf8(out.stdout).unwrap();
    assert_eq!(verifier.open(&note).unwrap().size, n as u64);
    let saved = keep.path().join("sm2.note");
    std::fs::write(&saved, &note).unwrap();

    // A proof over the SM3 tree.
    let out = with_config(&["prove", "--seq", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = proof["record"].as_str().unwrap();
    assert_eq!(
        proof["leaf_hash"],
        hex::encode(HashAlg::Sm3.leaf(record.as_bytes()))
    );

    // Verified with the default configuration too (the hash is told from
    // the chain, either of the hub's keys is accepted).
    let out = audit(
        &dir,
        &[
            "verify",
            "--checkpoint",
            saved.to_str().unwrap(),
            "--key",
            vkey.trim(),
        ],
    );
    assert!(
        out.status.success() && text(&out).contains(&format!("audit log intact: {n} records")),
        "{}",
        text(&out)
    );
    let out = audit(&dir, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));

    // Cut off two records: the SM2-signed checkpoint names the gap.
    let lines: Vec<&str> = original.lines().collect();
    std::fs::write(&segment, lines[..n - 2].join("\n") + "\n").unwrap();
    let out = audit(
        &dir,
        &[
            "verify",
            "--checkpoint",
            saved.to_str().unwrap(),
            "--key",
            vkey.trim(),
        ],
    );
    assert!(
        !out.status.success()
            && text(&out).contains(&format!("records {}–{n} were cut off", n - 1)),
        "{}",
        text(&out)
    );
}
