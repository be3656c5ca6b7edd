//! One escalation, start to finish.
//!
//! [`Escalator::prepare`] builds the request: the context of the error, rendered and redacted,
//! with its estimated tokens and cost per provider (this is what `--dry-run` prints: the exact
//! request, nothing sent). [`Escalator::run`] then, for each provider of the chain in turn:
//! answers from the cache when the same fingerprint, context and model were asked before;
//! otherwise checks the estimate against every budget and records the reservation before
//! sending (a refused request is never sent); sends it with the provider's retries; records the
//! actual cost from the reported usage; parses the reply, asking once more when it does not
//! parse; and verifies the fix. Every step is recorded in the store.
//!
//! [`Escalator::ask`] is the same walk down the chain for a free-form question (workflow actions
//! such as `ai.ask`): redacted, cached, budgeted and recorded the same way, with no fix to
//! verify.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

use super::answer::{self, Reply, VerifiedFix};
use super::context::{self, Context, PastFix};
use super::cost::{self, Micros, PriceTable, Spend};
use super::redact::{self, Redactions, Redactor};
use super::settings::Escalation;
use super::{
    Chain, ChainOptions, CompletionRequest, Provider, ProviderConfig, StreamEvent, TokioClock, Usage,
};
use crate::store::{self, CallStatus, Ledger, Record, Store};

/// A provider ready to be asked, with its own retry and cooldown state.
struct Member {
    name: String,
    model: String,
    base_url: Option<String>,
    chain: Chain,
}

pub struct Escalator {
    members: Vec<Member>,
    prices: PriceTable,
    redactor: Redactor,
    budget: cost::Budget,
    max_output_tokens: u32,
    store: Option<Store>,
    /// The team's ledger and answer cache (PostgreSQL), when a shared store is configured: it
    /// holds the budget reservations and replies, and the workspace's store keeps its own
    /// history of the calls.
    shared: Option<Arc<dyn Ledger>>,
    /// Who asks: each call is recorded as theirs and checked against `[budget.per_user]`.
    user: Option<String>,
    /// `[store] offline_share`: what may be spent while the shared store cannot be reached.
    offline_share: f64,
    unavailable: Vec<(String, String)>,
}

/// The request as it would be sent.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub system: String,
    pub prompt: String,
    pub redactions: Redactions,
    pub fingerprint: String,
    pub category: String,
    pub estimated_input_tokens: u64,
    pub max_output_tokens: u32,
    /// (provider, model, worst-case cost) in chain order.
    pub estimates: Vec<(String, String, Micros)>,
    /// The agent the request is made for, recorded with each call ([`store::ProviderCall::agent`]).
    pub agent: Option<String>,
    context_hash: String,
}

impl Prepared {
    /// The request to send, asking for replies that follow `json_schema`.
    fn request(&self, json_schema: Option<serde_json::Value>) -> CompletionRequest {
        CompletionRequest {
            system: self.system.clone(),
            prompt: self.prompt.clone(),
            max_tokens: self.max_output_tokens,
            temperature: Some(0.0),
            json_schema,
        }
    }
}

/// The answer of an escalation.
#[derive(Debug, Clone)]
pub struct Explained {
    pub explanation: String,
    pub fix: Option<VerifiedFix>,
    /// Why the model's fix is not offered, when it proposed one.
    pub fix_rejected: Option<String>,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: Micros,
    pub cached: bool,
    /// Providers skipped or failed before this one answered, with why.
    pub skipped: Vec<(String, String)>,
}

/// The answer to a free-form question.
#[derive(Debug, Clone)]
pub struct Asked {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: Micros,
    pub cached: bool,
    /// Providers skipped or failed before this one answered, with why.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum EscalateError {
    #[error(
        "no AI provider is configured: add [[providers]] to .acas/config.toml or set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY"
    )]
    NoProvider,
    #[error("{0}")]
    Config(String),
    #[error("`{0}` matches the no_egress globs, so nothing from it is sent")]
    NoEgress(String),
    #[error("no provider could answer: {}", .0.iter().map(|(p, why)| format!("{p}: {why}")).collect::<Vec<_>>().join("; "))]
    Exhausted(Vec<(String, String)>),
    /// Every provider was skipped because a budget refused the request's estimate.
    #[error("no provider could answer: {}", .0.iter().map(|(p, why)| format!("{p}: {why}")).collect::<Vec<_>>().join("; "))]
    OverBudget(Vec<(String, String)>),
    #[error("cancelled")]
    Cancelled,
    /// The policy refused the spend of the agent the request is for (its spend limit), or the
    /// spend could not be read to check it.
    #[error("{0}")]
    SpendDenied(String),
    /// ACAS failed inside while preparing the request; its log says more.
    #[error("{0}")]
    Internal(String),
}

