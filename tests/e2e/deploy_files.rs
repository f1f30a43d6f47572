//! The deployment files in `deploy/`, read as a deployer's tools read them
//! (no container engine runs here): the configurations they carry parse as
//! `tongban.toml` and validate; the Kubernetes manifests, the compose file,
//! nginx and the Containerfile agree with those configurations on ports,
//! paths, probes, environment variables and secret names; the Grafana
//! dashboard queries only metrics the hub exports.

use crate::common::repo;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use tongban_core::Config;

/// Every metric family the Grafana dashboard may query, as the hub exports
/// it on `/metrics`. Another test checks this list against a live scrape.
pub const DASHBOARD_METRICS: &[&str] = &[
    "tongban_http_requests_total",
    "tongban_http_request_duration_seconds",
    "tongban_access_total",
    "tongban_access_duration_seconds",
    "tongban_denials_total",
    "tongban_quota_refusals_total",
    "tongban_index_version",
    "tongban_index_rows",
    "tongban_index_bytes",
    "tongban_index_load_seconds",
    "tongban_index_load_failures_total",
    "tongban_sync_runs_total",
    "tongban_sync_rows_total",
    "tongban_delivery_backlog",
    "tongban_delivery_failures_total",
    "tongban_audit_records_total",
    "tongban_audit_batch_records",
    "tongban_audit_fdatasync_seconds",
    "tongban_service_calls_total",
    "tongban_service_call_duration_seconds",
    "tongban_service_breaker_state",
    "tongban_catalog_reloads_total",
    "tongban_catalog_change_counter",
    "tongban_ready",
];

/// The histograms among [`DASHBOARD_METRICS`]: queried as their `_bucket`,
/// `_sum` and `_count` series.
pub const HISTOGRAMS: &[&str] = &[
    "tongban_http_request_duration_seconds",
    "tongban_access_duration_seconds",
    "tongban_audit_batch_records",
    "tongban_audit_fdatasync_seconds",
    "tongban_service_call_duration_seconds",
];

/// The environment variables the hub reads.
const HUB_ENV: &[&str] = &[
    "TONGBAN_STORE_URL",
    "TONGBAN_MASK_HASH_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "RUST_LOG",
];
/// The keys of the Secret `tongban-tls` (a Kubernetes TLS secret and its CA).
const TLS_KEYS: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];
/// The secrets among them: Kubernetes takes them from `tongban-secrets`.
const SECRET_ENV: &[&str] = HUB_ENV.split_at(4).0;
const K8S: &str = "deploy/kubernetes";
const CONFIGMAP: &str = "the ConfigMap's tongban.toml";
const TRIAL: &str = "deploy/compose/tongban.toml";

/// A file of the repository, by its path from the root.
fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The YAML documents of a file (separated by `---` lines), as JSON values.
fn yaml(rel: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for doc in read(rel).split("\n---\n") {
        let mut lines = doc.lines().map(str::trim);
        if lines.all(|l| l.is_empty() || l.starts_with('#')) {
            continue;
        }
        let doc: Result<serde_yaml_ng::Value, _> = serde_yaml_ng::from_str(doc);
        let doc = doc.unwrap_or_else(|e| panic!("{rel}: not YAML: {e}"));
        docs.push(serde_json::to_value(doc).expect("YAML as JSON"));
    }
    docs
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn texts(v: &Value) -> Vec<&str> {
    list(v).iter().map(text).collect()
}

/// A mapping of strings: labels, selectors, a compose service's environment.
fn labels(v: &Value) -> BTreeMap<&str, &str> {
    let entries = v.as_object().into_iter().flatten();
    entries.map(|(k, v)| (k.as_str(), text(v))).collect()
}

fn arg_after<'s>(args: &[&'s str], flag: &str) -> Option<&'s str> {
    let i = args.iter().position(|a| *a == flag)?;
    args.get(i + 1).copied()
}

fn config(what: &str, text: &str) -> Config {
    let c: Config = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    c.validate().unwrap_or_else(|e| panic!("{what}: {e}"));
    c
}

