//! Prices, estimates and budgets.
//!
//! Money is counted in micro-dollars (millionths of a US dollar) as integers, so that sums agree
//! to the cent with what providers report. [`PriceTable`] holds per-model prices (shipped in
//! `server/data/pricing.toml`, overridable in config). [`estimate`] gives the worst-case cost of
//! a request before it is sent: its input tokens plus the whole output allowance. [`check`]
//! refuses a request whose estimate would take any budget past its limit, counting what is
//! already spent and what other requests in flight have reserved.

use std::collections::HashMap;

use serde::Deserialize;

/// Millionths of a US dollar.
pub type Micros = u64;

pub fn micros_from_usd(usd: f64) -> Micros {
    (usd * 1_000_000.0).round().max(0.0) as Micros
}

pub fn usd(micros: Micros) -> f64 {
    micros as f64 / 1_000_000.0
}

/// Prices of one model, in dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    pub const FREE: Price = Price { input: 0.0, output: 0.0, cached_input: Some(0.0) };

    /// Cost of a call with this usage. Cached input tokens are part of `input_tokens` when a
    /// provider counts them there, so callers pass the uncached count separately.
    pub fn cost(&self, uncached_input: u64, cached_input: u64, output: u64) -> Micros {
        // Dollars per million tokens are micro-dollars per token.
        let cached = self.cached_input.unwrap_or(self.input);
        (uncached_input as f64 * self.input + cached_input as f64 * cached + output as f64 * self.output)
            .round() as Micros
    }
}

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<String, Price>,
}

#[derive(Deserialize)]
struct PricingFile {
    models: HashMap<String, Price>,
}

/// How a price was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PriceSource {
    Table(Price),
    /// A model served from this machine: free.
    Local,
    /// Not in the table: the most expensive known price, so budgets stay safe.
    Unknown(Price),
}

impl PriceSource {
    pub fn price(self) -> Price {
        match self {
            PriceSource::Table(p) | PriceSource::Unknown(p) => p,
            PriceSource::Local => Price::FREE,
        }
    }
}

impl PriceTable {
    /// The table shipped with ACAS.
    pub fn shipped() -> PriceTable {
        let file: PricingFile =
            toml::from_str(include_str!("../../data/pricing.toml")).expect("the shipped price table parses");
        PriceTable { models: file.models }
    }

    /// Overrides or adds prices, from `[pricing."MODEL"]` in config.
    pub fn with_overrides(mut self, overrides: &HashMap<String, Price>) -> PriceTable {
        self.models.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        self
    }

    /// The price of `model` served from `base_url` (None for a provider's default endpoint).
    pub fn lookup(&self, model: &str, base_url: Option<&str>) -> PriceSource {
        if let Some(price) = self.models.get(model) {
            return PriceSource::Table(*price);
        }
        let prefixed = self
            .models
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len());
        if let Some((_, price)) = prefixed {
            return PriceSource::Table(*price);
        }
        if base_url.is_some_and(is_local) {
            return PriceSource::Local;
        }
        let dearest = self
            .models
            .values()
            .copied()
            .max_by(|a, b| (a.input + a.output).total_cmp(&(b.input + b.output)))
            .unwrap_or(Price { input: 15.0, output: 75.0, cached_input: None });
        PriceSource::Unknown(dearest)
    }
}

fn is_local(base_url: &str) -> bool {
    let host = base_url.split("://").nth(1).unwrap_or(base_url);
    let host = host.split(['/', ':']).next().unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0") || host.starts_with("127.")
}

/// Tokens of a text, estimated the way providers' tokenizers average on code: four bytes each.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Worst-case cost of a request: all its input uncached, the whole output allowance used.
pub fn estimate(price: Price, input_text: &str, max_output_tokens: u32) -> Micros {
    price.cost(estimate_tokens(input_text), 0, u64::from(max_output_tokens))
}

/// Spending limits, in micro-dollars; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub daily: Option<Micros>,
    pub monthly: Option<Micros>,
}

/// Budgets of a workspace (the team's, on a shared store), of each user and of each provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    pub workspace: Limits,
    /// `[budget.per_user]`: what each user may spend, whichever machine or clone asks.
    pub per_user: Limits,
    pub providers: HashMap<String, Limits>,
}

/// What has been spent or reserved in the current day and month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spend {
    pub day: Micros,
    pub month: Micros,
}

/// What a request is checked against: the spend of the workspace (or team), of the user asking
/// and of the provider asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spent {
    /// Whether the workspace's spend is the team's (a shared store).
    pub team: bool,
    pub workspace: Spend,
    pub user: String,
    pub user_spend: Spend,
    pub provider: String,
    pub provider_spend: Spend,
}

