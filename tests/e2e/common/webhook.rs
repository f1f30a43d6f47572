//! A department's webhook endpoint, and what the hub pushed to it.

use super::{ndjson_lines, read_parquet};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request a [`Webhook`] accepted, as it arrived.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

/// What a push carries, once [opened](Pushed::open).
#[derive(Debug, Clone)]
pub struct Push {
    /// `tongban-version`: the dataset version delivered.
    pub version: i64,
    /// `tongban-kind`: `snapshot` or `changes`.
    pub kind: String,
    /// The rows, one JSON object each, whatever the body's format.
    pub rows: Vec<Value>,
}

/// A department's webhook endpoint. While up it accepts (204) every push
/// and keeps it, unchecked: tests [open](Pushed::open) what arrived. While
/// down it refuses (503) and only counts the attempts, as an endpoint in an
/// outage would.
#[derive(Clone)]
pub struct Webhook {
    /// Where the hub should push, `http://127.0.0.1:PORT/in`.
    pub url: String,
    pushed: Arc<Mutex<Vec<Pushed>>>,
    up: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Webhook {
    /// An endpoint that is up.
    pub async fn start() -> Webhook {
        Self::serve(true).await
    }

    /// An endpoint that is down until [`Webhook::come_up`].
    pub async fn start_down() -> Webhook {
        Self::serve(false).await
    }

    async fn serve(up: bool) -> Webhook {
        let hook = Webhook {
            url: String::new(),
            pushed: Arc::default(),
            up: Arc::new(AtomicBool::new(up)),
            refused: Arc::default(),
        };
        let state = hook.clone();
        let app = axum::Router::new().route(
            "/in",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
                let state = state.clone();
                async move {
                    if !state.up.load(Ordering::SeqCst) {
                        state.refused.fetch_add(1, Ordering::SeqCst);
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    state.pushed.lock().unwrap().push(Pushed { headers, body });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/in", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, ..hook }
    }

    /// From now on, accept pushes.
    pub fn come_up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// How many pushes were refused while down.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// What was accepted so far, in order.
    pub fn pushed(&self) -> Vec<Pushed> {
        self.pushed.lock().unwrap().clone()
    }
}

impl Pushed {
    /// The push's version, kind and rows, after asserting what a receiver
    /// relies on: `tongban-signature` signs the body with the
    /// subscription's `secret`, and `tongban-rows` counts the rows. The
    /// body is Parquet or NDJSON, as its content type says.
    pub fn open(&self, secret: &str) -> Push {
        let header = |name: &str| {
            self.headers[name]
                .to_str()
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let sig = header("tongban-signature");
        let t: i64 = sig.split(',').next().unwrap()["t=".len()..]
            .parse()
            .unwrap();
        assert_eq!(
            sig,
            tongban_delivery::push::signature(secret.as_bytes(), t, &self.body),
            "the body is signed with the subscription's secret"
        );
        let rows: Vec<Value> = if header("content-type") == "application/vnd.apache.parquet" {
            let mut w = arrow::json::ArrayWriter::new(Vec::new());
            for b in read_parquet(self.body.clone()) {
                w.write(&b).unwrap();
            }
            w.finish().unwrap();
            serde_json::from_slice::<Vec<Value>>(&w.into_inner()).unwrap_or_default()
        } else {
            ndjson_lines(std::str::from_utf8(&self.body).unwrap())
        };
        assert_eq!(
            header("tongban-rows"),
            rows.len().to_string(),
            "tongban-rows counts the rows"
        );
        Push {
            version: header("tongban-version").parse().unwrap(),
            kind: header("tongban-kind").into(),
            rows,
        }
    }
}