/// The API, Flight and metrics ports of a containerised hub, each bound on
/// every interface (probes, peers and Prometheus cannot reach a loopback).
fn ports(what: &str, c: &Config) -> [u16; 3] {
    let (flight, metrics) = (c.flight_listen.as_ref(), c.metrics.listen.as_ref());
    [Some(&c.listen), flight, metrics].map(|a| {
        let a = a.unwrap_or_else(|| panic!("{what}: no flight_listen or metrics.listen"));
        let addr: SocketAddr = a.parse().unwrap_or_else(|e| panic!("{what}: {a}: {e}"));
        assert!(addr.ip().is_unspecified(), "{what}: {a} is not 0.0.0.0");
        addr.port()
    })
}

/// The manifests a kustomization may list: every YAML file but itself.
fn manifest_files() -> BTreeSet<String> {
    let dir = std::fs::read_dir(repo().join(K8S)).expect("deploy/kubernetes");
    let names = dir.map(|e| e.expect("an entry").file_name().into_string());
    let names = names.map(|n| n.expect("a UTF-8 file name"));
    let manifest = |n: &String| n.ends_with(".yaml") && n != "kustomization.yaml";
    names.filter(manifest).collect()
}

/// Every Kubernetes object in deploy/kubernetes.
fn manifests() -> Vec<Value> {
    let files = manifest_files().into_iter();
    files.flat_map(|f| yaml(&format!("{K8S}/{f}"))).collect()
}

fn of_kind<'m>(m: &'m [Value], kind: &str) -> Vec<&'m Value> {
    m.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'m>(m: &'m [Value], kind: &str) -> &'m Value {
    let all = of_kind(m, kind);
    assert_eq!(all.len(), 1, "{K8S}: one {kind} expected");
    all[0]
}

/// The production configuration: the ConfigMap's `tongban.toml`.
fn k8s_config(m: &[Value]) -> Config {
    let data = &one(m, "ConfigMap")["data"];
    config(CONFIGMAP, text(&data["tongban.toml"]))
}

/// A container's ports: (name, number).
fn container_ports(c: &Value) -> Vec<(&str, u16)> {
    let mut out = Vec::new();
    for p in list(&c["ports"]) {
        let n = p["containerPort"].as_u64().unwrap_or_default();
        out.push((text(&p["name"]), u16::try_from(n).expect("a port number")));
    }
    out
}

/// The container port a probe or a Service names, by name or by number.
fn resolve(ports: &[(&str, u16)], target: &Value) -> Option<u16> {
    let named = |(name, n): &&(&str, u16)| {
        target.as_u64() == Some(u64::from(*n)) || target.as_str() == Some(*name)
    };
    ports.iter().find(named).map(|p| p.1)
}

fn volume<'p>(pod: &'p Value, name: &str) -> &'p Value {
    let found = list(&pod["volumes"]).iter().find(|v| v["name"] == name);
    found.unwrap_or_else(|| panic!("Deployment: no volume {name:?}"))
}

fn mounted<'c>(c: &'c Value, path: &str) -> &'c Value {
    let mounts = list(&c["volumeMounts"]);
    let found = mounts.iter().find(|m| m["mountPath"] == path);
    found.unwrap_or_else(|| panic!("Deployment: nothing is mounted at {path}"))
}

fn assert_selects(what: &str, selector: &Value, pod: &BTreeMap<&str, &str>) {
    let selector = labels(selector);
    let selects = selector.iter().all(|(k, v)| pod.get(k) == Some(v));
    let ok = selects && !selector.is_empty();
    assert!(ok, "{what}: {selector:?} does not select {pod:?}");
}

#[test]
fn the_configurations_validate_and_keep_secrets_out() {
    config("deploy/tongban.toml", &read("deploy/tongban.toml"));
    let trial = config(TRIAL, &read(TRIAL));
    for (what, c) in [(CONFIGMAP, k8s_config(&manifests())), (TRIAL, trial)] {
        assert_eq!(c.store_url, None, "{what}: the store is TONGBAN_STORE_URL");
        assert_eq!(c.mask_hash_key, None, "{what}: TONGBAN_MASK_HASH_KEY");
        assert_eq!(c.replica_id, None, "{what}: HOSTNAME names each replica");
        let store = c.object_store.as_ref().map(|s| s.url.as_str());
        let shared = store.is_some_and(|u| u.starts_with("s3://"));
        assert!(shared, "{what}: replicas share an s3:// [object_store]");
        ports(what, &c);
    }
}

