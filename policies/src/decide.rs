//! The decision point: [`PolicySet::decide`] answers, for one request, which
//! items may be released, how, and by which rule. Semantics (DESIGN §4), in
//! this order for every requested item:
//!
//! 1. the consumer must be registered, the resource known and published, and
//!    the request must name its matter;
//! 2. a negative-list entry that bars the item wins over everything else;
//! 3. share type `none` is never released;
//! 4. `conditional` needs an approved, unexpired need of this consumer for
//!    this resource, matter and mode that covers the item; `unconditional`
//!    goes to any registered department, under such a need's obligations if
//!    one covers it;
//! 5. verification releases match / no-match only, never values; otherwise the
//!    item's directory mask applies unless the need lists it as clear;
//! 6. return flow (回流): a bulk release (`batch`, `subscribe`) to a district
//!    or street department of a resource whose rows carry a division code
//!    keeps only the rows of the consumer's own division — a row filter added
//!    to the needs' filters.
//!
//! A policy set is compiled once from the lists and then read by every
//! request: no locks, no allocation beyond the decision itself.

use crate::enforce::{Reveal, RowFilter};
use crate::lists::{Mode, Need, NeedStatus, PolicyInput};
use crate::vocab::ShareType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One request, as the hub sees it after identifying the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub consumer: &'a str,
    pub resource: &'a str,
    /// Items asked for; empty asks for every item of the resource.
    pub items: &'a [String],
    pub matter: &'a str,
    pub mode: Mode,
    /// The request's time: decisions read no clock.
    pub now: DateTime<Utc>,
}

/// The rule that decided an item (or a whole request). Its text form is a
/// stable identifier: `negative:3`, `need:12`, `share_type_none`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    UnknownConsumer,
    UnknownResource,
    ResourceNotPublished,
    MissingMatter,
    UnknownItem,
    /// A negative-list entry (its id).
    Negative(i64),
    /// The item's share type is `none`.
    NotShared,
    /// No need in force covers a conditional item.
    NoNeed,
    /// An unconditional item released without a need.
    Unconditional,
    /// Released under this need.
    Need(i64),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::UnknownConsumer => f.write_str("unknown_consumer"),
            Rule::UnknownResource => f.write_str("unknown_resource"),
            Rule::ResourceNotPublished => f.write_str("resource_not_published"),
            Rule::MissingMatter => f.write_str("missing_matter"),
            Rule::UnknownItem => f.write_str("unknown_item"),
            Rule::Negative(id) => write!(f, "negative:{id}"),
            Rule::NotShared => f.write_str("share_type_none"),
            Rule::NoNeed => f.write_str("no_need"),
            Rule::Unconditional => f.write_str("unconditional"),
            Rule::Need(id) => write!(f, "need:{id}"),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a consumer gets of a permitted item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "mask")]
pub enum Release {
    /// The value itself.
    Clear,
    /// The value under this mask.
    Masked(crate::mask::Mask),
    /// Only whether a claimed value matches (verification).
    MatchOnly,
}

impl Release {
    /// How the value column is revealed, or `None` when no value leaves.
    pub fn reveal(self) -> Option<Reveal> {
        match self {
            Release::Clear => Some(Reveal::Clear),
            Release::Masked(m) => Some(Reveal::Masked(m)),
            Release::MatchOnly => None,
        }
    }
}

/// The decision for one requested item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemDecision {
    pub item: String,
    /// `None` when the item is denied.
    pub release: Option<Release>,
    pub rule: Rule,
    /// Why, in words a department can act on.
    pub reason: String,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// At least one item is released.
    pub permitted: bool,
    /// The deciding rule: the first need used, `unconditional`, or — when
    /// nothing is released — the first denial's rule.
    pub rule: Rule,
    /// Per requested item, in request order.
    pub items: Vec<ItemDecision>,
    /// Rows the consumer may see: all filters hold (from the needs used).
    pub row_filters: Vec<RowFilter>,
    /// The smallest daily quota of the needs used.
    pub daily_quota: Option<u32>,
}

impl Decision {
    /// The released items with how they are revealed (verification excluded).
    pub fn projection(&self) -> Vec<(&str, Reveal)> {
        self.items
            .iter()
            .filter_map(|d| Some((d.item.as_str(), d.release?.reveal()?)))
            .collect()
    }

    fn denied_all(items: &[String], rule: Rule, reason: String) -> Decision {
        Decision {
            permitted: false,
            rule,
            items: items
                .iter()
                .map(|i| ItemDecision {
                    item: i.clone(),
                    release: None,
                    rule,
                    reason: reason.clone(),
                })
                .collect(),
            row_filters: Vec::new(),
            daily_quota: None,
        }
    }
}

