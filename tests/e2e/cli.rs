//! The `tongban` binary, run as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tongban() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tongban"));
    c.env("RUST_LOG", "warn");
    c
}

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tongban demo` on an empty directory: generates, serves, prints the URLs
/// and tokens, writes the credentials file; the printed curl works.
#[tokio::test]
async fn demo_from_nothing_to_a_served_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = tongban()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--scale",
            "0.001",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let stdout = child.0.stdout.take().unwrap();
    // Read the banner on a thread: the demo keeps running after printing it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !banner
        .iter()
        .any(|l: &String| l.starts_with("Press Ctrl-C"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        banner.push(
            rx.recv_timeout(left)
                .expect("the demo prints its banner within 2 minutes"),
        );
    }
    let url_line = banner
        .iter()
        .find(|l| l.trim_start().starts_with("directory"))
        .unwrap();
    let url = url_line.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1/catalog/resources"),
        "{url}"
    );

    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("demo-credentials.json")).unwrap())
            .unwrap();
    let office = creds["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "data_office")
        .unwrap();
    let token = office["token"].as_str().unwrap();
    assert!(
        banner.iter().any(|l| l.contains(token)),
        "the banner shows the tokens"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("demo-credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "credentials are private to their owner");
    }

    // The first curl of the banner, made by hand.
    let curl = banner
        .iter()
        .find(|l| l.contains("curl") && l.contains("base_library=population"))
        .unwrap();
    let bearer = curl
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let query_url = curl.rsplit('\'').nth(1).unwrap();
    let page: serde_json::Value = reqwest::Client::new()
        .get(query_url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["code"], "101/000001");
    let all: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], 5);

    // The CLI reads the same catalog while the demo runs.
    let list = run_ok(tongban().args(["catalog", "list", "--data-dir"]).arg(&data));
    assert!(
        list.contains("101/000001")
            && list.contains("人口基础信息")
            && list.contains("5 resources"),
        "{list}"
    );
    let show = run_ok(
        tongban()
            .args(["catalog", "show", "104/000001", "--data-dir"])
            .arg(&data),
    );
    assert!(show.contains("licence_no") && show.contains("v1"), "{show}");
}

/// Export, edit in a "spreadsheet", import; a bad row names its line and changes nothing.
#[test]
fn catalog_export_and_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(
        tongban()
            .args(["datagen", "--scale", "0.0005", "--data-dir"])
            .arg(&data),
    );
    let csv_path = dir.path().join("directory.csv");
    run_ok(
        tongban()
            .args(["catalog", "export", "--format", "csv", "--out"])
            .arg(&csv_path)
            .arg("--data-dir")
            .arg(&data),
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.starts_with('\u{feff}'), "spreadsheet-friendly BOM");
    assert_eq!(
        csv.lines().count(),
        1 + 15 + 12 + 8 + 8 + 12,
        "a header and one row per item"
    );

    // Into a fresh directory: departments come from the JSON export first.
    let json_path = dir.path().join("directory.json");
    run_ok(
        tongban()
            .args(["catalog", "export", "--out"])
            .arg(&json_path)
            .arg("--data-dir")
            .arg(&data),
    );
    let fresh = dir.path().join("fresh");
    let out = run_ok(
        tongban()
            .args(["catalog", "import"])
            .arg(&json_path)
            .arg("--data-dir")
            .arg(&fresh),
    );
    assert!(
        out.contains("departments 11 created") && out.contains("resources 5 created"),
        "{out}"
    );
    let out = run_ok(
        tongban()
            .args(["catalog", "import"])
            .arg(&csv_path)
            .arg("--data-dir")
            .arg(&fresh),
    );
    assert!(out.contains("resources 0 created, 5 updated"), "{out}");

    // Break line 14 (the religion item of the population resource: share type none).
    let broken: String = csv
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == 14 { l.replace("《中华人民共和国个人信息保护法》第二十八条：敏感个人信息仅在具有特定目的和充分必要性时处理", "") } else { l.to_string() } + "\n")
        .collect();
    assert_ne!(broken, csv);
    let broken_path = dir.path().join("broken.csv");
    std::fs::write(&broken_path, broken).unwrap();
    let before = run_ok(
        tongban()
            .args(["catalog", "export", "--data-dir"])
            .arg(&fresh),
    );
    let out = tongban()
        .args(["catalog", "import"])
        .arg(&broken_path)
        .arg("--data-dir")
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("line 14: items[12].legal_basis: required when share_type is none"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    let after = run_ok(
        tongban()
            .args(["catalog", "export", "--data-dir"])
            .arg(&fresh),
    );
    assert_eq!(before, after);
}

#[test]
fn config_check_accepts_the_example_and_explains_mistakes() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/tongban.toml");
    let out = run_ok(tongban().args(["config", "check", example]));
    assert!(
        out.contains(": ok") && out.contains("127.0.0.1:8080"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = 'everywhere'\nstore_url = 'mysql://db'\n").unwrap();
    let out = tongban()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("listen: 'everywhere' is not an address"),
        "{err}"
    );
    assert!(err.contains("store_url: 'mysql://db'"), "{err}");

    std::fs::write(&bad, "listn = '127.0.0.1:1'\n").unwrap();
    let out = tongban()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("unknown field `listn`")
    );
}

#[test]
fn bad_arguments_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = tongban()
        .args(["datagen", "--scale", "0", "--data-dir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--scale must be a number in (0, 100]")
    );
    assert!(!dir.path().join("d").exists(), "nothing created");
    let out = tongban()
        .args(["catalog", "show", "101/000001", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("resource '101/000001' not found")
    );
}

/// Production start: `serve --config`, a token issued with `token add` while
/// the hub runs is accepted without a restart, and SIGTERM stops it cleanly.
#[tokio::test]
async fn serve_with_a_config_and_issued_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("tongban.toml");
    std::fs::write(
        &config,
        format!(
            "listen = '127.0.0.1:{port}'\ndata_dir = '{}'\n",
            data.display()
        ),
    )
    .unwrap();
    let child = tongban()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An empty catalog: register the data office, then issue its token.
    let json = dir.path().join("d.json");
    std::fs::write(
        &json,
        r#"{"departments": [{"code": "sh-dsjzx", "name": "上海市大数据中心", "level": "city"}]}"#,
    )
    .unwrap();
    run_ok(
        tongban()
            .args(["catalog", "import"])
            .arg(&json)
            .arg("--config")
            .arg(&config),
    );
    let token = run_ok(
        tongban()
            .args([
                "token",
                "add",
                "--department",
                "sh-dsjzx",
                "--role",
                "data-office",
                "--label",
                "ops",
            ])
            .arg("--config")
            .arg(&config),
    );
    let token = token.trim();
    assert!(token.starts_with("tb_"), "{token}");
    let listed = run_ok(tongban().args(["token", "list", "--config"]).arg(&config));
    assert!(
        listed.contains("sh-dsjzx") && listed.contains("ops") && !listed.contains(token),
        "{listed}"
    );
    let me = loop {
        let resp = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break resp.json::<serde_json::Value>().await.unwrap();
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(15),
            "token never accepted"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(me["role"], "data_office");

    #[cfg(unix)]
    {
        let pid = child.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = child.0.wait().unwrap();
        assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    }
}

/// The lists travel as spreadsheets: export, edit, import; a bad row names its
/// line and nothing is written.
#[test]
fn lists_export_and_import_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(
        tongban()
            .args(["datagen", "--scale", "0.0005", "--data-dir"])
            .arg(&data),
    );
    for list in ["needs", "negative", "responsibilities"] {
        let csv = dir.path().join(format!("{list}.csv"));
        run_ok(
            tongban()
                .args(["lists", "export", list, "--format", "csv", "--out"])
                .arg(&csv)
                .arg("--data-dir")
                .arg(&data),
        );
        let out = run_ok(
            tongban()
                .args(["lists", "import", list])
                .arg(&csv)
                .arg("--data-dir")
                .arg(&data),
        );
        assert!(out.contains("0 created"), "{list}: {out}");
        let json = dir.path().join(format!("{list}.json"));
        run_ok(
            tongban()
                .args(["lists", "export", list, "--out"])
                .arg(&json)
                .arg("--data-dir")
                .arg(&data),
        );
        let out = run_ok(
            tongban()
                .args(["lists", "import", list])
                .arg(&json)
                .arg("--data-dir")
                .arg(&data),
        );
        assert!(out.contains("0 created"), "{list}: {out}");
    }
    let csv = dir.path().join("responsibilities.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("9,sh-scjgj,101/000001,,24,lookup\n");
    std::fs::write(&csv, text).unwrap();
    let out = tongban()
        .args(["lists", "import", "responsibilities"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 7: provider: '101/000001' is provided by sh-gaj, not sh-scjgj; nothing was imported"), "{err}");
    let listed = run_ok(
        tongban()
            .args(["lists", "export", "responsibilities", "--data-dir"])
            .arg(&data),
    );
    assert!(!listed.contains("\"id\": 9"), "nothing written");
}