#[test]
fn the_deployment_runs_the_configured_hub() {
    let m = manifests();
    let config = k8s_config(&m);
    let [api, flight, metrics] = ports(CONFIGMAP, &config);
    let pod = &one(&m, "Deployment")["spec"]["template"];
    let spec = &pod["spec"];
    let count = list(&spec["containers"]).len();
    assert_eq!(count, 1, "Deployment: one container, the hub");
    let c = &spec["containers"][0];
    let declared = container_ports(c);
    let numbers: BTreeSet<u16> = declared.iter().map(|p| p.1).collect();
    let wanted = BTreeSet::from([api, flight, metrics]);
    assert_eq!(numbers, wanted, "Deployment: containerPorts vs {CONFIGMAP}");

    let scheme = config.tls.as_ref().map_or("HTTP", |_| "HTTPS");
    let probes = [("readinessProbe", "/ready"), ("livenessProbe", "/health")];
    for (probe, path) in probes.into_iter().chain([("startupProbe", "/health")]) {
        if c[probe].is_null() && probe == "startupProbe" {
            continue;
        }
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "Deployment: {probe}.httpGet.path");
        let port = resolve(&declared, &get["port"]);
        assert_eq!(port, Some(api), "Deployment: {probe} not on the API");
        let actual = get["scheme"].as_str().unwrap_or("HTTP");
        assert_eq!(actual, scheme, "Deployment: {probe} vs [tls]");
    }

    let args = texts(&c["args"]);
    let config_path = arg_after(&args, "--config").expect("args: --config FILE");
    let config_mount = mounted(c, config_path);
    let cm = one(&m, "ConfigMap");
    let source = &volume(spec, text(&config_mount["name"]))["configMap"];
    let named = source["name"] == cm["metadata"]["name"];
    assert!(named, "Deployment: --config is not the ConfigMap");
    let key = text(&config_mount["subPath"]);
    let found = cm["data"].get(key).is_some();
    assert!(found, "Deployment: subPath {key:?} is not in the ConfigMap");

    let data_dir = config.data_dir.to_str().expect("data_dir is UTF-8");
    let scratch = &volume(spec, text(&mounted(c, data_dir)["name"]))["emptyDir"];
    assert!(scratch.is_object(), "Deployment: data_dir: no emptyDir");
    let read_only = &c["securityContext"]["readOnlyRootFilesystem"];
    assert_eq!(read_only, true, "Deployment: a read-only root filesystem");

    let env = list(&c["env"]);
    for var in env {
        let name = text(&var["name"]);
        let read = HUB_ENV.contains(&name);
        assert!(read, "Deployment: the hub ignores env {name}");
        let secret = &var["valueFrom"]["secretKeyRef"];
        let inline = secret.is_null() && !SECRET_ENV.contains(&name);
        let referred = secret["name"] == "tongban-secrets";
        let ok = inline || referred;
        assert!(ok, "Deployment: {name} is not from tongban-secrets");
    }
    for name in SECRET_ENV {
        let set = env.iter().any(|v| v["name"] == *name);
        assert!(set, "Deployment: env {name} is not set");
    }

    if let Some(tls) = &config.tls {
        let is_tls = |m: &&Value| {
            let volume = volume(spec, text(&m["name"]));
            volume["secret"]["secretName"] == "tongban-tls"
        };
        let mounts = list(&c["volumeMounts"]);
        let dir = mounts.iter().find(is_tls).map(|m| text(&m["mountPath"]));
        let dir = Path::new(dir.expect("Deployment: tongban-tls is not mounted"));
        let ca = tls.client_ca_file.as_ref();
        let files = [Some(&tls.cert_file), Some(&tls.key_file), ca];
        for file in files.into_iter().flatten() {
            let name = file.strip_prefix(dir).ok().and_then(Path::to_str);
            let known = name.is_some_and(|n| TLS_KEYS.contains(&n));
            assert!(known, "{CONFIGMAP}: {file:?} is not in tongban-tls");
        }
    }
    let scrape = &pod["metadata"]["annotations"]["prometheus.io/port"];
    let metrics = metrics.to_string();
    assert_eq!(scrape, metrics.as_str(), "Deployment: prometheus.io/port");
}

