//! What several tests do over the API in the same way: needs found, granted
//! and revoked, negative entries added, subscriptions made and waited for,
//! and a newly published version waited for.

use super::{Hub, expect_json};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tongban_catalog::Store;
use tongban_catalog::lists::{Actor, ReviewAction};

/// How long a test waits for the hub's background work (a push, an index
/// refresh) before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

impl Hub {
    /// The id of `who`'s approved demo need in `mode` (the district's
    /// subscribe need carries its demo `residents` subscription).
    pub async fn approved_need(&self, who: &str, mode: &str) -> i64 {
        let needs = expect_json(self.get("/v1/lists/needs", who).send().await.unwrap(), 200).await;
        needs
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["mode"] == mode && n["status"] == "approved")
            .unwrap_or_else(|| panic!("{who} has an approved {mode} need: {needs}"))["id"]
            .as_i64()
            .unwrap()
    }

    /// Applies for a need as `who` (201) and has it approved: first by
    /// `provider` when one is named (through the catalog, for providers
    /// without a demo token), then by the data office over the API (200),
    /// which recompiles the policy before it answers. The need's id.
    pub async fn grant_need(&self, who: &str, application: &Value, provider: Option<&str>) -> i64 {
        let need = expect_json(
            self.post("/v1/lists/needs", who)
                .json(application)
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        let id = need["id"].as_i64().unwrap();
        if let Some(provider) = provider {
            self.store
                .review_need(
                    id,
                    Actor {
                        department: provider,
                        role: tongban_catalog::Role::Department,
                    },
                    ReviewAction::Approve,
                    "同意",
                )
                .await
                .unwrap();
        }
        expect_json(
            self.post(&format!("/v1/lists/needs/{id}/approve"), "data-office")
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        id
    }

    /// Revokes a need as the data office (200).
    pub async fn revoke_need(&self, need: i64) {
        expect_json(
            self.post(&format!("/v1/lists/needs/{need}/revoke"), "data-office")
                .json(&json!({"reason": "事项终止"}))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
    }

    /// Adds a negative-list entry as the data office (201); the entry as
    /// stored. The API recompiles the policy before it answers.
    pub async fn add_negative(&self, entry: &Value) -> Value {
        expect_json(
            self.post("/v1/lists/negative", "data-office")
                .json(entry)
                .send()
                .await
                .unwrap(),
            201,
        )
        .await
    }

    /// `POST /v1/subscriptions` as `who`: the answer, unchecked.
    pub async fn subscribe(&self, who: &str, body: &Value) -> reqwest::Response {
        self.post("/v1/subscriptions", who)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A subscription's status as `who` sees it (200).
    pub async fn subscription(&self, who: &str, id: i64) -> Value {
        expect_json(
            self.get(&format!("/v1/subscriptions/{id}"), who)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }

    /// Polls a subscription's status as `who` until `done` holds (at most
    /// 30 s) and returns it: how a test waits for a push to reach a
    /// version's cursor, or for a subscription to stop. A timeout fails
    /// the test with the last status and the deliveries.
    pub async fn wait_for_subscription(
        &self,
        who: &str,
        id: i64,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + PATIENCE;
        let last = loop {
            let s = self.subscription(who, id).await;
            if done(&s) {
                return s;
            }
            if Instant::now() > deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let deliveries = self
            .get(&format!("/v1/subscriptions/{id}/deliveries"), who)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        panic!("subscription {id}: timed out waiting for {what}: {last}\n{deliveries}");
    }

    /// Posts a lookup `body` to `path` as `who` until the answer is of
    /// dataset `version` (at most 30 s), and returns that answer: how a
    /// test knows a newly published version is served. An answer of another
    /// version must be 200, unless `not_yet` says its status only means
    /// "not yet" (an index still loading, a resource the policy does not
    /// know yet); any other fails the test.
    pub async fn post_until_version(
        &self,
        path: &str,
        who: &str,
        body: &Value,
        version: i64,
        not_yet: impl Fn(u16) -> bool,
    ) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let resp = self.post(path, who).json(body).send().await.unwrap();
            let status = resp.status().as_u16();
            if status == 200 || !not_yet(status) {
                let r = expect_json(resp, 200).await;
                if r["version"] == version {
                    return r;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{path}: version {version} was never served"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