struct CompiledResource {
    published: bool,
    /// The item with each row's division code, for return flow.
    division_item: Option<String>,
    items: Vec<crate::lists::ItemPolicy>,
    by_name: HashMap<String, usize>,
    /// Negative entries on this resource (by index into `PolicySet::negatives`).
    negatives: Vec<usize>,
}

/// The lists compiled for fast decisions.
pub struct PolicySet {
    departments: HashSet<String>,
    resources: HashMap<String, CompiledResource>,
    /// consumer → resource → needs, by id.
    needs: HashMap<String, HashMap<String, Vec<Need>>>,
    negatives: Vec<crate::lists::NegativeEntry>,
    /// District and street departments → their division code (return flow).
    divisions: HashMap<String, String>,
}

impl PolicySet {
    /// Compiles the lists. Entries that name unknown resources or items stay
    /// inert: they can release nothing.
    pub fn compile(input: PolicyInput) -> PolicySet {
        let mut resources: HashMap<String, CompiledResource> = input
            .resources
            .into_iter()
            .map(|r| {
                let by_name = r
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| (it.name.clone(), i))
                    .collect();
                (
                    r.code,
                    CompiledResource {
                        published: r.published,
                        division_item: r.division_item,
                        items: r.items,
                        by_name,
                        negatives: Vec::new(),
                    },
                )
            })
            .collect();
        let mut negatives = input.negatives;
        negatives.sort_by_key(|n| n.id);
        for (i, n) in negatives.iter().enumerate() {
            if let Some(r) = resources.get_mut(&n.resource) {
                r.negatives.push(i);
            }
        }
        let mut needs: HashMap<String, HashMap<String, Vec<Need>>> = HashMap::new();
        for need in input.needs {
            needs
                .entry(need.consumer.clone())
                .or_default()
                .entry(need.resource.clone())
                .or_default()
                .push(need);
        }
        // Lowest id first, so that ties resolve the same way whatever the input order.
        for per_resource in needs.values_mut() {
            for list in per_resource.values_mut() {
                list.sort_by_key(|n| n.id);
            }
        }
        PolicySet {
            departments: input.departments.into_iter().collect(),
            resources,
            needs,
            negatives,
            divisions: input.divisions.into_iter().collect(),
        }
    }

    /// Decides a request. Pure: the same set and request give the same decision.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let all_items: Vec<String>;
        let Some(resource) = self.resources.get(req.resource) else {
            return Decision::denied_all(
                req.items,
                Rule::UnknownResource,
                format!("resource '{}' is not in the directory", req.resource),
            );
        };
        let items = if req.items.is_empty() {
            all_items = resource.items.iter().map(|i| i.name.clone()).collect();
            &all_items[..]
        } else {
            req.items
        };
        if !self.departments.contains(req.consumer) {
            return Decision::denied_all(
                items,
                Rule::UnknownConsumer,
                format!("'{}' is not a registered department", req.consumer),
            );
        }
        if !resource.published {
            return Decision::denied_all(
                items,
                Rule::ResourceNotPublished,
                format!("resource '{}' is not published", req.resource),
            );
        }
        if req.matter.trim().is_empty() {
            return Decision::denied_all(
                items,
                Rule::MissingMatter,
                "every request must name the matter (事项) it serves".to_string(),
            );
        }
        let needs: &[Need] = self
            .needs
            .get(req.consumer)
            .and_then(|m| m.get(req.resource))
            .map_or(&[], Vec::as_slice);
        let usable =
            |n: &&Need| n.matter == req.matter && n.serves(req.mode) && n.in_force(req.now);

        let mut decisions = Vec::with_capacity(items.len());
        let mut used: Vec<&Need> = Vec::new();
        for name in items {
            let decision = match resource.by_name.get(name.as_str()) {
                None => ItemDecision {
                    item: name.clone(),
                    release: None,
                    rule: Rule::UnknownItem,
                    reason: format!("'{}' has no item '{name}'", req.resource),
                },
                Some(&idx) => {
                    let item = &resource.items[idx];
                    self.decide_item(
                        req,
                        resource,
                        item,
                        needs.iter().filter(usable).find(|n| n.items.contains(name)),
                        &mut used,
                    )
                }
            };
            decisions.push(decision);
        }
        let permitted = decisions.iter().any(|d| d.release.is_some());
        let rule = if permitted {
            used.first()
                .map_or(Rule::Unconditional, |n| Rule::Need(n.id))
        } else {
            decisions.first().map_or(Rule::NoNeed, |d| d.rule)
        };
        let mut row_filters: Vec<RowFilter> = Vec::new();
        for f in used.iter().filter_map(|n| n.row_filter.as_ref()) {
            if !row_filters.contains(f) {
                row_filters.push(f.clone());
            }
        }
        if let Some(filter) = self.return_flow(req, resource)
            && permitted
            && !row_filters.contains(&filter)
        {
            row_filters.push(filter);
        }
        let daily_quota = used.iter().filter_map(|n| n.daily_quota).min();
        Decision {
            permitted,
            rule,
            items: decisions,
            row_filters,
            daily_quota,
        }
    }

    /// The return-flow row filter of a bulk request by a district or street
    /// department: rows whose division item starts with its division code.
    fn return_flow(&self, req: &Request<'_>, resource: &CompiledResource) -> Option<RowFilter> {
        if !matches!(req.mode, Mode::Batch | Mode::Subscribe) {
            return None;
        }
        Some(RowFilter {
            item: resource.division_item.clone()?,
            op: crate::enforce::FilterOp::Prefix(self.divisions.get(req.consumer)?.clone()),
        })
    }

    fn decide_item<'s>(
        &'s self,
        req: &Request<'_>,
        resource: &CompiledResource,
        item: &crate::lists::ItemPolicy,
        need: Option<&'s Need>,
        used: &mut Vec<&'s Need>,
    ) -> ItemDecision {
        let deny = |rule, reason| ItemDecision {
            item: item.name.clone(),
            release: None,
            rule,
            reason,
        };
        if let Some(n) = resource
            .negatives
            .iter()
            .map(|&i| &self.negatives[i])
            .find(|n| n.bars(&item.name, req.consumer, req.mode))
        {
            return deny(
                Rule::Negative(n.id),
                format!("on the negative list (entry {}): {}", n.id, n.legal_basis),
            );
        }
        if item.share_type == ShareType::None {
            return deny(
                Rule::NotShared,
                format!("'{}' is not shared (share type none)", item.name),
            );
        }
        let (rule, reason) = match (need, item.share_type) {
            (Some(n), _) => {
                if !used.iter().any(|u| u.id == n.id) {
                    used.push(n);
                }
                (
                    Rule::Need(n.id),
                    format!("released under need {} for matter {}", n.id, n.matter),
                )
            }
            (None, ShareType::Unconditional) => (
                Rule::Unconditional,
                "unconditionally shared, for a stated matter".to_string(),
            ),
            (None, _) => return deny(Rule::NoNeed, self.why_no_need(req, &item.name)),
        };
        let release = if req.mode == Mode::Verify {
            Release::MatchOnly
        } else if need.is_some_and(|n| n.clear_items.contains(&item.name)) {
            Release::Clear
        } else {
            item.mask.map_or(Release::Clear, Release::Masked)
        };
        ItemDecision {
            item: item.name.clone(),
            release: Some(release),
            rule,
            reason,
        }
    }

    /// Explains a missing need by the nearest miss among the consumer's needs.
    fn why_no_need(&self, req: &Request<'_>, item: &str) -> String {
        let needs = self
            .needs
            .get(req.consumer)
            .and_then(|m| m.get(req.resource));
        let candidates: Vec<&Need> = needs
            .into_iter()
            .flatten()
            .filter(|n| n.items.iter().any(|i| i == item))
            .collect();
        let exact = |n: &&&Need| n.matter == req.matter && n.serves(req.mode);
        if let Some(n) = candidates.iter().find(exact) {
            return match n.status {
                NeedStatus::PendingProvider | NeedStatus::PendingOffice => {
                    format!(
                        "need {} covers '{item}' but is still under review ({})",
                        n.id, n.status
                    )
                }
                NeedStatus::Rejected => format!("need {} covering '{item}' was rejected", n.id),
                NeedStatus::Revoked => format!("need {} covering '{item}' was revoked", n.id),
                NeedStatus::Approved if n.valid_from > req.now => {
                    format!(
                        "need {} covering '{item}' is valid only from {}",
                        n.id,
                        n.valid_from.to_rfc3339()
                    )
                }
                NeedStatus::Approved => format!(
                    "need {} covering '{item}' expired at {}",
                    n.id,
                    n.valid_until.map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
            };
        }
        if let Some(n) = candidates.iter().find(|n| n.matter == req.matter) {
            return format!(
                "need {} covers '{item}' for mode {}, not {}",
                n.id, n.mode, req.mode
            );
        }
        if let Some(n) = candidates.first() {
            return format!(
                "need {} covers '{item}' for matter {}, not {}",
                n.id, n.matter, req.matter
            );
        }
        format!(
            "'{item}' is conditionally shared: {} needs an approved need for {} covering it (matter {}, mode {})",
            req.consumer, req.resource, req.matter, req.mode
        )
    }
}