#[test]
fn services_and_the_disruption_budget_select_the_hub_pods() {
    let m = manifests();
    let d = one(&m, "Deployment");
    let pod = labels(&d["spec"]["template"]["metadata"]["labels"]);
    let name = pod.get("app.kubernetes.io/name");
    assert_eq!(name, Some(&"tongban"), "Deployment: app.kubernetes.io/name");
    assert_selects("Deployment", &d["spec"]["selector"]["matchLabels"], &pod);
    let declared = container_ports(&d["spec"]["template"]["spec"]["containers"][0]);
    let mut exposed = BTreeSet::new();
    for service in of_kind(&m, "Service") {
        let what = format!("Service {}", service["metadata"]["name"]);
        assert_selects(&what, &service["spec"]["selector"], &pod);
        for p in list(&service["spec"]["ports"]) {
            let mut target = &p["targetPort"];
            if target.is_null() {
                target = &p["port"];
            }
            let port = resolve(&declared, target);
            exposed.insert(port.unwrap_or_else(|| panic!("{what}: no port {target}")));
        }
    }
    let wanted = ports(CONFIGMAP, &k8s_config(&m));
    let all = wanted.iter().all(|p| exposed.contains(p));
    assert!(all, "{K8S}: Services expose {exposed:?}, not {wanted:?}");

    let pdb = one(&m, "PodDisruptionBudget");
    let selector = &pdb["spec"]["selector"]["matchLabels"];
    assert_selects("PodDisruptionBudget", selector, &pod);
    let min = pdb["spec"]["minAvailable"].as_u64();
    let replicas = d["spec"]["replicas"].as_u64();
    let drains = |(min, n): (u64, u64)| (1..n).contains(&min);
    let drains = min.zip(replicas).is_some_and(drains);
    assert!(drains, "PDB: minAvailable {min:?} of {replicas:?}");

    let kustomization = yaml(&format!("{K8S}/kustomization.yaml"));
    let resources = texts(&kustomization[0]["resources"]);
    let listed: BTreeSet<String> = resources.into_iter().map(String::from).collect();
    let files = manifest_files();
    assert_eq!(listed, files, "{K8S}/kustomization.yaml: resources");
}

/// nginx.conf as words; `{`, `}` and `;` are words of their own.
fn nginx_words(conf: &str) -> Vec<String> {
    let mut code = String::new();
    for line in conf.lines() {
        code.extend([line.split('#').next().unwrap_or_default(), "\n"]);
    }
    let code = code.replace('{', " { ").replace('}', " } ");
    let code = code.replace(';', " ; ");
    code.split_whitespace().map(String::from).collect()
}

/// The arguments of each statement that starts with `directive`.
fn statements<'w>(words: &'w [String], directive: &str) -> Vec<&'w [String]> {
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let start = i == 0 || matches!(words[i - 1].as_str(), "{" | "}" | ";");
        if start && w == directive {
            let rest = &words[i + 1..];
            let end = rest.iter().position(|w| w == "{" || w == ";");
            out.push(&rest[..end.unwrap_or(rest.len())]);
        }
    }
    out
}

/// The words inside each `upstream NAME { ... }` block.
fn upstreams(words: &[String]) -> Vec<&[String]> {
    let mut blocks = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if w == "upstream" && words.get(i + 2).is_some_and(|b| b == "{") {
            let block = &words[i + 3..];
            let end = block.iter().position(|w| w == "}");
            blocks.push(&block[..end.unwrap_or(block.len())]);
        }
    }
    blocks
}

