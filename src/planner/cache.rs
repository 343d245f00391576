//! Read plans kept for reuse, and the statements of creates: building a statement
//! (field tree, permission predicates, sea-query rendering) costs more than everything else
//! rectus does for a simple read, and clients send the same few query shapes over and over.
//!
//! A plan is reused only for the same data model and permissions (the generation), the
//! same caller as the planner sees them (admin flag, policies, user, role and the user and
//! role fields permission rules read), the same query, and the same number of keys. Keys
//! are the only values that change between reuses: the plan is built with stand-ins for
//! them, and each reuse puts the real keys where the stand-ins are. A plan that read the
//! clock (`$NOW`) is never kept.

use std::sync::Arc;

use rectus_policies::value::Scalar;
use sea_query::{Expr, SelectStatement};

use super::query::Query;
use super::read::{PlanContext, ReadPlan, plan_created_read, plan_read};
use super::write::sea_value;
use crate::db::{DbValue, Stmt};
use crate::error::ApiError;

/// Plans kept at once.
const CACHED_PLANS: u64 = 4096;

/// Reads of more keys than this (batches read back after a write) are planned afresh: their
/// plans are big and their key counts many, so keeping them would only cost memory.
const MOST_KEYS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    generation: u64,
    caller: String,
    collection: String,
    query: String,
    keys: usize,
}

/// Where a key goes: statement (0 data, 1 total count, 2 filter count), value index, key.
#[derive(Debug, Clone, Copy)]
struct Slot {
    statement: usize,
    value: usize,
    key: usize,
}

struct Template {
    plan: ReadPlan,
    slots: Vec<Slot>,
}

/// Statement `i` of a plan: 0 data, 1 total count, 2 filter count.
fn statement(plan: &mut ReadPlan, i: usize) -> Option<&mut Stmt> {
    match i {
        0 => Some(&mut plan.data),
        1 => plan.total_count.as_mut(),
        _ => plan.filter_count.as_mut(),
    }
}

pub struct PlanCache {
    plans: moka::sync::Cache<PlanKey, Arc<Template>>,
    /// Statements of creates of one item, with the read folded into them.
    creates: moka::sync::Cache<PlanKey, Arc<Shaped>>,
}

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache {
            plans: moka::sync::Cache::new(CACHED_PLANS),
            creates: moka::sync::Cache::new(CACHED_PLANS),
        }
    }
}

/// Writers of values into a cache key: every string and JSON value is written with its
/// length before it, so no value can run into the next and two different inputs never
/// write the same key. (Written by hand: `Debug` formatting of the caller and the query
/// was about 5% of a cached read's CPU.)
pub(crate) mod key {
    use std::fmt::Write as _;

    use serde_json::Value as Json;

    /// `n` in decimal, between `open` and `close` (pushed digit by digit: `write!` went
    /// through the formatting machinery, 1.4% of a cached read's CPU).
    pub fn count(key: &mut String, open: char, n: usize, close: char) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        key.push(open);
        digits[at..].iter().for_each(|d| key.push(char::from(*d)));
        key.push(close);
    }

    pub fn text(key: &mut String, s: &str) {
        count(key, '<', s.len(), ':');
        key.push_str(s);
    }

    pub fn texts(key: &mut String, list: &[String]) {
        count(key, '[', list.len(), ']');
        list.iter().for_each(|s| text(key, s));
    }

    pub fn optional(key: &mut String, s: Option<&str>) {
        match s {
            None => key.push('-'),
            Some(s) => {
                key.push('+');
                text(key, s);
            }
        }
    }

    pub fn json(key: &mut String, value: Option<&Json>) {
        optional(key, value.map(Json::to_string).as_deref());
    }

    pub fn number(key: &mut String, n: Option<i64>) {
        match n {
            None => key.push('-'),
            Some(n) => {
                let _ = write!(key, "{n};");
            }
        }
    }

    pub fn pairs<'a>(key: &mut String, pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) {
        count(key, '{', pairs.len(), '}');
        for (a, b) in pairs {
            text(key, a);
            text(key, b);
        }
    }
}

/// What of the caller a plan depends on, as text no two different callers share.
fn caller_key(ctx: &PlanContext) -> String {
    let a = &ctx.caller.accountability;
    let v = &ctx.caller.variables;
    let mut k = String::with_capacity(128);
    k.push(if a.admin { 'A' } else { 'a' });
    k.push(if a.app { 'P' } else { 'p' });
    key::texts(&mut k, &a.policies);
    key::optional(&mut k, v.user.as_deref());
    key::optional(&mut k, v.role.as_deref());
    key::texts(&mut k, &v.roles);
    key::texts(&mut k, &v.policies);
    for fields in [&v.user_fields, &v.role_fields] {
        key::count(&mut k, '{', fields.len(), '}');
        for (name, value) in fields {
            key::text(&mut k, name);
            key::text(&mut k, &value.to_string());
        }
    }
    k
}

