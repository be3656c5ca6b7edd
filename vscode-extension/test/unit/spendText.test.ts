/** AI spend in the status bar: the short text, when it shows, and the tooltip lines. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SpendResult } from '../../src/protocol';
import { formatUsd, showsSpend, spendShort, spendTooltip } from '../../src/spendText';
import { statusView } from '../../src/statusText';

const SPEND: SpendResult = { todayUsd: 0.1234, monthUsd: 3.5, dailyBudgetUsd: 2, monthlyBudgetUsd: 20, providers: ['anthropic', 'openai'] };
const NONE: SpendResult = { todayUsd: 0, monthUsd: 0, dailyBudgetUsd: null, monthlyBudgetUsd: null, providers: [] };

test('today against the daily budget, in dollars and cents', () => {
  assert.equal(formatUsd(0), '$0.00');
  assert.equal(formatUsd(12.345), '$12.35');
  assert.equal(spendShort(SPEND), '$0.12 / $2.00');
  assert.equal(spendShort({ ...SPEND, dailyBudgetUsd: null }), '$0.12');
});

test('a spend too small for a cent still shows that something was spent', () => {
  assert.equal(formatUsd(0.0006), '<$0.01');
  assert.equal(formatUsd(0.0049), '<$0.01');
  assert.equal(formatUsd(0.005), '$0.01');
  assert.equal(spendShort({ ...SPEND, todayUsd: 0.0006, dailyBudgetUsd: 5 }), '<$0.01 / $5.00');
  const view = statusView('running', { error: 0, warning: 0, information: 0, hint: 0 }, undefined, { ...SPEND, todayUsd: 0.0006, dailyBudgetUsd: 5 });
  assert.equal(view.text, 'ACAS $(error) 0 $(warning) 0 $(credit-card) <$0.01 / $5.00');
  assert.match(view.tooltip, /today <\$0\.01 \(daily budget \$5\.00\)/);
});

test('the tooltip lists today, the month, the budgets and the providers', () => {
  assert.deepEqual(spendTooltip(SPEND), [
    'AI spend: today $0.12 (daily budget $2.00), this month $3.50 (monthly budget $20.00)',
    'AI providers: anthropic, openai',
  ]);
  assert.deepEqual(spendTooltip(NONE), [
    'AI spend: today $0.00 (no daily budget), this month $0.00 (no monthly budget)',
    'AI providers: none (ACAS: Set API Key)',
  ]);
});

test('the text shows spend once AI is set up or has cost something', () => {
  assert.equal(showsSpend(NONE), false);
  assert.equal(showsSpend({ ...NONE, providers: ['gemini'] }), true);
  assert.equal(showsSpend({ ...NONE, monthUsd: 0.5 }), true);
});

test('the status item keeps its counts and label, with spend in text and tooltip', () => {
  const counts = { error: 2, warning: 1, information: 0, hint: 0 };
  const view = statusView('running', counts, undefined, SPEND);
  assert.equal(view.text, 'ACAS $(error) 2 $(warning) 1 $(credit-card) $0.12 / $2.00');
  assert.equal(view.label, 'ACAS: 2 errors, 1 warning');
  assert.match(view.tooltip, /2 errors, 1 warning/);
  assert.match(view.tooltip, /today \$0\.12 \(daily budget \$2\.00\), this month \$3\.50/);
  assert.match(view.tooltip, /AI providers: anthropic, openai\nClick for ACAS commands$/);
  const quiet = statusView('running', counts, undefined, NONE);
  assert.equal(quiet.text, 'ACAS $(error) 2 $(warning) 1');
  assert.match(quiet.tooltip, /AI providers: none/);
  assert.doesNotMatch(statusView('stopped', undefined, undefined, SPEND).tooltip, /AI spend/);
});