fn port_of(addr: &str) -> u16 {
    let port = addr.rsplit_once(':').map_or(addr, |(_, p)| p);
    let port = port.parse();
    port.unwrap_or_else(|e| panic!("{addr:?}: no port: {e}"))
}

/// The host of `HOST:PORT` or of a URL like `postgres://user:pw@HOST:5432/db`.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split([':', '/']).next().unwrap_or(rest)
}

#[test]
fn compose_runs_two_hubs_behind_nginx() {
    let trial = config(TRIAL, &read(TRIAL));
    let [api, flight, _] = ports(TRIAL, &trial);
    let docs = yaml("deploy/compose.yaml");
    let all = &docs[0]["services"];
    let services = all.as_object().expect("deploy/compose.yaml: services");
    let deploy = repo().join("deploy");
    let same = |rel: &str, file: &str| {
        let want = deploy.join(file).canonicalize().expect("a file of deploy/");
        deploy.join(rel).canonicalize().is_ok_and(|p| p == want)
    };
    let hubs = services.iter().filter(|(_, s)| s["build"].is_object());
    let hubs: Vec<_> = hubs.collect();
    assert_eq!(hubs.len(), 2, "deploy/compose.yaml: two hubs with a build");
    let names: BTreeSet<&str> = hubs.iter().map(|h| h.0.as_str()).collect();
    let store = trial.object_store.as_ref();
    let endpoint = store.and_then(|s| s.endpoint.as_deref());
    for (name, hub) in hubs {
        let b = &hub["build"];
        let build = format!("{}/{}", text(&b["context"]), text(&b["dockerfile"]));
        let built = same(&build, "Containerfile");
        assert!(built, "compose {name}: builds {build}");
        let path = arg_after(&texts(&hub["command"]), "--config");
        let path = path.expect("compose: the hubs' command: --config FILE");
        let volumes = texts(&hub["volumes"]);
        let mut mounts = volumes.iter().map(|v| v.split(':').collect::<Vec<_>>());
        let mount = mounts.find(|v| v.get(1) == Some(&path));
        let mount = mount.unwrap_or_else(|| panic!("compose {name}: no {path}"));
        let file = same(mount[0], "compose/tongban.toml");
        let ro = file && mount.get(2) == Some(&"ro");
        assert!(ro, "compose {name}: {TRIAL}:{path}:ro");
        let hostname = &hub["hostname"];
        assert_eq!(hostname, name.as_str(), "compose {name}: hostname");
        let env = labels(&hub["environment"]);
        for var in env.keys() {
            let read = HUB_ENV.contains(var);
            assert!(read, "compose {name}: the hub ignores {var}");
        }
        let catalog = env.get("TONGBAN_STORE_URL").copied().unwrap_or_default();
        for dep in [url_host(catalog), url_host(endpoint.unwrap_or_default())] {
            let service = services.contains_key(dep);
            assert!(service, "deploy/compose.yaml: no service {dep:?}");
            let deps = &hub["depends_on"];
            let listed = deps.get(dep).is_some() || list(deps).iter().any(|d| d == dep);
            assert!(listed, "compose {name}: does not depend on {dep}");
        }
    }
    let postgres = text(&all["postgres"]["image"]);
    let pg = postgres.starts_with("postgres:");
    assert!(pg, "compose postgres: the image {postgres:?}");

    let nginx = &all["nginx"];
    let volumes = texts(&nginx["volumes"]);
    let at = ":/etc/nginx/nginx.conf:ro";
    let conf = volumes.iter().find_map(|v| v.strip_suffix(at));
    let conf = conf.is_some_and(|c| same(c, "nginx.conf"));
    assert!(conf, "compose nginx: mount deploy/nginx.conf:ro");
    let words = nginx_words(&read("deploy/nginx.conf"));
    let mut upstream_ports = BTreeSet::new();
    for block in upstreams(&words) {
        let servers = statements(block, "server").into_iter();
        let servers: Vec<&str> = servers.map(|s| s[0].as_str()).collect();
        let hosts: BTreeSet<&str> = servers.iter().map(|s| url_host(s)).collect();
        assert_eq!(hosts, names, "deploy/nginx.conf: an upstream's servers");
        upstream_ports.extend(servers.iter().map(|s| port_of(s)));
    }
    let to_api = upstream_ports.contains(&api);
    assert!(to_api, "deploy/nginx.conf: no upstream of {api}");
    let hub_ports = upstream_ports.is_subset(&BTreeSet::from([api, flight]));
    assert!(hub_ports, "deploy/nginx.conf: upstreams {upstream_ports:?}");
    let published = texts(&nginx["ports"]).into_iter().map(port_of);
    let published: BTreeSet<u16> = published.collect();
    for listen in statements(&words, "listen") {
        let port = port_of(&listen[0]);
        let open = published.contains(&port);
        assert!(open, "compose nginx: {port} is not published");
    }
}

