//! The `tongban` binary, run as a user would.

use crate::common::{ndjson_lines, run_ok, tongban};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tongban demo` on free ports over `data` (generated at `scale` if empty):
/// the running demo and its banner, once printed.
fn start_demo(data: &Path, scale: &str) -> (Running, Vec<String>) {
    let child = tongban()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--scale",
            scale,
            "--data-dir",
        ])
        .arg(data)
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
    (child, banner)
}

/// `tongban demo` on an empty directory: generates, serves, prints the URLs
/// and tokens, writes the credentials file; the printed curl works.
#[tokio::test]
async fn demo_from_nothing_to_a_served_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_demo, banner) = start_demo(&data, "0.001");
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
    // The five base-library resources and the three interface-shared
    // services of the demo's department systems.
    assert_eq!(all["total"], 8);

    // The CLI reads the same catalog while the demo runs.
    let list = run_ok(tongban().args(["catalog", "list", "--data-dir"]).arg(&data));
    assert!(
        list.contains("101/000001")
            && list.contains("人口基础信息")
            && list.contains("302/000101")
            && list.contains("8 resources"),
        "{list}"
    );
    let show = run_ok(
        tongban()
            .args(["catalog", "show", "104/000001", "--data-dir"])
            .arg(&data),
    );
    assert!(show.contains("licence_no") && show.contains("v1"), "{show}");
}

/// The shell commands of a banner (`curl …` or `printf … | curl …`), each
/// with its continuation lines.
fn banner_commands(banner: &[String]) -> Vec<String> {
    let mut commands = Vec::new();
    let mut lines = banner.iter();
    while let Some(line) = lines.next() {
        let start = line.trim_start();
        if !(start.starts_with("curl ") || start.starts_with("printf ")) {
            continue;
        }
        let mut command = line.clone();
        while command.ends_with('\\') {
            command.push('\n');
            command.push_str(lines.next().expect("a continuation line"));
        }
        commands.push(command);
    }
    commands
}

/// Runs a banner command as pasted into bash, in `dir`; any HTTP error
/// status fails it (`--fail-with-body`), and so does any failed command of
/// a pipeline. Returns what it printed.
fn paste_into_bash(command: &str, dir: &Path) -> String {
    let script =
        format!("set -o pipefail\ncurl() {{ command curl --fail-with-body \"$@\"; }}\n{command}\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "this banner command failed ({}):\n{command}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every curl the demo banner prints works as printed, pasted into bash, as
/// soon as the banner is out: the acceptance office's lookup, verify,
/// locate, address, company, licence and stream examples answer with the
/// generated rows their keys name.
#[test]
fn the_banner_commands_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_demo, banner) = start_demo(&data, "0.01");
    let text = banner.join("\n");
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("demo-credentials.json")).unwrap())
            .unwrap();
    let acceptance = creds["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "acceptance")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let commands = banner_commands(&banner);
    let work = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    for command in &commands {
        let out = paste_into_bash(command, work.path());
        answers.push((command.as_str(), out));
    }
    assert!(
        !text.contains("still loading"),
        "the banner waits for the indexes:\n{text}"
    );
    // The examples on generated data, by endpoint: each must be there.
    let answer = |endpoint: &str| -> (&str, &str) {
        let (command, out) = answers
            .iter()
            .find(|(c, _)| c.contains(endpoint))
            .unwrap_or_else(|| panic!("the banner has no {endpoint} example:\n{text}"));
        assert!(
            command.contains(&acceptance),
            "{endpoint} is asked with the acceptance token: {command}"
        );
        (command, out.as_str())
    };
    let json_of = |endpoint: &str| -> Value {
        let (command, out) = answer(endpoint);
        serde_json::from_str(out).unwrap_or_else(|e| panic!("{command}\nanswered {out}: {e}"))
    };

    let person = json_of("/v1/lookup/101/000001'");
    assert_eq!(person["results"][0]["found"], true, "{person}");
    let row = &person["results"][0]["rows"][0];
    let (id, name) = (
        person["results"][0]["key"].as_str().unwrap(),
        row["name"].as_str().unwrap(),
    );
    assert!(!name.is_empty() && row["status"] == "正常", "{person}");
    assert!(row.get("gender").is_some() && row.get("residence_street").is_some());

    let verified = json_of("/v1/verify/101/000001'");
    assert_eq!(verified["found"], true, "{verified}");
    assert_eq!(
        verified["matches"],
        json!({"birth_date": true, "name": true}),
        "the printed claims are the citizen's own: {verified}"
    );
    assert!(
        answer("/v1/verify/101/000001'").0.contains(id),
        "the same citizen"
    );

    let address = json_of("/v1/lookup/103/000002'");
    assert_eq!(address["results"][0]["found"], true, "{address}");
    let place = &address["results"][0]["rows"][0];
    let located = json_of("/v1/locate/103/000001'");
    assert_eq!(located["results"][0]["found"], true, "{located}");
    let divisions: Vec<(&str, &str)> = located["results"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["level"].as_str().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        divisions,
        [
            ("city", "310000"),
            ("district", place["district_code"].as_str().unwrap()),
            ("street", place["street_code"].as_str().unwrap()),
        ],
        "the point is the address's, in its district and street: {located}"
    );

    let company = json_of("/v1/lookup/102/000001'");
    assert_eq!(company["results"][0]["found"], true, "{company}");
    let row = &company["results"][0]["rows"][0];
    assert!(
        ["存续", "在业"].contains(&row["status"].as_str().unwrap())
            && !row["name"].as_str().unwrap().is_empty()
            && row.get("legal_rep").is_some(),
        "{company}"
    );

    // The three department systems, called through the hub as printed:
    // their people and companies are the base libraries' own, each answer
    // is projected to the acceptance office's need and masked.
    let social = json_of("/v1/call/302/000101/contribution-status'");
    assert_eq!(social["provider_status"], 200, "{social}");
    let data = &social["data"];
    assert!(
        data["paid_up"].is_boolean() && data["months_paid"].is_i64(),
        "{social}"
    );
    let masked_name = data["name"].as_str().unwrap();
    assert!(
        masked_name.starts_with(name.chars().next().unwrap()) && masked_name.contains('*'),
        "the citizen's own name, masked: {social}"
    );
    assert!(
        data["citizen_id"].as_str().unwrap().contains("***"),
        "{social}"
    );
    let denied: Vec<&str> = social["denied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["item"].as_str().unwrap())
        .collect();
    assert!(
        denied.contains(&"employer_name"),
        "outside the need: {social}"
    );
    assert!(data.get("employer_name").is_none(), "{social}");
    assert_eq!(
        social["request_hash"].as_str().unwrap().len(),
        64,
        "{social}"
    );
    assert!(
        answer("/v1/call/302/000101/contribution-status'")
            .0
            .contains(id)
    );

    let fund = json_of("/v1/call/302/000301/deposit-status'");
    let account = fund["data"]["account_no"].as_str().unwrap();
    assert!(
        account.starts_with("****") && account.len() >= 8,
        "masked: {fund}"
    );
    assert!(fund["data"]["account_status"].is_string(), "{fund}");

    let tax = json_of("/v1/call/302/000201/tax-clearance'");
    assert_eq!(
        tax["data"]["taxpayer_name"], company["results"][0]["rows"][0]["name"],
        "the legal-entity library's company: {tax}"
    );
    assert!(tax["data"]["clear"].is_boolean(), "{tax}");

    let health = json_of("/v1/services/health'");
    let health = health.as_array().unwrap();
    assert_eq!(health.len(), 3, "{health:?}");
    for service in health {
        assert_eq!(service["breaker"], "closed", "{service}");
        assert!(service["successes"].as_u64().unwrap() >= 1, "{service}");
    }

    let licence = json_of("/v1/verify/104/000001'");
    assert_eq!(
        (&licence["found"], &licence["matches"], &licence["in_force"]),
        (&json!(true), &json!({"holder_id": true}), &json!(true)),
        "{licence}"
    );

    let (command, out) = answer("/v1/lookup/101/000001/stream?");
    // `  printf '%s\n' 'K1' 'K2' 'K3' | \`
    let printed: Vec<&str> = command
        .split(" | ")
        .next()
        .unwrap()
        .split_whitespace()
        .skip(2)
        .map(|k| k.trim_matches('\''))
        .collect();
    let lines = ndjson_lines(out);
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys, printed, "one answer per printed key, in order: {out}");
    assert_eq!(keys.len(), 3, "{command}");
    for line in &lines {
        assert_eq!(line["found"], true, "{out}");
        assert!(!line["rows"][0]["name"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        (
            lines[0]["key"].as_str(),
            lines[0]["rows"][0]["name"].as_str()
        ),
        (Some(id), Some(name))
    );
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
        out.contains("departments 14 created") && out.contains("resources 5 created"),
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

/// A department publishes its API's OpenAPI document; the data office
/// imports it with `tongban service import-openapi` as a draft (endpoints
/// and items to review, nothing callable yet), and switches a service off
/// with `tongban service disable`, which the running hub picks up: callers
/// get the notice.
#[tokio::test]
async fn services_are_imported_from_openapi_and_switched_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_demo, banner) = start_demo(&data, "0.001");
    let text = banner.join("\n");
    // `  人社局 社会保险   http://127.0.0.1:PORT  (sh-rsj; …)`
    let provider = banner
        .iter()
        .find(|l| l.contains("(sh-swj;"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .unwrap_or_else(|| panic!("the banner names the tax bureau's system:\n{text}"))
        .to_string();
    let doc = reqwest::get(format!("{provider}/openapi.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.path().join("tax-openapi.json");
    std::fs::write(&file, doc).unwrap();
    let out = run_ok(
        tongban()
            .args(["service", "import-openapi"])
            .arg(&file)
            .args([
                "--code",
                "302/000209",
                "--provider",
                "sh-swj",
                "--base-url",
                &provider,
                "--data-dir",
            ])
            .arg(&data),
    );
    assert!(
        out.contains("imported 302/000209") && out.contains("draft"),
        "{out}"
    );
    let list: Value = serde_json::from_str(&run_ok(
        tongban()
            .args(["service", "list", "--json", "--data-dir"])
            .arg(&data),
    ))
    .unwrap();
    let imported = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resource"] == "302/000209")
        .unwrap_or_else(|| panic!("the imported service is listed: {list}"));
    let endpoint = &imported["service"]["endpoints"][0];
    assert_eq!(endpoint["name"], "check-tax-clearance", "{imported}");
    assert_eq!(endpoint["method"], "POST");
    assert_eq!(endpoint["params"][0]["item"], "credit_code");
    assert_eq!(endpoint["params"][0]["in"], "body");
    assert_eq!(endpoint["params"][0]["key"], "credit_code");
    let fields: Vec<&str> = endpoint["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["item"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"taxpayer_name") && fields.contains(&"clear"),
        "{endpoint}"
    );
    let resource: Value = serde_json::from_str(&run_ok(
        tongban()
            .args(["catalog", "show", "302/000209", "--json", "--data-dir"])
            .arg(&data),
    ))
    .unwrap();
    assert_eq!(
        resource["status"], "draft",
        "nothing is callable before review: {resource}"
    );

    // A bad document changes nothing and says why.
    std::fs::write(&file, r#"{"swagger": "2.0"}"#).unwrap();
    let failed = tongban()
        .args(["service", "import-openapi"])
        .arg(&file)
        .args(["--code", "302/000210", "--provider", "sh-swj", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("OpenAPI 3"), "{err}");

    // Switched off from the command line: the running hub refuses calls
    // with the notice within its refresh interval.
    run_ok(
        tongban()
            .args([
                "service",
                "disable",
                "302/000201",
                "--notice",
                "税务系统升级中",
                "--data-dir",
            ])
            .arg(&data),
    );
    let url = banner
        .iter()
        .find(|l| l.trim_start().starts_with("health"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .trim_end_matches("/health")
        .to_string();
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("demo-credentials.json")).unwrap())
            .unwrap();
    let token = creds["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "acceptance")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The banner's company: a valid credit code the tax bureau knows.
    let company = text
        .split(r#""credit_code":""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(25);
    let problem = loop {
        let r = reqwest::Client::new()
            .post(format!("{url}/v1/call/302/000201/tax-clearance"))
            .bearer_auth(&token)
            .json(&json!({"matter": "310000-QYZX-001", "case": "QYZX-T-1",
                          "params": {"credit_code": company}}))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            break r.json::<Value>().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the hub never picked up the switch: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(problem["code"], "provider_unavailable", "{problem}");
    assert_eq!(problem["notice"], "税务系统升级中", "{problem}");
}

/// `tongban seal-key`: datagen registers the demo issuers' keys; a key is
/// replaced, a bad one refused, an unknown department named.
#[tokio::test]
async fn seal_keys_are_registered_listed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        tongban()
            .args(["datagen", "--scale", "0.0005", "--data-dir"])
            .arg(dir.path()),
    );
    let list = || {
        run_ok(
            tongban()
                .args(["seal-key", "list", "--data-dir"])
                .arg(dir.path()),
        )
    };
    let listed = list();
    let demo = tongban_datagen::generate::issuer_seal_key("sh-scjgj").public_key();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("sh-scjgj") && l.contains("SM2-SM3") && l.ends_with(&demo)),
        "{listed}"
    );
    let add = |department: &str, key: &str| {
        tongban()
            .args([
                "seal-key",
                "add",
                "--department",
                department,
                "--public-key",
                key,
                "--data-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let other = tongban_datagen::generate::issuer_seal_key("sh-gaj").public_key();
    assert!(add("sh-scjgj", &other).status.success());
    assert!(
        list()
            .lines()
            .any(|l| l.starts_with("sh-scjgj") && l.ends_with(&other))
    );
    let bad = add("sh-scjgj", "04abcd");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an SM2 point"));
    let unknown = add("sh-nobody", &other);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("sh-nobody"));
}