/// Whose limit refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Workspace,
    /// The workspace's limits on a shared store: every call of the team counts.
    Team,
    User(String),
    Provider(String),
}

impl Scope {
    /// The configuration key that sets this scope's limit for `period`.
    fn key(&self, period: &str) -> String {
        match self {
            Scope::Workspace | Scope::Team => format!("[budget] {period}_usd"),
            Scope::User(_) => format!("[budget.per_user] {period}_usd"),
            Scope::Provider(name) => format!("[budget.providers.{name}] {period}_usd"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Workspace => f.write_str("workspace"),
            Scope::Team => f.write_str("team"),
            Scope::User(name) => write!(f, "user {name}"),
            Scope::Provider(name) => write!(f, "provider {name}"),
        }
    }
}

/// A request the budget does not allow, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {scope} {period} budget of ${} would be exceeded: ${:.4} spent or reserved, this request may cost up to ${:.4}; raise `{}` in .acas/config.toml to allow more",
    dollars(*limit),
    usd(*spent),
    usd(*estimate),
    scope.key(period)
)]
pub struct Refusal {
    pub scope: Scope,
    /// `daily` or `monthly`.
    pub period: &'static str,
    pub limit: Micros,
    pub spent: Micros,
    pub estimate: Micros,
}

/// `micros` in dollars with two decimals, or as many as it takes (up to six) to show it whole.
fn dollars(micros: Micros) -> String {
    let whole = format!("{:.6}", usd(micros));
    let trimmed = whole.trim_end_matches('0');
    let decimals = trimmed.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals <= 2 { format!("{:.2}", usd(micros)) } else { trimmed.to_owned() }
}

/// Allows a request of `estimate` against every limit that applies, or says which one refuses.
pub fn check(budget: &Budget, spent: &Spent, estimate: Micros) -> Result<(), Refusal> {
    let workspace = if spent.team { Scope::Team } else { Scope::Workspace };
    let mut scopes = vec![
        (workspace, &budget.workspace, &spent.workspace),
        (Scope::User(spent.user.clone()), &budget.per_user, &spent.user_spend),
    ];
    if let Some(limits) = budget.providers.get(&spent.provider) {
        scopes.push((Scope::Provider(spent.provider.clone()), limits, &spent.provider_spend));
    }
    for (scope, limits, spend) in scopes {
        for (period, limit, spent) in
            [("daily", limits.daily, spend.day), ("monthly", limits.monthly, spend.month)]
        {
            if let Some(limit) = limit
                && spent.saturating_add(estimate) > limit
            {
                return Err(Refusal { scope, period, limit, spent, estimate });
            }
        }
    }
    Ok(())
}

/// Today's (UTC) AI spend as spend limits count it, in USD, from `ledger` (the shared store's
/// when one is configured, since every call is recorded there, else the workspace's): every
/// call's and `agent`'s own (the calls made for it, as policies name it). Blocks on the
/// database: call it off an async runtime's workers.
pub fn spent_today(
    ledger: &dyn crate::store::Ledger,
    agent: &str,
) -> Result<(f64, f64), crate::store::StoreError> {
    let (day, _) = crate::time::period_starts(crate::time::now_ms());
    Ok((usd(ledger.spend_since(day, None)?), usd(ledger.agent_spend_since(day, agent)?)))
}

/// A request the shared store's absence does not allow: this machine's share of a limit would
/// be passed.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineRefusal {
    pub scope: Scope,
    /// `daily` or `monthly`.
    pub period: &'static str,
    /// The fraction of `left` this machine may spend, in percent.
    pub percent: f64,
    /// What the limit had left when the store was last seen in this period; the whole limit
    /// when it was not.
    pub left: Micros,
    /// Whether `left` was seen (else it is the whole limit).
    pub seen: bool,
    pub share: Micros,
    pub spent: Micros,
    pub estimate: Micros,
}

impl std::fmt::Display for OfflineRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let basis = if self.seen {
            format!(
                "{}% of the ${:.4} it had left when the store was last seen",
                self.percent,
                usd(self.left)
            )
        } else {
            format!("{}% of its ${} limit: not seen since the period began", self.percent, dollars(self.left))
        };
        write!(
            f,
            "the shared store is offline: this machine's share of the {} {} budget is ${:.4} ({basis}); \
             ${:.4} of it is spent or reserved, this request may cost up to ${:.4}; wait until the store \
             is back, or raise `[store] offline_share` in .acas/config.toml to allow more",
            self.scope,
            self.period,
            usd(self.share),
            usd(self.spent),
            usd(self.estimate)
        )
    }
}