/// The Containerfile's instructions, (INSTRUCTION, arguments), with
/// continuation lines joined and comments left out.
fn containerfile() -> Vec<(String, String)> {
    let (text, mut joined) = (read("deploy/Containerfile"), String::new());
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => joined.extend([part, " "]),
            None => joined.extend([line, "\n"]),
        }
    }
    let split = |l: &str| {
        let (op, args) = l.split_once(' ').unwrap_or((l, ""));
        (op.to_uppercase(), args.trim().to_string())
    };
    joined.lines().map(split).collect()
}

fn instruction<'o>(ops: &'o [(String, String)], op: &str) -> Vec<&'o str> {
    let ops = ops.iter().filter(|o| o.0 == op);
    ops.map(|o| o.1.as_str()).collect()
}

#[test]
fn the_containerfile_builds_the_hub_and_exposes_its_ports() {
    let ops = containerfile();
    let exposes = instruction(&ops, "EXPOSE");
    let words = exposes.iter().flat_map(|a| a.split_whitespace());
    let exposed: BTreeSet<u16> = words.map(|p| port_of(p.trim_end_matches("/tcp"))).collect();
    let m = manifests();
    let trial = config(TRIAL, &read(TRIAL));
    for (what, c) in [(CONFIGMAP, k8s_config(&m)), (TRIAL, trial)] {
        for port in ports(what, &c) {
            let ok = exposed.contains(&port);
            assert!(ok, "deploy/Containerfile: EXPOSE lacks {port} of {what}");
        }
    }

    let runs = instruction(&ops, "RUN");
    let build = runs.iter().find(|r| r.contains("cargo build")).copied();
    let build: Vec<&str> = build.unwrap_or_default().split_whitespace().collect();
    let package = build.windows(2).any(|w| w == ["-p", "tongban-hub"]);
    let release = build.contains(&"--release");
    let built = package && release;
    assert!(built, "deploy/Containerfile: no cargo build of tongban-hub");

    let toolchain: toml::Table = toml::from_str(&read("rust-toolchain.toml")).expect("TOML");
    let channel = toolchain["toolchain"]["channel"].as_str();
    let channel = channel.expect("rust-toolchain.toml: a channel");
    let from = instruction(&ops, "FROM");
    let image = from.first().and_then(|f| f.split_whitespace().next());
    let image = image.unwrap_or_default();
    let image = image.trim_start_matches("docker.io/library/");
    let tag = image.strip_prefix("rust:").unwrap_or_default();
    let pinned = tag == channel || tag.starts_with(&format!("{channel}-"));
    assert!(
        pinned,
        "deploy/Containerfile: {image} is not Rust {channel}"
    );

    let workspace: toml::Table = toml::from_str(&read("Cargo.toml")).expect("TOML");
    let copies = instruction(&ops, "COPY");
    let copied: Vec<&str> = copies.iter().flat_map(|a| a.split_whitespace()).collect();
    let members = workspace["workspace"]["members"].as_array();
    for member in members.into_iter().flatten() {
        let top = member.as_str().and_then(|m| m.split('/').next());
        let ok = copied.contains(&top.unwrap_or_default());
        assert!(ok, "deploy/Containerfile: no COPY of the member {member}");
    }

    // Exec form: SIGTERM reaches tongban itself, not a shell.
    let exec = |op: &str| -> Vec<String> {
        let last = instruction(&ops, op).last().copied().unwrap_or_default();
        let exec = serde_json::from_str(last);
        exec.unwrap_or_else(|e| panic!("deploy/Containerfile: {op} in exec form: {e}"))
    };
    let (entry, cmd) = (exec("ENTRYPOINT"), exec("CMD"));
    let tongban = entry.last().is_some_and(|e| e.ends_with("/tongban"));
    let serve = cmd.first().is_some_and(|c| c == "serve");
    let runs = tongban && serve;
    assert!(runs, "deploy/Containerfile: runs {entry:?} {cmd:?}");
    let users = instruction(&ops, "USER");
    let user = users.last().and_then(|u| u.split(':').next());
    let user = user.unwrap_or_default();
    let pod = &one(&m, "Deployment")["spec"]["template"]["spec"];
    let run_as = pod["securityContext"]["runAsUser"].as_u64();
    let root = user == "0" || user == "root";
    assert!(!root, "deploy/Containerfile: USER is root");
    let same = run_as.is_some_and(|u| u.to_string() == user);
    assert!(
        same,
        "deploy/Containerfile: USER {user}, runAsUser {run_as:?}"
    );
}

