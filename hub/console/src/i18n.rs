//! The console's labels: Simplified Chinese by default, English on request
//! (`/console/lang/en`). Data (names, reasons, legal bases) is shown as it
//! is stored; only the console's own words are translated.

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// The translator templates call: `{{ t.t("nav.directory") }}`.
#[derive(Debug, Clone, Copy)]
pub struct T(pub Lang);

impl T {
    /// The label of `key`; an unknown key shows as itself (a test checks
    /// that every key in the templates is known).
    pub fn t(&self, key: &str) -> &'static str {
        match LABELS.iter().find(|(k, _, _)| *k == key) {
            Some((_, zh, en)) => match self.0 {
                Lang::Zh => zh,
                Lang::En => en,
            },
            None => {
                tracing::warn!(key, "console label missing");
                "?"
            }
        }
    }

    /// `zh-CN` or `en`, for the page's `lang` attribute.
    pub fn code(&self) -> &'static str {
        match self.0 {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn is_en(&self) -> bool {
        self.0 == Lang::En
    }

    /// A label for an enum value stored as a word (`approved`, `base`, …).
    pub fn word(&self, kind: &str, word: &str) -> &'static str {
        let key = format!("{kind}.{word}");
        match LABELS.iter().find(|(k, _, _)| *k == key) {
            Some((_, zh, en)) => match self.0 {
                Lang::Zh => zh,
                Lang::En => en,
            },
            None => "",
        }
    }
}