/// The query as text no two different queries share (plan keys, and GraphQL's reads done
/// once per request). Every field is named, so a field added to [`Query`] cannot be left
/// out of the key without the compiler noticing.
pub fn query_key(query: &Query) -> String {
    let Query {
        fields,
        filter,
        search,
        sort,
        limit,
        offset,
        page,
        meta,
        deep,
        aggregate,
        group_by,
        alias,
        export,
    } = query;
    let mut k = String::with_capacity(64);
    key::texts(&mut k, fields);
    key::json(&mut k, filter.as_ref());
    key::optional(&mut k, search.as_deref());
    key::texts(&mut k, sort);
    key::number(&mut k, *limit);
    key::number(&mut k, *offset);
    key::number(&mut k, *page);
    key::texts(&mut k, meta);
    key::json(&mut k, deep.as_ref());
    key::count(&mut k, '[', aggregate.len(), ']');
    for (function, fields) in aggregate {
        key::text(&mut k, function);
        key::texts(&mut k, fields);
    }
    key::texts(&mut k, group_by);
    key::pairs(&mut k, alias.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    key::optional(&mut k, export.map(|e| e.extension()));
    k
}

/// The stand-in for key `i`: text no real key of a plan can be, since a plan is built
/// before any value reaches it.
fn stand_in(i: usize) -> String {
    format!("\u{0}rectus-key\u{0}{i}")
}

/// Where the stand-ins `0..found.len()` are among `values`: (value index, stand-in), each
/// stand-in seen marked in `found`.
fn stand_ins_in(values: &[DbValue], found: &mut [bool]) -> Vec<(usize, usize)> {
    let mut places = Vec::new();
    for (value, v) in values.iter().enumerate() {
        if let DbValue::Text(text) = v
            && let Some(i) = (0..found.len()).find(|i| *text == stand_in(*i))
        {
            places.push((value, i));
            found[i] = true;
        }
    }
    places
}

impl Template {
    fn new(mut plan: ReadPlan, keys: usize) -> Option<Template> {
        let mut slots = Vec::new();
        let mut found = vec![false; keys];
        for s in 0..3 {
            let Some(stmt) = statement(&mut plan, s) else {
                continue;
            };
            let places = stand_ins_in(&stmt.values, &mut found);
            slots.extend(places.into_iter().map(|(value, key)| Slot {
                statement: s,
                value,
                key,
            }));
        }
        // Every key must have found its place, or the plan cannot take real keys.
        found.iter().all(|f| *f).then_some(Template { plan, slots })
    }

    fn plan(&self, keys: &[DbValue]) -> ReadPlan {
        let mut plan = self.plan.clone();
        for slot in &self.slots {
            if let (Some(stmt), Some(key)) =
                (statement(&mut plan, slot.statement), keys.get(slot.key))
                && let Some(value) = stmt.values.get_mut(slot.value)
            {
                *value = key.clone();
            }
        }
        plan
    }
}

impl PlanCache {
    /// The plan of a read, as [`plan_read`] makes it, reused when it can be.
    pub fn plan(
        &self,
        ctx: &PlanContext,
        generation: u64,
        collection: &str,
        query: &Query,
        keys: Option<&[Scalar]>,
    ) -> Result<ReadPlan, ApiError> {
        if keys.is_some_and(|k| k.len() > MOST_KEYS) {
            return plan_read(ctx, collection, query, keys);
        }
        let real: Vec<DbValue> = keys
            .unwrap_or_default()
            .iter()
            .map(|k| DbValue::try_from(k.to_sea()))
            .collect::<Result<_, _>>()?;
        let key = PlanKey {
            generation,
            caller: caller_key(ctx),
            collection: collection.to_string(),
            query: format!("{}|{}", query_key(query), keys.is_some()),
            keys: real.len(),
        };
        if let Some(template) = self.plans.get(&key) {
            return Ok(template.plan(&real));
        }
        let stand_ins: Option<Vec<Scalar>> =
            keys.map(|k| (0..k.len()).map(|i| Scalar::Text(stand_in(i))).collect());
        ctx.caller.variables.clock_read.take();
        let plan = plan_read(ctx, collection, query, stand_ins.as_deref())?;
        let clock = ctx.caller.variables.clock_read.take();
        match Template::new(plan, real.len()) {
            Some(template) => {
                let plan = template.plan(&real);
                if !clock {
                    self.plans.insert(key, Arc::new(template));
                }
                Ok(plan)
            }
            // The stand-ins did not come through as values: plan with the real keys.
            None => plan_read(ctx, collection, query, keys),
        }
    }

    /// The statement of a create of one item (built by `build` from the read folded into
    /// it, as [`plan_created_read`] makes it for `read`, and the expressions of `inputs`),
    /// reused for every create of the same `shape` by the same caller: built once with
    /// stand-ins, each use puts the create's `inputs` where they are. Also answers whether
    /// the read is folded in.
    #[allow(clippy::too_many_arguments)]
    pub fn create_statement(
        &self,
        ctx: &PlanContext,
        generation: u64,
        collection: &str,
        read: Option<&Query>,
        shape: &str,
        inputs: &[DbValue],
        build: impl Fn(Option<SelectStatement>, Vec<Expr>) -> Result<Stmt, ApiError>,
    ) -> Result<(Stmt, bool), ApiError> {
        let mut query = String::with_capacity(64 + shape.len());
        key::optional(&mut query, read.map(query_key).as_deref());
        key::text(&mut query, shape);
        let key = PlanKey {
            generation,
            caller: caller_key(ctx),
            collection: collection.to_string(),
            query,
            keys: inputs.len(),
        };
        if let Some(shaped) = self.creates.get(&key) {
            return Ok((shaped.with(inputs), shaped.folded));
        }
        ctx.caller.variables.clock_read.take();
        let read_back = read.and_then(|q| plan_created_read(ctx, collection, q));
        let clock = ctx.caller.variables.clock_read.take();
        let folded = read_back.is_some();
        let stand_ins = (0..inputs.len()).map(|i| Expr::val(stand_in(i))).collect();
        let built = build(read_back.clone(), stand_ins)?;
        match Shaped::new(built, inputs.len(), folded) {
            Some(shaped) => {
                let stmt = shaped.with(inputs);
                if !clock {
                    self.creates.insert(key, Arc::new(shaped));
                }
                Ok((stmt, folded))
            }
            // The stand-ins did not come through as values: built with the values.
            None => Ok((build(read_back, values_of(inputs))?, folded)),
        }
    }
}

/// A create's statement as [`PlanCache::create_statement`] makes it, built afresh.
pub fn create_statement_afresh(
    ctx: &PlanContext,
    collection: &str,
    read: Option<&Query>,
    inputs: &[DbValue],
    build: impl Fn(Option<SelectStatement>, Vec<Expr>) -> Result<Stmt, ApiError>,
) -> Result<(Stmt, bool), ApiError> {
    let read_back = read.and_then(|q| plan_created_read(ctx, collection, q));
    let folded = read_back.is_some();
    Ok((build(read_back, values_of(inputs))?, folded))
}

fn values_of(inputs: &[DbValue]) -> Vec<Expr> {
    inputs
        .iter()
        .cloned()
        .map(|v| Expr::val(sea_value(v)))
        .collect()
}

/// A create's statement built with stand-ins for its inputs.
struct Shaped {
    stmt: Stmt,
    /// Where each input goes: (index among the statement's values, index of the input).
    slots: Vec<(usize, usize)>,
    folded: bool,
}

impl Shaped {
    fn new(stmt: Stmt, inputs: usize, folded: bool) -> Option<Shaped> {
        let mut found = vec![false; inputs];
        let slots = stand_ins_in(&stmt.values, &mut found);
        found.iter().all(|f| *f).then_some(Shaped {
            stmt,
            slots,
            folded,
        })
    }

    fn with(&self, inputs: &[DbValue]) -> Stmt {
        let mut stmt = self.stmt.clone();
        for (value, input) in &self.slots {
            if let (Some(value), Some(input)) = (stmt.values.get_mut(*value), inputs.get(*input)) {
                *value = input.clone();
            }
        }
        stmt
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Query, key, query_key};
    use crate::planner::query::ExportFormat;

    fn query(edit: impl FnOnce(&mut Query)) -> Query {
        let mut q = Query::default();
        edit(&mut q);
        q
    }

    #[test]
    fn counts_are_written_in_decimal() {
        let mut k = String::new();
        for n in [0, 7, 10, 1234, usize::MAX] {
            key::count(&mut k, '[', n, ']');
        }
        assert_eq!(k, format!("[0][7][10][1234][{}]", usize::MAX));
    }

    #[test]
    fn different_queries_never_share_a_key() {
        let queries = [
            Query::default(),
            query(|q| q.fields = vec!["a,b".into()]),
            query(|q| q.fields = vec!["a".into(), "b".into()]),
            query(|q| q.fields = vec!["a".into()]),
            query(|q| q.sort = vec!["a".into()]),
            query(|q| q.limit = Some(1)),
            query(|q| q.offset = Some(1)),
            query(|q| q.page = Some(1)),
            query(|q| q.limit = Some(-1)),
            query(|q| q.search = Some(String::new())),
            query(|q| q.search = Some("-".into())),
            query(|q| q.filter = Some(json!({"a": {"_eq": 1}}))),
            query(|q| q.filter = Some(json!({"a": {"_eq": "1"}}))),
            query(|q| q.deep = Some(json!({"a": {"_eq": 1}}))),
            query(|q| q.meta = vec!["total_count".into()]),
            query(|q| q.aggregate = vec![("count".into(), vec!["*".into()])]),
            query(|q| q.aggregate = vec![("count".into(), vec![]), ("*".into(), vec![])]),
            query(|q| q.group_by = vec!["status".into()]),
            query(|q| q.alias = vec![("a".into(), "b".into())]),
            query(|q| q.alias = vec![("ab".into(), String::new())]),
            query(|q| q.export = Some(ExportFormat::Csv)),
        ];
        let keys: Vec<String> = queries.iter().map(query_key).collect();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "queries {i} and {j} share the key {a:?}");
            }
        }
        assert_eq!(query_key(&queries[5]), query_key(&queries[5].clone()));
    }
}
