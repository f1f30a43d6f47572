//! HTTPS with client certificates (mTLS): a registered certificate identifies
//! its department without a token; an unknown one does not; tokens still work.
//! Arrow Flight serves TLS with the same certificates and identities, as
//! `pyarrow.flight` sees it; a plaintext gRPC client gets nowhere.

use crate::common::local;
use std::sync::Arc;
use tongban_catalog::{Role, SqlStore, Store, TokenRecord};
use tongban_core::tls::TlsConfig;
use tongban_core::{Config, auth};
use tongban_datagen as datagen;
use tongban_server::Server;

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tongban test CA");
    let ca = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A certificate and key signed by the CA: (cert PEM, key PEM).
fn leaf(pki: &Pki, names: &[&str], client: bool) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn client_certificates_identify_departments() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (server_cert, server_key) = leaf(&pki, &["localhost", "127.0.0.1"], false);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        tls: Some(TlsConfig {
            cert_file: write("server.pem", &server_cert),
            key_file: write("server.key", &server_key),
            client_ca_file: Some(write("ca.pem", &pki.ca_pem)),
        }),
        flight_listen: Some("127.0.0.1:0".into()),
        ..Config::default()
    };
    let store = SqlStore::open_dir(&config.data_dir).await.unwrap();
    let options = datagen::Options {
        scale: 0.0005,
        seed: 3,
        progress: false,
    };
    datagen::run(&store, &local(&config.data_dir), options)
        .await
        .unwrap();
    let (client_cert, client_key) = leaf(&pki, &["sh-zwfw"], true);
    let cert_file = write("client.pem", &client_cert);
    let fingerprint = tongban_core::tls::fingerprint_of_file(&cert_file).unwrap();
    let token = auth::new_token();
    for (key, label) in [
        (auth::certificate_key(&fingerprint), "acceptance cert"),
        (auth::hash_token(&token), "gaj token"),
    ] {
        let department = if label.contains("cert") {
            "sh-zwfw"
        } else {
            "sh-gaj"
        };
        store
            .put_token(&TokenRecord {
                token_hash: key,
                department: department.into(),
                role: Role::Department,
                label: label.into(),
            })
            .await
            .unwrap();
    }
    // The acceptance office's token, for Flight without a certificate.
    let zwfw_token = auth::new_token();
    store
        .put_token(&TokenRecord {
            token_hash: auth::hash_token(&zwfw_token),
            department: "sh-zwfw".into(),
            role: Role::Department,
            label: "zwfw token".into(),
        })
        .await
        .unwrap();
    let server = Server::bind_with(&config, Arc::new(store) as Arc<dyn Store>)
        .await
        .unwrap();
    let url = format!("https://localhost:{}", server.local_addr().port());
    let flight_port = server.flight_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = rx.await;
    }));

    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let client = |identity: Option<(&str, &str)>| {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(ca.clone())
            .resolve("localhost", ([127, 0, 0, 1], 0).into());
        if let Some((cert, key)) = identity {
            b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    // A registered client certificate is an identity.
    let me: serde_json::Value = client(Some((&client_cert, &client_key)))
        .get(format!("{url}/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me,
        serde_json::json!({"department": "sh-zwfw", "role": "department"})
    );
    // A certificate from the same CA that nobody registered is not.
    let (stranger_cert, stranger_key) = leaf(&pki, &["stranger"], true);
    let resp = client(Some((&stranger_cert, &stranger_key)))
        .get(format!("{url}/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("not registered"),
        "{body}"
    );
    // Without a certificate: a token works, nothing does not; health is open.
    let plain = client(None);
    let me: serde_json::Value = plain
        .get(format!("{url}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["department"], "sh-gaj");
    assert_eq!(
        plain
            .get(format!("{url}/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        plain
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A certificate from another CA fails the handshake.
    let other = self::pki();
    let (alien_cert, alien_key) = leaf(&other, &["alien"], true);
    assert!(
        client(Some((&alien_cert, &alien_key)))
            .get(format!("{url}/health"))
            .send()
            .await
            .is_err()
    );

    // Flight over TLS, as pyarrow sees it. The index loads first.
    let key = loop {
        let people = plain
            .post(format!("{url}/v1/lookup/101/000001"))
            .bearer_auth(&zwfw_token)
            .json(
                &serde_json::json!({"keys": ["11010519491231002X"], "items": ["gender"],
                                      "matter": "310000-JZZ-001", "case": "T-0"}),
            )
            .send()
            .await
            .unwrap();
        if people.status() != 503 {
            assert_eq!(people.status(), 200);
            break "11010519491231002X";
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let args = serde_json::json!({
        "url": format!("grpc+tls://localhost:{flight_port}"),
        "ca": write("flight-ca.pem", &pki.ca_pem),
        "cert": write("flight-client.pem", &client_cert),
        "key": write("flight-client.key", &client_key),
        "stranger_cert": write("flight-stranger.pem", &stranger_cert),
        "stranger_key": write("flight-stranger.key", &stranger_key),
        "token": zwfw_token,
        "cmd": {"resource": "101/000001", "matter": "310000-JZZ-001", "case": "T-1", "items": ["gender"]},
        "keys": [key],
    });
    let script = crate::common::repo().join("tests/python/flight_tls.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::python_clients::python())
            .arg(script)
            .arg(args.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "pyarrow over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The certificate and the token both speak for the acceptance office;
    // neither finds a key that is not in the data.
    for who in ["certificate", "token"] {
        assert_eq!(
            got[who]["ok"]["found"],
            serde_json::json!([false]),
            "{who}: {got}"
        );
    }
    for who in ["nothing", "stranger"] {
        assert_eq!(
            got[who]["error"], "FlightUnauthenticatedError",
            "{who}: {got}"
        );
    }
    // A plaintext gRPC client reaches nothing on the TLS port.
    let plaintext =
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{flight_port}"))
            .unwrap()
            .connect()
            .await;
    if let Ok(channel) = plaintext {
        let mut fl = arrow_flight::FlightClient::new(channel);
        fl.add_header("authorization", &format!("Bearer {token}"))
            .unwrap();
        assert!(fl.list_flights(bytes::Bytes::new()).await.is_err());
    }
    let _ = tx.send(());
}

/// TLS toward a provider: the provider's system is itself an HTTPS hub that
/// trusts only a private CA and identifies callers by client certificate
/// (`GET /v1/me` answers who it saw). A service with the CA and the hub's
/// client identity reaches it and is seen as the department the certificate
/// is registered to; without the identity the provider refuses (its 401 is
/// a `provider_error` with `provider_status`); without the CA the handshake
/// fails; an unusable CA or identity file is refused at registration, and
/// nothing is saved.
#[tokio::test]
async fn services_reach_providers_over_tls_with_a_private_ca_and_a_client_certificate() {
    use serde_json::{Value, json};
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (server_cert, server_key) = leaf(&pki, &["localhost", "127.0.0.1"], false);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // The provider: an HTTPS hub with client certificates.
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("provider"),
        tls: Some(TlsConfig {
            cert_file: write("server.pem", &server_cert),
            key_file: write("server.key", &server_key),
            client_ca_file: Some(write("ca.pem", &pki.ca_pem)),
        }),
        ..Config::default()
    };
    let store = SqlStore::open_dir(&config.data_dir).await.unwrap();
    let (client_cert, client_key) = leaf(&pki, &["tongban-hub"], true);
    let identity = write("hub-identity.pem", &format!("{client_cert}{client_key}"));
    let fingerprint =
        tongban_core::tls::fingerprint_of_file(&write("hub-client.pem", &client_cert)).unwrap();
    datagen::run(
        &store,
        &local(&config.data_dir),
        datagen::Options {
            scale: 0.0005,
            seed: 3,
            progress: false,
        },
    )
    .await
    .unwrap();
    store
        .put_token(&TokenRecord {
            token_hash: auth::certificate_key(&fingerprint),
            department: "sh-gaj".into(),
            role: Role::Department,
            label: "the exchange hub's certificate".into(),
        })
        .await
        .unwrap();
    let provider = Server::bind_with(&config, Arc::new(store) as Arc<dyn Store>)
        .await
        .unwrap();
    let base_url = format!("https://127.0.0.1:{}", provider.local_addr().port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(provider.serve(async {
        let _ = rx.await;
    }));

    // The exchange hub, and a service on the provider's `GET /v1/me`.
    let hub = crate::common::Hub::start(None).await;
    let registration = |code: &str, tls: Value| {
        json!({
            "resource": {
                "code": code, "name": "调用方身份核验接口", "provider": "sh-gaj",
                "category": "department", "format": "self_describing",
                "update_cycle": "realtime", "status": "published",
                "items": [
                    {"name": "department", "label": "部门", "data_type": "Utf8",
                     "sensitivity": "public", "share_type": "unconditional"},
                    {"name": "role", "label": "角色", "data_type": "Utf8",
                     "sensitivity": "public", "share_type": "unconditional"}
                ]
            },
            "service": {
                "base_url": base_url, "tls": tls,
                "endpoints": [{
                    "name": "whoami", "method": "GET", "path": "/v1/me",
                    "response": [{"item": "department", "pointer": "/department", "required": true},
                                 {"item": "role", "pointer": "/role"}],
                    "timeout_ms": 2000
                }],
                "retry": {"max_attempts": 1}
            }
        })
    };
    let register = |body: Value| {
        let hub = &hub;
        async move {
            let r = hub
                .post("/v1/services", "data-office")
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let call = |code: &str| {
        let hub = &hub;
        let path = format!("/v1/call/{code}/whoami");
        async move {
            let r = hub
                .post(&path, "acceptance")
                .json(&json!({"matter": "310000-TLS-001", "case": "TLS-1"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let full = json!({"ca_pem": pki.ca_pem, "client_identity_file": identity});
    let (status, body) = register(registration("302/000911", full)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call("302/000911").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"department": "sh-gaj", "role": "department"}),
        "the provider saw the hub's client certificate"
    );

    let (status, _) = register(registration("302/000912", json!({"ca_pem": pki.ca_pem}))).await;
    assert_eq!(status, 201);
    let (status, body) = call("302/000912").await;
    assert_eq!(
        (status, &body["code"]),
        (502, &json!("provider_error")),
        "{body}"
    );
    assert_eq!(
        body["provider_status"], 401,
        "no client certificate: {body}"
    );

    let (status, _) = register(registration("302/000913", json!({}))).await;
    assert_eq!(status, 201);
    let (status, body) = call("302/000913").await;
    assert_eq!(
        (status, &body["code"]),
        (502, &json!("provider_error")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "the private CA is not trusted without ca_pem: {body}"
    );

    for (code, tls) in [
        (
            "302/000914",
            json!({"ca_pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}),
        ),
        (
            "302/000915",
            json!({"client_identity_file": dir.path().join("missing.pem")}),
        ),
    ] {
        let (status, body) = register(registration(code, tls)).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], "service.tls", "{body}");
        let r = hub
            .get(&format!("/v1/services/{code}"), "data-office")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "nothing saved for {code}");
    }
    let _ = tx.send(());
}
