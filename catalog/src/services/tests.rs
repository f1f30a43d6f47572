use super::*;
use crate::model::{Category, Format, UpdateCycle};
use tongban_policies::{Sensitivity, ShareType};

fn item(name: &str, data_type: &str) -> DataItem {
    DataItem {
        name: name.into(),
        label: name.into(),
        data_type: data_type.into(),
        description: String::new(),
        sensitivity: Sensitivity::Internal,
        share_type: ShareType::Unconditional,
        share_condition: None,
        legal_basis: None,
        mask: None,
    }
}

fn resource() -> ResourceSpec {
    ResourceSpec {
        code: "302/000101".into(),
        name: "社保缴纳状态".into(),
        provider: "sh-rsj".into(),
        summary: String::new(),
        category: Category::Department,
        base_library: None,
        format: Format::SelfDescribing,
        update_cycle: UpdateCycle::Realtime,
        publish_date: None,
        key_items: vec![],
        division_item: None,
        items: vec![
            item("citizen_id", "Utf8"),
            item("paid_up", "Boolean"),
            item("months", "Int64"),
        ],
        status: None,
    }
}

fn service() -> ServiceSpec {
    serde_json::from_value(serde_json::json!({
        "base_url": "http://127.0.0.1:7301",
        "endpoints": [{
            "name": "status",
            "method": "GET",
            "path": "/contributions/{citizen_id}",
            "params": [{"item": "citizen_id", "in": "path", "key": "citizen_id"}],
            "response": [{"item": "paid_up", "pointer": "/paid_up", "required": true},
                         {"item": "months", "pointer": "/months"}]
        }]
    }))
    .unwrap()
}

#[test]
fn defaults_follow_the_documented_semantics() {
    let s = service();
    s.check(&resource()).unwrap();
    let ep = &s.endpoints[0];
    assert_eq!(ep.timeout_ms, 3_000);
    assert!(ep.is_idempotent(), "GET is idempotent by default");
    assert!(s.enabled);
    assert_eq!(s.breaker.failure_rate_pct, 50);
    assert_eq!(s.retry.budget_pct, 20);
}

#[test]
fn definitions_that_break_a_rule_name_the_field() {
    type Change = Box<dyn Fn(&mut ServiceSpec)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|s| s.base_url = "ftp://x".into()),
            "service.base_url",
        ),
        (
            Box::new(|s| s.endpoints[0].timeout_ms = 61_000),
            "service.endpoints[0].timeout_ms",
        ),
        (
            Box::new(|s| s.endpoints[0].response[0].item = "nope".into()),
            "service.endpoints[0].response[0].item",
        ),
        (
            Box::new(|s| s.endpoints[0].path = "/contributions/{id}".into()),
            "service.endpoints[0].params[0].in",
        ),
        (
            Box::new(|s| s.endpoints[0].params[0].item = "months".into()),
            "service.endpoints[0].params[0].in",
        ),
        (
            Box::new(|s| {
                s.endpoints[0].method = HttpMethod::Post;
                s.endpoints[0].cache_ttl_ms = Some(1000);
            }),
            "service.endpoints[0].cache_ttl_ms",
        ),
        (
            Box::new(|s| s.breaker.min_calls = 100),
            "service.breaker.min_calls",
        ),
        (
            Box::new(|s| s.tls.ca_pem = Some("x".into())),
            "service.tls.ca_pem",
        ),
        (
            Box::new(|s| s.endpoints.push(s.endpoints[0].clone())),
            "service.endpoints[1].name",
        ),
    ];
    for (change, field) in cases {
        let mut s = service();
        change(&mut s);
        match s.check(&resource()) {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an error at {field}, got {other:?}"),
        }
    }
}

#[test]
fn a_key_parameter_must_be_text() {
    let mut s = service();
    s.endpoints[0].params.push(Param {
        item: "months".into(),
        location: ParamIn::Query,
        required: false,
        key: Some(KeyKind::CitizenId),
    });
    let err = s.check(&resource()).unwrap_err().to_string();
    assert!(err.contains("a key is a text item"), "{err}");
}

#[test]
fn an_openapi_document_becomes_a_draft_for_review() {
    let doc = serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": "住房公积金缴存查询", "version": "1"},
        "servers": [{"url": "http://127.0.0.1:7303/"}],
        "paths": {
            "/deposits/{citizenId}": {"get": {
                "operationId": "getDepositStatus",
                "parameters": [{"name": "citizenId", "in": "path", "required": true,
                                "schema": {"type": "string"}, "description": "身份证号"}],
                "responses": {"200": {"content": {"application/json": {"schema":
                    {"$ref": "#/components/schemas/Deposit"}}}}}
            }}
        },
        "components": {"schemas": {"Deposit": {"type": "object", "properties": {
            "accountStatus": {"type": "string", "description": "账户状态"},
            "monthlyAmount": {"type": "number"},
            "lastPaid": {"type": "string", "format": "date"},
            "history": {"type": "array"}
        }}}}
    });
    let reg = from_openapi(
        &doc,
        DraftResource {
            code: "303/000201".into(),
            provider: "sh-gjj".into(),
            name: None,
        },
        None,
    )
    .unwrap();
    assert_eq!(reg.resource.name, "住房公积金缴存查询");
    assert_eq!(reg.resource.status, Some(Status::Draft));
    assert_eq!(reg.service.base_url, "http://127.0.0.1:7303");
    let ep = &reg.service.endpoints[0];
    assert_eq!(ep.name, "get-deposit-status");
    assert_eq!(ep.path, "/deposits/{citizen_id}");
    assert_eq!(ep.params[0].key, Some(KeyKind::CitizenId));
    let names: Vec<_> = ep.response.iter().map(|f| f.item.as_str()).collect();
    // Properties come in name order (serde_json keeps objects sorted).
    assert_eq!(names, ["account_status", "last_paid", "monthly_amount"]);
    let types: Vec<_> = reg
        .resource
        .items
        .iter()
        .map(|i| (i.name.as_str(), i.data_type.as_str(), i.share_type))
        .collect();
    assert!(types.contains(&("last_paid", "Date32", ShareType::Conditional)));
    assert!(types.contains(&("monthly_amount", "Float64", ShareType::Conditional)));

    let err = from_openapi(
        &serde_json::json!({"swagger": "2.0"}),
        DraftResource {
            code: "303/000201".into(),
            provider: "sh-gjj".into(),
            name: None,
        },
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("OpenAPI 3"), "{err}");
}