/// Allows a request of `estimate` made while the shared store cannot be reached: for every
/// limit, what this machine spent offline plus the estimate must fit in `share` of what the limit
/// had left when the store was last seen in the current period (of the whole limit when it was
/// not). N machines offline together thus pass a limit by at most `N × share` of what it had
/// left.
pub fn check_offline(
    budget: &Budget,
    share: f64,
    user: &str,
    provider: &str,
    totals: &crate::store::OfflineTotals,
    estimate: Micros,
) -> Result<(), OfflineRefusal> {
    let (seen, offline) = (&totals.seen, &totals.offline);
    let mut scopes = vec![
        (
            Scope::Team,
            &budget.workspace,
            [(seen.workspace_day, offline.workspace_day), (seen.workspace_month, offline.workspace_month)],
        ),
        (
            Scope::User(user.to_owned()),
            &budget.per_user,
            [(seen.user_day, offline.user_day), (seen.user_month, offline.user_month)],
        ),
    ];
    if let Some(limits) = budget.providers.get(provider) {
        scopes.push((
            Scope::Provider(provider.to_owned()),
            limits,
            [(seen.provider_day, offline.provider_day), (seen.provider_month, offline.provider_month)],
        ));
    }
    let share = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
    for (scope, limits, spend) in scopes {
        for ((period, limit), (seen, spent)) in
            [("daily", limits.daily), ("monthly", limits.monthly)].into_iter().zip(spend)
        {
            let Some(limit) = limit else { continue };
            let left = seen.map_or(limit, |seen| limit.saturating_sub(seen));
            let allowed = (left as f64 * share).floor() as Micros;
            if spent.saturating_add(estimate) > allowed {
                return Err(OfflineRefusal {
                    scope,
                    period,
                    percent: (share * 1000.0).round() / 10.0,
                    left,
                    seen: seen.is_some(),
                    share: allowed,
                    spent,
                    estimate,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_prices_by_exact_name_then_longest_prefix() {
        let table = PriceTable::shipped();
        assert_eq!(table.lookup("gpt-4o-mini", None).price().input, 0.15);
        assert_eq!(table.lookup("gpt-4o-mini-2024-07-18", None).price().input, 0.15);
        assert_eq!(table.lookup("gpt-4o-2024-08-06", None).price().input, 2.5);
        assert_eq!(table.lookup("claude-sonnet-4-5-20250929", None).price().output, 15.0);
        assert_eq!(table.lookup("llama3.1:8b", Some("http://localhost:11434/v1")), PriceSource::Local);
        let PriceSource::Unknown(dearest) = table.lookup("mystery-model", Some("https://api.example.com"))
        else {
            panic!("an unknown remote model is priced as the dearest known one")
        };
        assert_eq!(dearest.output, 75.0);
        let mut overrides = HashMap::new();
        overrides.insert("mystery-model".to_owned(), Price { input: 1.0, output: 2.0, cached_input: None });
        assert_eq!(table.with_overrides(&overrides).lookup("mystery-model", None).price().output, 2.0);
    }

    #[test]
    fn costs_are_exact_in_micro_dollars() {
        let price = Price { input: 0.15, output: 0.6, cached_input: Some(0.075) };
        // 1,234 input tokens at $0.15/M, 200 cached at $0.075/M, 567 output at $0.60/M.
        assert_eq!(price.cost(1234, 200, 567), 185 + 15 + 340);
        assert_eq!(estimate(price, &"x".repeat(4000), 1000), 150 + 600);
        assert_eq!(micros_from_usd(2.0), 2_000_000);
    }

    #[test]
    fn offline_requests_fit_in_a_share_of_what_each_limit_had_left() {
        use crate::store::{OfflineTotals, SeenTotals, SpendTotals};
        let budget = Budget {
            workspace: Limits { daily: Some(10_000), monthly: None },
            per_user: Limits { daily: None, monthly: Some(100_000) },
            ..Default::default()
        };
        let totals = |seen: Option<u64>, offline: u64| OfflineTotals {
            seen: SeenTotals { workspace_day: seen, ..Default::default() },
            seen_ms: seen.map(|_| 1),
            offline: SpendTotals { workspace_day: offline, ..Default::default() },
        };
        // 4,000 left when seen, a quarter of it is 1,000: exactly at the share is allowed.
        assert_eq!(check_offline(&budget, 0.25, "ada", "p", &totals(Some(6_000), 600), 400), Ok(()));
        let refusal = check_offline(&budget, 0.25, "ada", "p", &totals(Some(6_000), 600), 401).unwrap_err();
        assert_eq!((refusal.scope.clone(), refusal.share, refusal.spent), (Scope::Team, 1_000, 600));
        assert_eq!(
            refusal.to_string(),
            "the shared store is offline: this machine's share of the team daily budget is $0.0010 (25% \
             of the $0.0040 it had left when the store was last seen); $0.0006 of it is spent or reserved, \
             this request may cost up to $0.0004; wait until the store is back, or raise \
             `[store] offline_share` in .acas/config.toml to allow more"
        );
        // Not seen since the day began: a share of the whole limit.
        assert_eq!(check_offline(&budget, 0.25, "ada", "p", &totals(None, 2_000), 500), Ok(()));
        let refusal = check_offline(&budget, 0.25, "ada", "p", &totals(None, 2_000), 501).unwrap_err();
        assert!(
            refusal.to_string().contains("(25% of its $0.01 limit: not seen since the period began)"),
            "{refusal}"
        );
        // The user's monthly limit, never seen: a quarter of 100,000.
        let mut spent = totals(None, 0);
        spent.offline.user_month = 25_000;
        assert_eq!(
            check_offline(&budget, 0.25, "ada", "p", &spent, 1).unwrap_err().scope,
            Scope::User("ada".into())
        );
        // A share of nothing refuses everything.
        assert!(check_offline(&budget, 0.0, "ada", "p", &totals(None, 0), 1).is_err());
    }

    #[test]
    fn budgets_refuse_before_spend_passes_a_limit() {
        let mut budget = Budget {
            workspace: Limits { daily: Some(micros_from_usd(2.0)), monthly: Some(micros_from_usd(30.0)) },
            per_user: Limits { daily: Some(micros_from_usd(0.0018)), monthly: None },
            ..Default::default()
        };
        budget
            .providers
            .insert("primary".into(), Limits { daily: Some(micros_from_usd(0.5)), monthly: None });
        let spend = |day: f64, month: f64| Spend { day: micros_from_usd(day), month: micros_from_usd(month) };
        let spent = |workspace: Spend, provider: &str, provider_spend: Spend| Spent {
            team: false,
            workspace,
            user: "ana@example.com".into(),
            user_spend: Spend::default(),
            provider: provider.into(),
            provider_spend,
        };
        assert_eq!(
            check(&budget, &spent(spend(1.0, 10.0), "primary", spend(0.1, 1.0)), 100_000),
            Err(Refusal {
                scope: Scope::User("ana@example.com".into()),
                period: "daily",
                limit: 1_800,
                spent: 0,
                estimate: 100_000
            })
        );
        budget.per_user = Limits::default();
        assert_eq!(check(&budget, &spent(spend(1.0, 10.0), "primary", spend(0.1, 1.0)), 100_000), Ok(()));
        // Exactly at the limit is allowed; one micro-dollar over is not.
        assert_eq!(check(&budget, &spent(spend(1.9, 10.0), "other", Spend::default()), 100_000), Ok(()));
        let refusal =
            check(&budget, &spent(spend(1.9, 10.0), "other", Spend::default()), 100_001).unwrap_err();
        assert_eq!((refusal.scope, refusal.period), (Scope::Workspace, "daily"));
        let refusal =
            check(&budget, &spent(spend(0.0, 29.99), "other", Spend::default()), 20_000).unwrap_err();
        assert_eq!(refusal.period, "monthly");
        let refusal =
            check(&budget, &spent(Spend::default(), "primary", spend(0.45, 0.45)), 60_000).unwrap_err();
        assert_eq!(refusal.scope, Scope::Provider("primary".into()));
        assert_eq!(
            refusal.to_string(),
            "the provider primary daily budget of $0.50 would be exceeded: $0.4500 spent or reserved, \
             this request may cost up to $0.0600; raise `[budget.providers.primary] daily_usd` in \
             .acas/config.toml to allow more"
        );
        // A user's limit, on the team's store, says whose it is and how to change it.
        budget.per_user = Limits { daily: None, monthly: Some(micros_from_usd(0.0018)) };
        let mut team = spent(Spend::default(), "other", Spend::default());
        team.team = true;
        team.user_spend = spend(0.0012, 0.0012);
        assert_eq!(
            check(&budget, &team, 900).unwrap_err().to_string(),
            "the user ana@example.com monthly budget of $0.0018 would be exceeded: $0.0012 spent or \
             reserved, this request may cost up to $0.0009; raise `[budget.per_user] monthly_usd` in \
             .acas/config.toml to allow more"
        );
        team.user_spend = Spend::default();
        team.workspace = spend(2.0, 2.0);
        assert_eq!(check(&budget, &team, 1).unwrap_err().scope, Scope::Team);
    }
}