impl Escalator {
    /// Today's AI spend in USD as spend limits count it ([`cost::spent_today`]), from the ledger
    /// this escalator reserves on: the shared store's when one is configured, else the
    /// workspace's; nothing without either. Blocks on the database.
    pub fn spent_today(&self, agent: &str) -> Result<(f64, f64), crate::store::StoreError> {
        match (&self.shared, &self.store) {
            (Some(shared), _) => cost::spent_today(shared.as_ref(), agent),
            (None, Some(store)) => cost::spent_today(store, agent),
            (None, None) => Ok((0.0, 0.0)),
        }
    }

    /// Builds the providers of `config` (or of the environment when it has none), keeping those
    /// named in `only` when given.
    pub fn new(
        config: &Escalation,
        env: &dyn Fn(&str) -> Option<String>,
        store: Option<Store>,
        only: Option<&str>,
    ) -> Result<Escalator, EscalateError> {
        Escalator::build(config, env, store, only, true)
    }

    /// An escalator for inspecting requests (`--dry-run`): like [`Escalator::new`], but with no
    /// provider configured, or one whose key is not set, it still renders and redacts requests;
    /// such providers are listed in [`Escalator::unavailable`] and get no estimate.
    pub fn inspector(
        config: &Escalation,
        env: &dyn Fn(&str) -> Option<String>,
        store: Option<Store>,
        only: Option<&str>,
    ) -> Result<Escalator, EscalateError> {
        Escalator::build(config, env, store, only, false)
    }

    /// Providers that could not be built, with why (always empty outside [`Escalator::inspector`]).
    pub fn unavailable(&self) -> &[(String, String)] {
        &self.unavailable
    }

    fn build(
        config: &Escalation,
        env: &dyn Fn(&str) -> Option<String>,
        store: Option<Store>,
        only: Option<&str>,
        strict: bool,
    ) -> Result<Escalator, EscalateError> {
        let configs = if config.providers.is_empty() {
            super::providers_from_env(env)
        } else {
            config.providers.clone()
        };
        let configs: Vec<ProviderConfig> =
            configs.into_iter().filter(|c| only.is_none_or(|o| o == c.name())).collect();
        let mut unavailable = Vec::new();
        if configs.is_empty() {
            let error = match only {
                Some(name) => EscalateError::Config(format!("no provider is named `{name}`")),
                None => EscalateError::NoProvider,
            };
            if strict {
                return Err(error);
            }
            unavailable.push((only.unwrap_or("(none)").to_owned(), error.to_string()));
        }
        let mut members = Vec::new();
        for c in &configs {
            let provider: Box<dyn Provider> = match super::build(c, env) {
                Ok(provider) => provider,
                Err(e) if !strict => {
                    unavailable.push((c.name().to_owned(), e.to_string()));
                    continue;
                }
                Err(e) => return Err(EscalateError::Config(format!("provider `{}`: {e}", c.name()))),
            };
            let model = provider.model().to_owned();
            members.push(Member {
                name: c.name().to_owned(),
                model,
                base_url: base_url(c),
                chain: Chain::new(vec![provider], ChainOptions::default(), Arc::new(TokioClock)),
            });
        }
        if let Some(store) = &store {
            members = order_by_success(members, store);
        }
        let redactor = Redactor::new(&config.no_egress)
            .map_err(|e| EscalateError::Config(format!("`no_egress` has an invalid glob: {e}")))?;
        // The team's budgets are kept in the shared store. With the workspace's store beside it,
        // ACAS keeps working on a share of them while it cannot be reached; without, nothing is
        // sent.
        let shared = match (&config.shared_store, &store) {
            (Some(shared), Some(store)) => {
                Some(Arc::new(store::Fallback::new(shared.clone(), store.clone())) as Arc<dyn Ledger>)
            }
            (Some(shared), None) => Some(Arc::new(shared.connect().map_err(|e| {
                EscalateError::Config(format!(
                    "{e}; the team's budgets are kept there, so no request is sent"
                ))
            })?) as Arc<dyn Ledger>),
            (None, _) => None,
        };
        Ok(Escalator {
            members,
            prices: PriceTable::shipped().with_overrides(&config.pricing),
            redactor,
            budget: config.budget.clone(),
            max_output_tokens: config.max_output_tokens,
            store,
            shared,
            user: config.user.clone(),
            offline_share: config.offline_share,
            unavailable,
        })
    }