/// (key, 中文, English)
pub const LABELS: &[(&str, &str, &str)] = &[
    ("app.name", "通办 数据共享交换平台", "Tongban exchange hub"),
    ("app.console", "管理控制台", "Console"),
    ("nav.directory", "数据资源目录", "Directory"),
    ("nav.needs", "需求清单", "Needs"),
    ("nav.subscriptions", "订阅", "Subscriptions"),
    ("nav.negative", "负面清单", "Negative list"),
    ("nav.responsibilities", "责任清单", "Responsibilities"),
    ("nav.compliance", "更新合规", "Compliance"),
    ("nav.stats", "交换统计", "Statistics"),
    ("nav.audit", "审计追溯", "Audit trace"),
    ("nav.logout", "退出", "Sign out"),
    ("nav.lang_other", "English", "中文"),
    ("role.data_office", "大数据中心", "data office"),
    ("role.department", "部门", "department"),
    ("login.title", "登录", "Sign in"),
    ("login.token", "访问令牌", "Access token"),
    (
        "login.hint",
        "使用本部门的访问令牌登录（演示令牌见 demo-credentials.json）。",
        "Sign in with your department's access token (demo tokens are in demo-credentials.json).",
    ),
    ("login.submit", "登录", "Sign in"),
    (
        "login.unknown",
        "令牌无效或已吊销",
        "unknown or revoked token",
    ),
    ("error.title", "出错了", "Error"),
    (
        "error.csrf",
        "表单已过期，请刷新页面后重试",
        "the form has expired; reload the page and try again",
    ),
    (
        "error.office_only",
        "仅大数据中心可以执行此操作",
        "only the data office may do this",
    ),
    ("error.back", "返回", "Back"),
    ("common.search", "搜索", "Search"),
    ("common.filter", "筛选", "Filter"),
    ("common.all", "全部", "All"),
    ("common.save", "保存", "Save"),
    ("common.cancel", "取消", "Cancel"),
    ("common.add", "添加", "Add"),
    ("common.delete", "删除", "Delete"),
    ("common.export", "导出", "Export"),
    ("common.import", "导入", "Import"),
    ("common.none", "无", "none"),
    ("common.yes", "是", "yes"),
    ("common.no", "否", "no"),
    ("common.previous", "上一页", "Previous"),
    ("common.next", "下一页", "Next"),
    ("common.total", "共", "Total"),
    ("common.saved", "已保存", "Saved"),
    ("common.error", "未保存：", "Not saved: "),
    ("common.id", "编号", "ID"),
    ("common.resource", "资源", "Resource"),
    ("common.items", "信息项", "Items"),
    ("common.matter", "事项", "Matter"),
    ("common.mode", "方式", "Mode"),
    ("common.status", "状态", "Status"),
    ("common.consumer", "使用方", "Consumer"),
    ("common.provider", "提供方", "Provider"),
    ("common.reason", "理由", "Reason"),
    ("common.time", "时间", "Time"),
    ("common.legal_basis", "法律依据", "Legal basis"),
    ("common.note", "说明", "Note"),
    ("common.file", "文件", "File"),
    ("common.format", "格式", "Format"),
    ("dir.title", "数据资源目录", "Resource directory"),
    (
        "dir.search_placeholder",
        "代码、名称、摘要或信息项",
        "code, name, summary or item",
    ),
    ("dir.code", "资源代码", "Code"),
    ("dir.name", "资源名称", "Name"),
    ("dir.category", "类别", "Category"),
    ("dir.base_library", "基础库", "Base library"),
    ("dir.share_type", "共享类型", "Share type"),
    ("dir.latest", "最新版本", "Latest version"),
    ("dir.freshness", "新鲜度", "Freshness"),
    ("dir.fresh", "按时更新", "on time"),
    ("dir.stale", "超期未更新", "late"),
    ("dir.no_sla", "无更新承诺", "no refresh promise"),
    ("dir.new", "登记新资源", "New resource"),
    ("dir.edit", "编辑", "Edit"),
    ("dir.summary", "摘要", "Summary"),
    ("dir.format", "资源格式", "Format"),
    ("dir.update_cycle", "更新周期", "Update cycle"),
    ("dir.publish_date", "发布日期", "Published"),
    ("dir.key_items", "主键信息项", "Key items"),
    (
        "dir.division_item",
        "区划信息项（回流）",
        "Division item (return flow)",
    ),
    ("dir.version", "目录版本", "Description version"),
    ("dir.items", "信息项", "Data items"),
    ("dir.item_name", "信息项名", "Item"),
    ("dir.item_label", "中文名称", "Label"),
    ("dir.data_type", "数据类型", "Type"),
    ("dir.sensitivity", "敏感级别", "Sensitivity"),
    (
        "dir.condition",
        "共享条件 / 法律依据",
        "Condition / legal basis",
    ),
    ("dir.mask", "脱敏方式", "Mask"),
    ("dir.versions", "数据版本", "Dataset versions"),
    ("dir.rows", "行数", "Rows"),
    ("dir.size", "大小", "Size"),
    ("dir.origin", "来源", "Origin"),
    ("dir.created", "发布时间", "Published at"),
    (
        "dir.items_help",
        "每行一个信息项；空行不保存。填写“无条件/有条件/不予共享”所需的条件或依据。",
        "One item per row; empty rows are ignored. Conditional items need a condition, items not shared a legal basis.",
    ),
    ("dir.more_rows", "增加空行", "More rows"),
    ("dir.description", "说明", "Description"),
    ("dir.key", "主键", "Key"),
    ("needs.title", "需求清单", "Needs list"),
    ("needs.queue", "待审查", "Review queue"),
    ("needs.due", "审查期限", "Due"),
    ("needs.overdue", "已超期", "overdue"),
    ("needs.apply", "申请共享需求", "Apply for a need"),
    ("needs.justification", "申请理由", "Justification"),
    ("needs.row_filter", "行过滤", "Row filter"),
    ("needs.quota", "每日限额", "Daily quota"),
    ("needs.clear_items", "明文信息项", "Items in clear"),
    ("needs.valid", "有效期", "Validity"),
    ("needs.submitted", "提交时间", "Submitted"),
    ("needs.history", "审查记录", "History"),
    ("needs.approve", "同意", "Approve"),
    ("needs.reject", "驳回", "Reject"),
    ("needs.revoke", "撤销", "Revoke"),
    (
        "needs.reason_required",
        "驳回和撤销须填写理由",
        "rejecting and revoking need a reason",
    ),
    (
        "needs.items_help",
        "用逗号分隔，如 citizen_id,name",
        "comma-separated, e.g. citizen_id,name",
    ),
    (
        "needs.mine_only",
        "本部门作为使用方或提供方的需求",
        "Needs your department is party to",
    ),
    ("needs.stage", "当前审查方", "Reviewer now"),
    ("needs.stage.provider", "提供方", "provider"),
    ("needs.stage.office", "大数据中心", "data office"),
    (
        "status.pending_provider",
        "待提供方答复",
        "pending provider",
    ),
    (
        "status.pending_office",
        "待大数据中心审核",
        "pending data office",
    ),
    ("status.approved", "已批准", "approved"),
    ("status.rejected", "已驳回", "rejected"),
    ("status.revoked", "已撤销", "revoked"),
    ("status.published", "已发布", "published"),
    ("status.draft", "草稿", "draft"),
    ("status.retired", "已停用", "retired"),
    ("status.active", "有效", "active"),
    ("status.stopped", "已停止", "stopped"),
    ("status.cancelled", "已取消", "cancelled"),
    ("mode.lookup", "查询", "lookup"),
    ("mode.verify", "核验", "verify"),
    ("mode.batch", "批量", "batch"),
    ("mode.subscribe", "订阅", "subscribe"),
    ("mode.call", "接口调用", "call"),
    ("nav.services", "接口共享", "Services"),
    (
        "svc.help",
        "部门业务系统的校验接口经平台调用：按三清单逐项控制、熔断与限流保护部门系统、每次调用留痕（请求与响应哈希）。",
        "Departments' validation APIs called through the hub: the lists decide item by item, a breaker and limits protect the department's system, every call is recorded with request and response hashes.",
    ),
    ("svc.endpoints", "接口端点", "Endpoints"),
    ("svc.health", "运行状况", "Health"),
    ("svc.breaker", "熔断器", "Breaker"),
    ("svc.calls", "调用", "Calls"),
    ("svc.ok", "成功", "Succeeded"),
    ("svc.failed", "失败", "Failed"),
    ("svc.timeouts", "超时", "Timeouts"),
    ("svc.refused", "拒绝", "Refused"),
    ("svc.cache_hits", "缓存命中", "Cache hits"),
    (
        "svc.latency",
        "时延 最小/平均/最大 (ms)",
        "Latency min/avg/max (ms)",
    ),
    ("svc.last_success", "最近成功", "Last success"),
    ("svc.last_failure", "最近失败", "Last failure"),
    ("svc.enabled", "已启用", "Enabled"),
    ("svc.disabled", "已停用", "Disabled"),
    ("svc.enable", "启用", "Enable"),
    ("svc.disable", "停用", "Disable"),
    ("svc.notice", "停用公告", "Notice to callers"),
    (
        "svc.register",
        "登记接口（JSON）",
        "Register a service (JSON)",
    ),
    (
        "svc.register_help",
        "{\"resource\": 资源及其信息项, \"service\": 接口定义}，格式见 docs/services.md。",
        "{\"resource\": the resource and its items, \"service\": the interface}; see docs/services.md.",
    ),
    (
        "svc.import",
        "从 OpenAPI 文档导入（草稿，待审核）",
        "Import from an OpenAPI document (a draft to review)",
    ),
    (
        "svc.document",
        "OpenAPI 3 文档（JSON）",
        "OpenAPI 3 document (JSON)",
    ),
    ("svc.base_url", "服务地址", "Base URL"),
    ("svc.none", "尚未登记接口。", "No services registered yet."),
    ("share.unconditional", "无条件共享", "unconditional"),
    ("share.conditional", "有条件共享", "conditional"),
    ("share.none", "不予共享", "not shared"),
    ("sensitivity.public", "公开", "public"),
    ("sensitivity.internal", "内部", "internal"),
    ("sensitivity.sensitive", "敏感", "sensitive"),
    (
        "sensitivity.highly_sensitive",
        "高度敏感",
        "highly sensitive",
    ),
    ("category.base", "基础", "base"),
    ("category.theme", "主题", "theme"),
    ("category.department", "部门", "department"),
    ("library.population", "人口库", "population"),
    ("library.legal_entity", "法人库", "legal entity"),
    ("library.geospatial", "空间地理库", "geospatial"),
    ("library.e_licence", "电子证照库", "e-licence"),
    ("neg.title", "负面清单", "Negative list"),
    (
        "neg.help",
        "列入负面清单的资源或信息项一律不予共享，优先于其他任何规则。",
        "Listed resources and items are never released, whatever else says so.",
    ),
    (
        "neg.items_help",
        "留空表示整个资源",
        "empty: the whole resource",
    ),
    ("neg.modes_help", "留空表示全部方式", "empty: every mode"),
    ("neg.consumers", "限定使用方", "Consumers"),
    (
        "neg.consumers_help",
        "留空表示所有部门",
        "empty: every department",
    ),
    ("neg.add", "新增负面清单条目", "Add an entry"),
    ("resp.title", "责任清单", "Responsibility list"),
    (
        "resp.help",
        "提供方承诺按时更新的数据资源。",
        "What providers promise to keep fresh.",
    ),
    ("resp.interval", "更新间隔（小时）", "Refresh every (hours)"),
    ("resp.delivery", "提供方式", "Delivery"),
    ("resp.add", "新增责任", "Add a duty"),
    ("comp.title", "更新合规", "Refresh compliance"),
    (
        "comp.help",
        "对照责任清单，检查各提供方是否按时发布新的数据版本。",
        "Who publishes new versions on time against the responsibility list.",
    ),
    ("comp.latest", "最近版本时间", "Latest version at"),
    ("comp.due", "应更新时间", "Due at"),
    ("comp.late_by", "超期", "Late by"),
    ("comp.on_time", "按时", "on time"),
    ("comp.late", "超期", "late"),
    ("stats.title", "交换统计", "Exchange statistics"),
    (
        "stats.own_only",
        "仅显示本部门的请求",
        "Your department's requests only",
    ),
    (
        "stats.over_time",
        "查询与核验次数（按时间）",
        "Lookups and verifications over time",
    ),
    ("stats.lookups", "查询", "lookups"),
    ("stats.verifies", "核验", "verifications"),
    ("stats.deliveries", "订阅交付", "deliveries"),
    ("stats.top_consumers", "使用最多的部门", "Top consumers"),
    ("stats.top_resources", "使用最多的资源", "Top resources"),
    ("stats.denials", "拒绝（按规则）", "Denials by rule"),
    ("stats.latency", "响应时延", "Latency"),
    ("stats.requests", "请求数", "Requests"),
    ("stats.released", "放行", "released"),
    ("stats.denied", "拒绝", "denied"),
    ("stats.sync_runs", "同步任务运行", "Sync runs"),
    ("stats.job", "任务", "Job"),
    ("stats.rows_read", "读取行数", "Rows read"),
    ("stats.rows_written", "写入行数", "Rows written"),
    ("stats.quarantined", "隔离行数", "Quarantined"),
    ("stats.outcome", "结果", "Outcome"),
    ("stats.duration", "耗时（秒）", "Duration (s)"),
    ("stats.no_data", "暂无数据", "no data yet"),
    ("stats.window", "统计区间", "Window"),
    ("audit.title", "审计追溯", "Audit trace"),
    ("nav.uses", "数据使用记录", "Data use"),
    ("nav.objections", "异议核实", "Objections"),
    (
        "objections.title",
        "异议核实与纠错",
        "Objections and corrections",
    ),
    (
        "objections.help",
        "对数据提出的异议：提出即在所有答复中标注“有异议”；提供方须在规定工作日内核实并更正或说明理由。逾期未处理的以红色标出。",
        "Objections to records: the items are marked disputed on every answer at once; the provider must verify and correct, or reject with a reason, within the working days allowed. Overdue ones are marked red.",
    ),
    ("objections.overdue", "已逾期", "overdue"),
    ("objections.key", "记录标识", "Record key"),
    ("objections.raised_by", "提出方", "Raised by"),
    ("objections.raised_at", "提出时间", "Raised"),
    ("objections.due", "处理期限", "Due"),
    ("objections.closed_at", "办结时间", "Closed"),
    ("objections.claimed", "认为正确的值", "Believed correct"),
    ("objections.evidence", "依据", "Evidence"),
    (
        "objections.for_subject",
        "代数据主体提出",
        "for the data subject",
    ),
    ("objections.actor", "办理方", "By"),
    ("objections.hub", "平台核验", "the hub's check"),
    ("objections.answer", "提供方答复", "The provider's answer"),
    ("objections.note", "说明", "Note"),
    (
        "objections.correcting",
        "确认有误，随下次更新更正",
        "Wrong: the fix comes with the next version",
    ),
    (
        "objections.reject",
        "驳回（须说明理由）",
        "Reject (reason required)",
    ),
    ("objection.open", "待核实", "open"),
    ("objection.correcting", "更正中", "correcting"),
    ("objection.corrected", "已更正", "corrected"),
    ("objection.rejected", "已驳回", "rejected"),
    ("mode.objection", "异议", "objection"),
    ("uses.title", "数据使用记录", "Data-use record"),
    (
        "uses.help",
        "输入公民身份号码或统一社会信用代码，查看与一网通办向本人展示的相同记录：哪个部门在何时为何事项使用了其数据。依法保密的使用在到期前不显示。",
        "Enter a citizen ID or credit code: the record the portal shows its owner — which department used the data, when, for which matter. Covert uses stay hidden until their date.",
    ),
    ("uses.record", "审计记录", "Audit record"),
    ("uses.older", "更早的记录", "Older uses"),
    ("mode.stream", "流式查询", "stream"),
    ("mode.data_use", "使用记录查询", "data-use query"),
    (
        "audit.help",
        "输入公民身份号码或统一社会信用代码，查看谁在何时为何事项查询过它。",
        "Enter a citizen ID or credit code: who looked it up, when, for which matter.",
    ),
    (
        "audit.key",
        "身份号码或信用代码",
        "Citizen ID or credit code",
    ),
    ("audit.case", "办件号", "Case"),
    ("audit.outcome", "结果", "Outcome"),
    ("audit.rule", "规则", "Rule"),
    ("audit.found", "条记录", "records"),
    ("audit.chain", "审计链完整性", "Chain integrity"),
    ("audit.intact", "完整", "intact"),
    ("audit.broken", "已损坏", "broken"),
    ("subs.title", "订阅", "Subscriptions"),
    ("subs.name", "订阅名称", "Name"),
    ("subs.channel", "交付通道", "Channel"),
    ("subs.cursor", "已交付版本", "Cursor"),
    ("subs.latest", "最新版本", "Latest"),
    ("subs.pending", "待交付", "Pending"),
    ("subs.last_error", "最近错误", "Last error"),
    ("subs.plan", "当前放行", "Released now"),
    ("subs.masked", "脱敏后放行", "released masked"),
    (
        "subs.filters",
        "行过滤（含回流）",
        "Row filters (incl. return flow)",
    ),
    (
        "subs.help",
        "订阅通过 Delta Sharing、Arrow Flight 读取，或由平台推送到 Webhook / 数据库。",
        "Subscriptions are read over Delta Sharing or Arrow Flight, or pushed to webhooks and databases.",
    ),
    (
        "subs.profile",
        "获取 Delta Sharing 配置文件：POST /v1/sharing/profile",
        "Delta Sharing profile: POST /v1/sharing/profile",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_key_is_unique_and_translated() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in LABELS {
            assert!(seen.insert(k), "duplicate label {k}");
            assert!(!zh.is_empty() && !en.is_empty(), "{k}");
        }
    }

    #[test]
    fn every_key_the_templates_use_is_known() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let keys: std::collections::HashSet<&str> = LABELS.iter().map(|(k, _, _)| *k).collect();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, _) in text.match_indices("t.t(\"") {
                let rest = &text[i + 5..];
                let key = &rest[..rest.find('"').unwrap()];
                assert!(
                    keys.contains(key),
                    "{}: unknown label {key}",
                    path.display()
                );
            }
        }
    }
}
