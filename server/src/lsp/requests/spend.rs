//! `acas/spend`: what AI requests cost today and this month, against the budgets.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;

use crate::escalate::cost::usd;
use crate::lsp::{Backend, NoParams, stopped};

pub(crate) async fn handle(backend: &Backend, _: NoParams) -> Result<ext::SpendResult> {
    let spend = backend.handle()?.spend().await.ok_or_else(stopped)?;
    Ok(ext::SpendResult {
        today_usd: usd(spend.today_micros),
        month_usd: usd(spend.month_micros),
        daily_budget_usd: spend.budget.workspace.daily.map(usd),
        monthly_budget_usd: spend.budget.workspace.monthly.map(usd),
        providers: spend.providers,
    })
}