/// The `tongban_...` series names a PromQL expression uses.
fn metric_names(expr: &str) -> Vec<&str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = Vec::new();
    for (start, _) in expr.match_indices("tongban_") {
        if expr[..start].chars().next_back().is_some_and(word) {
            continue;
        }
        let len = expr[start..].find(|c: char| !word(c));
        names.push(&expr[start..start + len.unwrap_or(expr.len() - start)]);
    }
    names
}

/// The exported family of a series (a histogram's `_bucket`, `_sum` and
/// `_count` series belong to it).
fn family(series: &str) -> Option<&'static str> {
    let suffixes = ["_bucket", "_sum", "_count"];
    let histogram = suffixes.iter().find_map(|s| series.strip_suffix(s));
    let exact = DASHBOARD_METRICS.iter().find(|m| **m == series);
    let histogram = HISTOGRAMS.iter().find(|h| Some(**h) == histogram);
    exact.or(histogram).copied()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let file = "deploy/grafana/tongban-dashboard.json";
    let dash: Result<Value, _> = serde_json::from_str(&read(file));
    let dash = dash.unwrap_or_else(|e| panic!("{file}: {e}"));
    let inputs = list(&dash["__inputs"]);
    let input = inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS");
    assert!(input, "{file}: no DS_PROMETHEUS datasource input");
    let mut panels: Vec<&Value> = Vec::new();
    for p in list(&dash["panels"]) {
        match p["type"] == "row" {
            true => panels.extend(list(&p["panels"])),
            false => panels.push(p),
        }
    }
    assert!(!panels.is_empty(), "{file}: no panels");
    let (mut queries, mut ids) = (Vec::new(), BTreeSet::new());
    for p in panels {
        let title = text(&p["title"]);
        let unique = ids.insert(p["id"].to_string());
        assert!(unique, "{file}: {title:?}: a repeated id");
        let source = &p["datasource"]["uid"];
        assert_eq!(source, "${DS_PROMETHEUS}", "{file}: {title:?}: datasource");
        let targets = list(&p["targets"]);
        assert!(!targets.is_empty(), "{file}: {title:?} has no targets");
        for t in targets {
            let expr = text(&t["expr"]);
            assert!(!expr.trim().is_empty(), "{file}: {title:?}: an empty expr");
            queries.push((title, expr));
        }
    }
    for v in list(&dash["templating"]["list"]) {
        queries.push((text(&v["name"]), text(&v["definition"])));
    }
    let mut used = BTreeSet::new();
    for (title, expr) in queries {
        for name in metric_names(expr) {
            let exported = family(name);
            assert!(exported.is_some(), "{file}: {title:?}: no metric {name}");
            used.extend(exported);
        }
    }
    let unused = DASHBOARD_METRICS.iter().filter(|m| !used.contains(*m));
    let unused: Vec<_> = unused.collect();
    assert!(unused.is_empty(), "{file}: no panel shows {unused:?}");
}
