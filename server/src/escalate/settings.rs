//! What `.acas/config.toml` says about asking AI providers, as the escalation engine takes it.
//!
//! Plain values with their defaults; `config` parses the file into them, nothing here reads it.

use super::ProviderConfig;
use super::cost::{Budget, Price};
use super::rules::{Rule, RuleConfig};

/// Everything about asking AI providers.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// `[[providers]]`; empty means the providers whose standard variables are set.
    pub providers: Vec<ProviderConfig>,
    pub budget: Budget,
    /// `[pricing."MODEL"]` overrides of the shipped price table.
    pub pricing: std::collections::HashMap<String, Price>,
    /// `[[rules]]`, as written; empty means the default rules.
    pub rules: Vec<RuleConfig>,
    /// Globs of files never sent to a provider.
    pub no_egress: Vec<String>,
    /// Output allowance per request, in tokens.
    pub max_output_tokens: u32,
    /// The team's shared store, where spend is reserved against the budgets and replies are
    /// cached, when `[store] url` or `ACAS_DATABASE_URL` names one.
    pub shared_store: Option<crate::store::SharedStore>,
    /// Who asks (`[store] user`, else git's `user.email`, else `$USER`): calls are recorded as
    /// theirs and `[budget.per_user]` limits their spend. `None` leaves calls without a user.
    pub user: Option<String>,
    /// `[store] offline_share`: the fraction of what each limit had left when the shared store
    /// was last seen that this workspace may spend while it cannot be reached (of the whole
    /// limit when it was never seen in the current day or month). Default: [`OFFLINE_SHARE`].
    pub offline_share: f64,
}

/// The default `[store] offline_share`: a tenth.
pub const OFFLINE_SHARE: f64 = 0.1;

impl Default for Escalation {
    fn default() -> Escalation {
        Escalation {
            providers: Vec::new(),
            budget: Budget::default(),
            pricing: Default::default(),
            rules: Vec::new(),
            no_egress: super::redact::DEFAULT_NO_EGRESS.iter().map(|s| s.to_string()).collect(),
            max_output_tokens: 1024,
            shared_store: None,
            user: None,
            offline_share: OFFLINE_SHARE,
        }
    }
}

impl Escalation {
    /// The rules in force.
    pub fn rules(&self) -> Vec<Rule> {
        if self.rules.is_empty() {
            return super::rules::default_rules();
        }
        self.rules.iter().enumerate().filter_map(|(i, r)| Rule::from_config(i, r).ok()).collect()
    }
}