    /// Provider names, in chain order.
    pub fn provider_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Renders the request for a context; sends nothing.
    pub fn prepare(&self, context: &Context) -> Result<Prepared, EscalateError> {
        if !self.redactor.may_send(&context.path) {
            return Err(EscalateError::NoEgress(context.path.clone()));
        }
        let (prompt, redactions) = context::render(context, &self.redactor);
        let system = answer::SYSTEM_PROMPT.to_owned();
        let input = format!("{system}\n{prompt}");
        let estimates = self
            .members
            .iter()
            .map(|m| {
                let price = self.prices.lookup(&m.model, m.base_url.as_deref()).price();
                (m.name.clone(), m.model.clone(), cost::estimate(price, &input, self.max_output_tokens))
            })
            .collect();
        Ok(Prepared {
            context_hash: hash_hex(&[&system, &prompt]),
            system,
            estimated_input_tokens: cost::estimate_tokens(&input),
            prompt,
            redactions,
            fingerprint: context.problem.fingerprint.clone(),
            category: context.problem.category.clone(),
            max_output_tokens: self.max_output_tokens,
            estimates,
            agent: None,
        })
    }

    /// Asks the chain, within the budgets, and verifies the fix against `read` (current file
    /// texts by workspace-relative path; `default_path` is the error's file).
    pub async fn run(
        &self,
        prepared: &Prepared,
        default_path: &str,
        read: &(dyn Fn(&str) -> Option<String> + Sync),
        on_event: &mut (dyn FnMut(&str, StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<Explained, EscalateError> {
        let mut skipped = Vec::new();
        let mut over_budget = 0;
        for member in &self.members {
            if !self.may_ask(member, &mut skipped, cancel)? {
                continue;
            }
            let key = hash_hex(&[&prepared.fingerprint, &prepared.context_hash, &member.model]);
            let _turn = wait_turn(&key, cancel).await?;
            if let Some(hit) = self.cached(&key)
                && let Ok(reply) = answer::parse_reply(&hit.reply)
            {
                self.record_call(member, prepared, CallStatus::Cached, 0, Usage::default(), 0, None, None);
                let (fix, fix_rejected) = verify(&reply, default_path, read);
                return Ok(Explained {
                    explanation: reply.explanation,
                    fix,
                    fix_rejected,
                    provider: member.name.clone(),
                    model: member.model.clone(),
                    usage: Usage::default(),
                    cost_micros: 0,
                    cached: true,
                    skipped,
                });
            }
            let request = prepared.request(Some(answer::reply_schema()));
            let (reply_text, usage, cost) =
                match self.send(member, prepared, &request, on_event, cancel).await {
                    Ok(answered) => answered,
                    Err(Skip::Cancelled) => return Err(EscalateError::Cancelled),
                    Err(Skip::Because(why)) => {
                        skipped.push((member.name.clone(), why));
                        continue;
                    }
                    Err(Skip::OverBudget(why)) => {
                        over_budget += 1;
                        skipped.push((member.name.clone(), why));
                        continue;
                    }
                };
            let (reply, usage, cost) = match answer::parse_reply(&reply_text) {
                Ok(reply) => (reply, usage, cost),
                Err(error) => {
                    // One repair: the same provider, told what was wrong.
                    let repair = CompletionRequest {
                        prompt: answer::repair_prompt(&prepared.prompt, &reply_text, &error),
                        ..request.clone()
                    };
                    match self.send(member, prepared, &repair, on_event, cancel).await {
                        Ok((text, more, more_cost)) => match answer::parse_reply(&text) {
                            Ok(reply) => (reply, add(usage, more), cost + more_cost),
                            Err(again) => {
                                skipped.push((member.name.clone(), format!("{again} (after one repair)")));
                                continue;
                            }
                        },
                        Err(Skip::Cancelled) => return Err(EscalateError::Cancelled),
                        Err(Skip::Because(why) | Skip::OverBudget(why)) => {
                            skipped.push((member.name.clone(), format!("{error}; the repair failed: {why}")));
                            continue;
                        }
                    }
                }
            };
            self.remember(key, member, prepared, serde_json::to_string(&reply).expect("replies serialise"));
            let (fix, fix_rejected) = verify(&reply, default_path, read);
            return Ok(Explained {
                explanation: reply.explanation,
                fix,
                fix_rejected,
                provider: member.name.clone(),
                model: member.model.clone(),
                usage,
                cost_micros: cost,
                cached: false,
                skipped,
            });
        }
        Err(exhausted(skipped, over_budget))
    }

    /// Asks the chain a free-form question, within the budgets: for each provider in turn,
    /// answers from the cache when the same system prompt, prompt, schema and model were asked
    /// before; otherwise reserves the estimate against every budget (a refused request is never
    /// sent), sends, and records the actual cost. Secrets are redacted from both prompts first.
    /// `category` labels the calls in `acas cost`.
    pub async fn ask(
        &self,
        system: &str,
        prompt: &str,
        json_schema: Option<serde_json::Value>,
        category: &str,
        cancel: &CancellationToken,
    ) -> Result<Asked, EscalateError> {
        let (parts, redactions) = redact::redact_parts(&[system, prompt], &mut redact::Secrets::default());
        let [system, prompt]: [String; 2] = parts.try_into().expect("two parts in, two out");
        let schema = json_schema.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let input = format!("{system}\n{prompt}");
        let prepared = Prepared {
            context_hash: hash_hex(&["ask", &system, &prompt, &schema]),
            estimated_input_tokens: cost::estimate_tokens(&input),
            system,
            prompt,
            redactions,
            fingerprint: String::new(),
            category: category.to_owned(),
            max_output_tokens: self.max_output_tokens,
            estimates: Vec::new(),
            agent: None,
        };
        let mut skipped = Vec::new();
        let mut over_budget = 0;
        for member in &self.members {
            if !self.may_ask(member, &mut skipped, cancel)? {
                continue;
            }
            let key = hash_hex(&[&prepared.context_hash, &member.model]);
            let _turn = wait_turn(&key, cancel).await?;
            if let Some(hit) = self.cached(&key) {
                self.record_call(member, &prepared, CallStatus::Cached, 0, Usage::default(), 0, None, None);
                return Ok(Asked {
                    text: hit.reply,
                    provider: member.name.clone(),
                    model: member.model.clone(),
                    usage: Usage::default(),
                    cost_micros: 0,
                    cached: true,
                    skipped,
                });
            }
            let request = prepared.request(json_schema.clone());
            match self.send(member, &prepared, &request, &mut |_, _| {}, cancel).await {
                Ok((text, usage, cost)) => {
                    self.remember(key, member, &prepared, text.clone());
                    return Ok(Asked {
                        text,
                        provider: member.name.clone(),
                        model: member.model.clone(),
                        usage,
                        cost_micros: cost,
                        cached: false,
                        skipped,
                    });
                }
                Err(Skip::Cancelled) => return Err(EscalateError::Cancelled),
                Err(Skip::Because(why)) => skipped.push((member.name.clone(), why)),
                Err(Skip::OverBudget(why)) => {
                    over_budget += 1;
                    skipped.push((member.name.clone(), why));
                }
            }
        }
        Err(exhausted(skipped, over_budget))
    }

    /// Whether to ask `member` now: an error once the escalation is cancelled, false (with the
    /// reason noted in `skipped`) while the provider cools down after failures.
    fn may_ask(
        &self,
        member: &Member,
        skipped: &mut Vec<(String, String)>,
        cancel: &CancellationToken,
    ) -> Result<bool, EscalateError> {
        if cancel.is_cancelled() {
            return Err(EscalateError::Cancelled);
        }
        if member.chain.cooling_down().contains(&member.name) {
            skipped.push((member.name.clone(), "cooling down after failures".to_owned()));
            return Ok(false);
        }
        Ok(true)
    }

    /// One budgeted request to one provider: reserve, send, record.
    async fn send(
        &self,
        member: &Member,
        prepared: &Prepared,
        request: &CompletionRequest,
        on_event: &mut (dyn FnMut(&str, StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<(String, Usage, Micros), Skip> {
        let price = self.prices.lookup(&member.model, member.base_url.as_deref()).price();
        let estimate =
            cost::estimate(price, &format!("{}\n{}", request.system, request.prompt), request.max_tokens);
        let id = self.reserve(member, prepared, estimate)?;
        let started = Instant::now();
        let name = member.name.clone();
        let mut forward = |event: StreamEvent| on_event(&name, event);
        let result = member.chain.complete(request, &mut forward, cancel).await;
        let latency = Some(started.elapsed().as_millis() as u64);
        match result {
            Ok(reply) => {
                let usage = reply.completion.usage;
                let uncached = usage.input_tokens.saturating_sub(usage.cached_input_tokens);
                let actual = price.cost(uncached, usage.cached_input_tokens, usage.output_tokens);
                self.finish_call(
                    &id,
                    member,
                    prepared,
                    CallStatus::Succeeded,
                    estimate,
                    usage,
                    actual,
                    latency,
                    None,
                );
                Ok((reply.completion.text, usage, actual))
            }
            Err(error) => {
                let cancelled = error.error.kind == super::ProviderErrorKind::Cancelled;
                let status = if cancelled { CallStatus::Cancelled } else { CallStatus::Failed };
                self.finish_call(
                    &id,
                    member,
                    prepared,
                    status,
                    estimate,
                    Usage::default(),
                    0,
                    latency,
                    Some(error.error.to_string()),
                );
                // The chain's error says how many attempts it made (each under the timeout).
                if cancelled { Err(Skip::Cancelled) } else { Err(Skip::Because(error.to_string())) }
            }
        }
    }

    /// Reserves `estimate` for a call to `member` against every budget, or says why not. With a
    /// store, the check and the reservation are one transaction ([`Ledger::reserve`]): on the
    /// team's shared store when one is configured, else on the workspace's SQLite. So every
    /// escalator sharing that store, in this process or another (on another machine, for the
    /// shared store), shares one reservation path and concurrent requests cannot pass a limit
    /// together. Returns the call's id.
    fn reserve(&self, member: &Member, prepared: &Prepared, estimate: Micros) -> Result<String, Skip> {
        let id = new_id();
        let store: &dyn Ledger = match (&self.shared, &self.store) {
            (Some(shared), _) => shared.as_ref(),
            (None, Some(store)) => store,
            (None, None) => {
                // Without a store there is no record of spend: only budgets of zero can refuse.
                let spent = cost::Spent {
                    user: self.user.clone().unwrap_or_default(),
                    provider: member.name.clone(),
                    ..Default::default()
                };
                cost::check(&self.budget, &spent, estimate).map_err(|r| Skip::OverBudget(r.to_string()))?;
                return Ok(id);
            }
        };
        let (day, month) = period_starts(crate::time::now_ms());
        let call = self.call_row(
            &id,
            member,
            prepared,
            CallStatus::Reserved,
            estimate,
            Usage::default(),
            0,
            None,
            None,
        );
        let budget = self.budget.clone();
        let provider = member.name.clone();
        let team = self.shared.is_some();
        let user = call.user.clone().unwrap_or_default();
        let share = self.offline_share;
        let allow: store::Allow = Box::new(move |spending: store::Spending| {
            let spent = match spending {
                store::Spending::Recorded(spent) => spent,
                store::Spending::Offline(offline) => {
                    return cost::check_offline(&budget, share, &user, &provider, &offline, estimate)
                        .map_err(|r| r.to_string());
                }
            };
            let spent = cost::Spent {
                team,
                workspace: Spend { day: spent.workspace_day, month: spent.workspace_month },
                user,
                user_spend: Spend { day: spent.user_day, month: spent.user_month },
                provider,
                provider_spend: Spend { day: spent.provider_day, month: spent.provider_month },
            };
            cost::check(&budget, &spent, estimate).map_err(|r| r.to_string())
        });
        match store.reserve(call, day, month, allow) {
            Ok(Ok(())) => Ok(id),
            Ok(Err(refusal)) => Err(Skip::OverBudget(refusal.to_string())),
            Err(error) => {
                Err(Skip::Because(format!("could not reserve the cost against the budgets: {error}")))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_call(
        &self,
        member: &Member,
        prepared: &Prepared,
        status: CallStatus,
        reserved: Micros,
        usage: Usage,
        cost: Micros,
        latency_ms: Option<u64>,
        error: Option<String>,
    ) -> String {
        let id = new_id();
        self.finish_call(&id, member, prepared, status, reserved, usage, cost, latency_ms, error);
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_call(
        &self,
        id: &str,
        member: &Member,
        prepared: &Prepared,
        status: CallStatus,
        reserved: Micros,
        usage: Usage,
        cost: Micros,
        latency_ms: Option<u64>,
        error: Option<String>,
    ) {
        let call = self.call_row(id, member, prepared, status, reserved, usage, cost, latency_ms, error);
        if let Some(shared) = &self.shared {
            match shared.finish(call.clone()) {
                Ok(()) if shared.keeps_local_copy() => return,
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(%error, call = %id, "the call's end was not recorded in the shared store")
                }
            }
        }
        let Some(store) = &self.store else { return };
        store.record(vec![Record::ProviderCall(call)]);
    }

    #[allow(clippy::too_many_arguments)]
    fn call_row(
        &self,
        id: &str,
        member: &Member,
        prepared: &Prepared,
        status: CallStatus,
        reserved: Micros,
        usage: Usage,
        cost: Micros,
        latency_ms: Option<u64>,
        error: Option<String>,
    ) -> store::ProviderCall {
        store::ProviderCall {
            id: id.to_owned(),
            at_ms: crate::time::now_ms(),
            provider: member.name.clone(),
            model: member.model.clone(),
            fingerprint: Some(prepared.fingerprint.clone()).filter(|f| !f.is_empty()),
            category: Some(prepared.category.clone()),
            status,
            reserved_micros: reserved,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            cost_micros: cost,
            latency_ms,
            error,
            user: self.user.clone(),
            agent: prepared.agent.clone(),
        }
    }

    /// Keeps a reply in the cache under `key`.
    fn remember(&self, key: String, member: &Member, prepared: &Prepared, reply: String) {
        let entry = store::CacheEntry {
            key,
            at_ms: crate::time::now_ms(),
            fingerprint: prepared.fingerprint.clone(),
            model: member.model.clone(),
            provider: member.name.clone(),
            reply,
        };
        if let Some(shared) = &self.shared {
            if let Err(error) = shared.cache_put(entry) {
                tracing::warn!(%error, "the reply was not kept in the shared cache");
            }
            return;
        }
        let Some(store) = &self.store else { return };
        store.record(vec![Record::CacheEntry(entry)]);
    }

    fn cached(&self, key: &str) -> Option<store::CacheEntry> {
        if let Some(shared) = &self.shared {
            return shared
                .cache_get(key)
                .inspect_err(|error| tracing::warn!(%error, "reading the shared cache"))
                .ok()
                .flatten();
        }
        let store = self.store.as_ref()?;
        store.flush().ok()?;
        store.cache_get(key).ok().flatten()
    }

    /// Earlier accepted fixes of a fingerprint, as examples for the prompt.
    pub fn past_fixes(&self, fingerprint: &str) -> Vec<PastFix> {
        let Some(store) = &self.store else { return Vec::new() };
        store
            .past_fixes(fingerprint, 3)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| {
                Some(PastFix { description: f.description.unwrap_or_default(), old: f.old?, new: f.new? })
            })
            .collect()
    }
}

/// Puts providers whose fixes resolve errors more often first. Providers with too few fixes
/// offered keep their configured places.
fn order_by_success(members: Vec<Member>, store: &Store) -> Vec<Member> {
    let Ok(rows) = store.fix_stats() else { return members };
    let rate = |name: &str| {
        let (offered, good) = rows.iter().filter(|r| r.provider == name).fold((0, 0), |(o, g), r| {
            (o + r.offered, g + r.resolved.max(r.applied) - r.reverted.min(r.applied))
        });
        (offered >= MIN_OFFERED).then(|| good as f64 / offered as f64)
    };
    let rates: Vec<Option<f64>> = members.iter().map(|m| rate(&m.name)).collect();
    // Only providers with a known rate move, and only among the places they hold.
    let slots: Vec<usize> = (0..members.len()).filter(|&i| rates[i].is_some()).collect();
    let mut ranked = slots.clone();
    ranked.sort_by(|&a, &b| rates[b].unwrap_or(0.0).total_cmp(&rates[a].unwrap_or(0.0)));
    let mut order: Vec<usize> = (0..members.len()).collect();
    for (slot, index) in slots.into_iter().zip(ranked) {
        order[slot] = index;
    }
    let mut members: Vec<Option<Member>> = members.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| members[i].take()).collect()
}

/// Fixes a provider must have offered before its success rate reorders the chain.
const MIN_OFFERED: u64 = 3;

enum Skip {
    Cancelled,
    Because(String),
    /// A budget refused the estimate.
    OverBudget(String),
}

/// The error when no provider answered: [`EscalateError::OverBudget`] when budgets refused
/// every one of them.
/// Waits until no identical request (same cache key) is in flight in this process, and holds
/// the key until the guard drops. A request asked again while the first is on its way (an
/// editor, the CLI and a workflow on one error, or one error escalated twice) is then answered
/// from the cache the first fills, instead of paying for a second call; when the first fails
/// or is cancelled, the next asks itself.
async fn wait_turn(key: &str, cancel: &CancellationToken) -> Result<OwnedMutexGuard<()>, EscalateError> {
    type InFlight = std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>;
    static IN_FLIGHT: OnceLock<InFlight> = OnceLock::new();
    let gate = {
        let mut map = IN_FLIGHT.get_or_init(InFlight::default).lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, gate| gate.strong_count() > 0);
        match map.get(key).and_then(Weak::upgrade) {
            Some(gate) => gate,
            None => {
                let gate = Arc::new(tokio::sync::Mutex::new(()));
                map.insert(key.to_owned(), Arc::downgrade(&gate));
                gate
            }
        }
    };
    tokio::select! {
        turn = gate.lock_owned() => Ok(turn),
        () = cancel.cancelled() => Err(EscalateError::Cancelled),
    }
}

fn exhausted(skipped: Vec<(String, String)>, over_budget: usize) -> EscalateError {
    if over_budget > 0 && over_budget == skipped.len() {
        EscalateError::OverBudget(skipped)
    } else {
        EscalateError::Exhausted(skipped)
    }
}

fn verify(
    reply: &Reply,
    default_path: &str,
    read: &(dyn Fn(&str) -> Option<String> + Sync),
) -> (Option<VerifiedFix>, Option<String>) {
    match &reply.fix {
        None => (None, None),
        Some(fix) => match answer::verify(fix, default_path, read) {
            Ok(verified) => (Some(verified), None),
            Err(reason) => (None, Some(reason.to_string())),
        },
    }
}

fn add(a: Usage, b: Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens + b.input_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        cached_input_tokens: a.cached_input_tokens + b.cached_input_tokens,
        estimated: a.estimated || b.estimated,
    }
}

fn base_url(config: &ProviderConfig) -> Option<String> {
    match config {
        ProviderConfig::Anthropic(c) | ProviderConfig::Openai(c) | ProviderConfig::Gemini(c) => {
            c.base_url.clone()
        }
        ProviderConfig::Command(_) => Some("local".to_owned()),
    }
}

pub use crate::time::period_starts;

fn hash_hex(parts: &[&str]) -> String {
    // FNV-1a, 64 bits, twice with different seeds for 128 bits: stable across runs and builds.
    let hash = |seed: u64| {
        parts.iter().fold(seed, |h, part| {
            let h = part.bytes().fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
            (h ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!("{:016x}{:016x}", hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4))
}

/// A provider call's id: the time, 64 random bits and a counter. Unique across machines and
/// containers (where process ids repeat), so that no two calls of a team share a ledger row.
pub(crate) fn new_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Keyed from the operating system's randomness once per process.
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = KEYS.get_or_init(RandomState::new).hash_one((n, std::process::id(), crate::time::now_ms()));
    format!("{:x}-{random:016x}-{n}", crate::time::now_ms())
}

#[cfg(test)]
mod tests {
    /// Process ids repeat across containers and machines: ids carry 64 random bits.
    #[test]
    fn call_ids_carry_64_random_bits() {
        let id = super::new_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[1].len(), 16, "{id}");
        assert!(u64::from_str_radix(parts[1], 16).is_ok(), "{id}");
        assert_ne!(parts[1], format!("{:016x}", std::process::id()), "{id}");
    }

    use super::*;

    #[test]
    fn escalators_built_apart_share_one_budget() {
        // Like requests that name a provider, each thread builds its own escalator on its own
        // connection to the workspace's store; together they may spend $3, and each request
        // costs exactly $1 (1000 output tokens at $1000 per million, input free).
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let provider: ProviderConfig = toml::from_str(
            "kind = \"command\"\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; head -c 4000 /dev/zero | tr '\\\\0' a\"]\n",
        )
        .unwrap();
        let config = Escalation {
            providers: vec![provider],
            budget: cost::Budget {
                workspace: cost::Limits { daily: Some(3_000_000), monthly: None },
                ..Default::default()
            },
            pricing: [("sh".to_owned(), cost::Price { input: 0.0, output: 1000.0, cached_input: None })]
                .into(),
            max_output_tokens: 1000,
            ..Default::default()
        };
        // The schema is made once, before the threads race: opening it is not what is tested.
        drop(Store::open_workspace(&root, store::StoreOptions::default()).unwrap());
        let threads = 8;
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (root, config, barrier) = (root.clone(), config.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let opened = Store::open_workspace(&root, store::StoreOptions::default());
                    // Every thread reaches the barrier, so one that failed cannot leave the others
                    // waiting; its failure is reported once they are past it.
                    barrier.wait();
                    let escalator =
                        Escalator::new(&config, &|_| None, Some(opened.unwrap()), Some("p")).unwrap();
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    let cancel = CancellationToken::new();
                    runtime.block_on(escalator.ask(
                        "Answer.",
                        &format!("question {t}"),
                        None,
                        "test",
                        &cancel,
                    ))
                })
            })
            .collect();
        let answered: Vec<Asked> = handles.into_iter().filter_map(|h| h.join().unwrap().ok()).collect();
        assert!(answered.iter().all(|a| a.cost_micros >= 1_000_000), "a call cost less than reserved");
        assert_eq!(answered.len(), 3, "calls allowed by a $3 budget at $1 each");
    }

    #[test]
    fn identical_requests_in_flight_make_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_workspace(dir.path(), store::StoreOptions::default()).unwrap();
        let provider: ProviderConfig = toml::from_str(
            "kind = \"command\"\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"cat >/dev/null; echo answer\"]\n",
        )
        .unwrap();
        let config = Escalation { providers: vec![provider], ..Default::default() };
        let escalator = Escalator::new(&config, &|_| None, Some(store), None).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let cancel = CancellationToken::new();
        // One thread polls every request to its first wait before any provider can answer, so
        // all eight are in flight together.
        let asked = runtime.block_on(futures_util::future::join_all(
            (0..8).map(|_| escalator.ask("Answer.", "the same question", None, "test", &cancel)),
        ));
        let asked: Vec<Asked> = asked.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            asked.iter().filter(|a| !a.cached).count(),
            1,
            "provider calls for eight identical requests"
        );
        assert!(asked.iter().all(|a| a.text.trim() == "answer"), "every request has the one answer");
        // A different question is not held back by the first.
        let other =
            runtime.block_on(escalator.ask("Answer.", "another question", None, "test", &cancel)).unwrap();
        assert!(!other.cached);
    }

    #[test]
    fn providers_whose_fixes_work_move_up_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_workspace(dir.path(), store::StoreOptions::default()).unwrap();
        let outcome = |id: &str, provider: &str, outcome: store::Outcome| {
            Record::FixOutcome(store::FixOutcome {
                fix_id: id.into(),
                at_ms: 1,
                fingerprint: "fp".into(),
                category: "type".into(),
                provider: provider.into(),
                model: "m".into(),
                outcome,
                description: None,
                old: None,
                new: None,
                verified: None,
            })
        };
        let mut records = Vec::new();
        for i in 0..4 {
            let id = format!("slow{i}");
            records.push(outcome(&id, "first", store::Outcome::Offered));
            records.push(outcome(&id, "first", store::Outcome::Dismissed));
            let id = format!("good{i}");
            records.push(outcome(&id, "second", store::Outcome::Offered));
            records.push(outcome(&id, "second", store::Outcome::Applied));
            records.push(outcome(&id, "second", store::Outcome::Resolved));
        }
        store.record(records);
        store.flush().unwrap();
        let provider = |name: &str| {
            let mut c = crate::escalate::config::HttpProviderConfig {
                name: name.into(),
                base_url: Some("http://127.0.0.1:9/v1".into()),
                model: Some("m".into()),
                api_key_env: None,
                timeout_secs: None,
                idle_timeout_secs: None,
            };
            c.name = name.into();
            ProviderConfig::Openai(c)
        };
        let config = Escalation {
            providers: vec![provider("first"), provider("second"), provider("third")],
            ..Escalation::default()
        };
        let without = Escalator::new(&config, &|_| None, None, None).unwrap();
        assert_eq!(without.provider_names(), ["first", "second", "third"]);
        let learned = Escalator::new(&config, &|_| None, Some(store), None).unwrap();
        assert_eq!(learned.provider_names(), ["second", "first", "third"]);
    }

    #[test]
    fn context_hashes_are_stable_and_separate_their_parts() {
        assert_eq!(hash_hex(&["a", "b"]), hash_hex(&["a", "b"]));
        assert_ne!(hash_hex(&["ab", ""]), hash_hex(&["a", "b"]));
    }
}
