//! `on.schedule`: cron expressions of 5 fields (minute first) or 6 (seconds first), evaluated in
//! an IANA time zone (UTC when none is given), daylight-saving changes included.
//!
//! [`Schedule`] holds each workflow's next fire time; [`Schedule::due`] returns the runs whose
//! time has come and moves them to their next time. After a wake-up later than planned (a
//! suspended laptop) each schedule fires once, not once per missed time. The current time is
//! always an argument, and [`Clock`] gives it either from the system or from the tokio clock (a
//! paused tokio clock then drives the schedule in tests). [`due`] lists fire times over an
//! interval without any state. Expressions and time zones are parsed as validation parses them;
//! the next times of one expression, for hovers, are `validate::next_runs`.

use crate::workflow::validate::ScheduleError;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::Cron;
use tokio::time::Instant;

use super::{Fired, Trigger, TriggerError, TriggerErrorKind, default_inputs};
use crate::workflow::definition::{ScheduleTrigger, Workflow};

/// Where the current wall-clock time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    /// `utc` at the tokio instant `at`, advancing with the tokio clock (paused in tests).
    Anchored {
        utc: DateTime<Utc>,
        at: Instant,
    },
}

impl Clock {
    /// A clock that reads `utc` now and advances with the tokio clock.
    pub fn anchored(utc: DateTime<Utc>) -> Clock {
        Clock::Anchored { utc, at: Instant::now() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Anchored { utc, at } => *utc + Instant::now().saturating_duration_since(*at),
        }
    }
}

/// Parses a cron expression of 5 or 6 fields, as validation does.
pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    crate::workflow::validate::parse_cron(expression)
}

/// Parses an IANA time zone name, as validation does; `None` is UTC.
pub fn parse_time_zone(name: Option<&str>) -> Result<Tz, ScheduleError> {
    name.map_or(Ok(Tz::UTC), crate::workflow::validate::time_zone)
}

/// Every fire time in `(from, to]` of every schedule of `workflows`, in time order (then in
/// workflow order). Schedules that do not parse are left out.
pub fn due(workflows: &[Workflow], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
    let mut times = Vec::new();
    for workflow in workflows {
        for trigger in &workflow.on.schedule {
            let Ok(entry) = Entry::new(workflow, trigger, from) else { continue };
            let mut next = entry.next;
            while let Some(at) = next.filter(|at| *at <= to) {
                times.push((workflow.name.clone(), at));
                next = entry.after(at);
            }
        }
    }
    times.sort_by_key(|(_, at)| *at);
    times
}

struct Entry {
    workflow: Workflow,
    trigger: ScheduleTrigger,
    cron: Cron,
    tz: Tz,
    next: Option<DateTime<Utc>>,
}

impl Entry {
    fn new(
        workflow: &Workflow,
        trigger: &ScheduleTrigger,
        now: DateTime<Utc>,
    ) -> Result<Entry, TriggerError> {
        let error = |kind, message: String| TriggerError {
            kind,
            workflow: workflow.name.clone(),
            message: format!("on.schedule: {message}"),
        };
        let cron = parse_cron(&trigger.cron).map_err(|e| error(TriggerErrorKind::Cron, e.message))?;
        let tz = parse_time_zone(trigger.timezone.as_deref())
            .map_err(|e| error(TriggerErrorKind::TimeZone, e.message))?;
        let mut entry = Entry { workflow: workflow.clone(), trigger: trigger.clone(), cron, tz, next: None };
        entry.next = entry.after(now);
        Ok(entry)
    }

    /// The first fire time strictly after `time`.
    fn after(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self.cron.find_next_occurrence(&time.with_timezone(&self.tz), false).ok()?;
        Some(next.with_timezone(&Utc))
    }

    fn fired(&self, at: DateTime<Utc>) -> Fired {
        let scheduled_at = at.with_timezone(&self.tz).to_rfc3339_opts(SecondsFormat::Secs, false);
        let trigger = Trigger::Schedule {
            cron: self.trigger.cron.clone(),
            scheduled_at,
            timezone: self.trigger.timezone.clone().unwrap_or_else(|| "UTC".to_owned()),
        };
        Fired {
            workflow: self.workflow.name.clone(),
            trigger,
            inputs: default_inputs(&self.workflow),
            inbox: None,
        }
    }
}

/// The schedules of a set of workflows with their next fire times.
#[derive(Default)]
pub struct Schedule {
    entries: Vec<Entry>,
}

impl Schedule {
    /// Schedules every `on.schedule` of `workflows` from `now`. Schedules with an invalid cron
    /// expression or time zone are left out and reported.
    pub fn new(workflows: &[Workflow], now: DateTime<Utc>) -> (Schedule, Vec<TriggerError>) {
        let mut schedule = Schedule::default();
        let errors = schedule.reload(workflows, now);
        (schedule, errors)
    }

    /// Replaces the schedules. A schedule that is unchanged (same workflow, cron and time zone)
    /// keeps its next fire time, so that a reload at the moment it is due does not lose a run.
    pub fn reload(&mut self, workflows: &[Workflow], now: DateTime<Utc>) -> Vec<TriggerError> {
        let mut old = std::mem::take(&mut self.entries);
        let mut errors = Vec::new();
        for workflow in workflows {
            for trigger in &workflow.on.schedule {
                let kept = old
                    .iter()
                    .position(|e| e.workflow.name == workflow.name && e.trigger == *trigger)
                    .map(|i| old.swap_remove(i));
                match (kept, Entry::new(workflow, trigger, now)) {
                    (Some(kept), Ok(new)) => self.entries.push(new.with_next(kept.next)),
                    (None, Ok(new)) => self.entries.push(new),
                    (_, Err(error)) => errors.push(error),
                }
            }
        }
        errors
    }

    /// The earliest next fire time, if any schedule has one.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.entries.iter().filter_map(|e| e.next).min()
    }

    /// The runs due at `now`, each schedule at most once; their next times move past `now`.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Fired> {
        let mut fired = Vec::new();
        for entry in &mut self.entries {
            if let Some(at) = entry.next.filter(|at| *at <= now) {
                fired.push(entry.fired(at));
                entry.next = entry.after(now.max(at));
            }
        }
        fired
    }
}

impl Entry {
    fn with_next(mut self, next: Option<DateTime<Utc>>) -> Entry {
        self.next = next;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::Triggers;
    use crate::workflow::triggers::testing::workflow;
    use serde_json::json;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn scheduled(name: &str, schedules: &[(&str, Option<&str>)]) -> Workflow {
        let schedule = schedules
            .iter()
            .map(|(cron, tz)| ScheduleTrigger { cron: cron.to_string(), timezone: tz.map(str::to_owned) })
            .collect();
        workflow(name, Triggers { schedule, ..Triggers::default() })
    }

    fn check(workflows: &[Workflow], from: &str, to: &str, expected: &[(&str, &str)]) {
        let times: Vec<(String, String)> = due(workflows, utc(from), utc(to))
            .into_iter()
            .map(|(name, at)| (name, at.to_rfc3339_opts(SecondsFormat::Secs, true)))
            .collect();
        let expected: Vec<(String, String)> =
            expected.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(times, expected);
    }

    #[test]
    fn weekday_mornings_in_berlin() {
        // 2026-03-27 is a Friday; Berlin moves to summer time on Sunday 2026-03-29.
        check(
            &[scheduled("standup", &[("0 9 * * 1-5", Some("Europe/Berlin"))])],
            "2026-03-26T09:00:00Z",
            "2026-03-31T00:00:00Z",
            &[("standup", "2026-03-27T08:00:00Z"), ("standup", "2026-03-30T07:00:00Z")],
        );
    }

    #[test]
    fn six_fields_have_seconds_and_the_interval_is_half_open() {
        check(
            &[scheduled("tick", &[("*/20 * * * * *", None)]), scheduled("hourly", &[("0 * * * *", None)])],
            "2026-01-01T00:59:20Z",
            "2026-01-01T01:00:00Z",
            &[
                ("tick", "2026-01-01T00:59:40Z"),
                ("tick", "2026-01-01T01:00:00Z"),
                ("hourly", "2026-01-01T01:00:00Z"),
            ],
        );
    }

    #[test]
    fn invalid_schedules_are_reported_and_left_out() {
        let workflows = [
            scheduled("bad-cron", &[("61 * * * *", None)]),
            scheduled("too-short", &[("* * *", None)]),
            scheduled("bad-zone", &[("* * * * *", Some("Mars/Olympus"))]),
            scheduled("good", &[("30 12 * * *", Some("Asia/Tokyo"))]),
        ];
        let (schedule, errors) = Schedule::new(&workflows, utc("2026-01-01T00:00:00Z"));
        let kinds: Vec<_> = errors.iter().map(|e| (e.workflow.as_str(), e.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("bad-cron", TriggerErrorKind::Cron),
                ("too-short", TriggerErrorKind::Cron),
                ("bad-zone", TriggerErrorKind::TimeZone)
            ]
        );
        assert!(errors[1].message.contains("has 3 fields"), "{}", errors[1].message);
        assert!(errors[2].message.contains("unknown time zone `Mars/Olympus`"), "{}", errors[2].message);
        assert_eq!(schedule.next_fire(), Some(utc("2026-01-01T03:30:00Z")));
    }

    #[test]
    fn due_fires_once_after_a_late_wake_up_and_reports_local_time() {
        let workflows = [scheduled("w", &[("0 9 * * *", Some("Europe/Berlin"))])];
        let (mut schedule, _) = Schedule::new(&workflows, utc("2026-01-05T00:00:00Z"));
        assert_eq!(schedule.due(utc("2026-01-05T07:59:59Z")), vec![]);
        // Three days late: one run, for the first missed time, then the next time after now.
        let fired = schedule.due(utc("2026-01-08T12:00:00Z"));
        assert_eq!(fired.len(), 1);
        assert_eq!(
            fired[0].trigger.to_value(),
            json!({"kind": "schedule", "cron": "0 9 * * *", "timezone": "Europe/Berlin", "scheduled_at": "2026-01-05T09:00:00+01:00"})
        );
        assert_eq!(schedule.next_fire(), Some(utc("2026-01-09T08:00:00Z")));
    }

    #[test]
    fn reload_keeps_unchanged_schedules_and_drops_removed_ones() {
        let (mut schedule, _) =
            Schedule::new(&[scheduled("a", &[("0 * * * *", None)])], utc("2026-01-01T00:30:00Z"));
        // Reloaded exactly at the fire time: the unchanged schedule still fires.
        let workflows = [scheduled("a", &[("0 * * * *", None)]), scheduled("b", &[("15 * * * *", None)])];
        assert_eq!(schedule.reload(&workflows, utc("2026-01-01T01:00:00Z")), vec![]);
        let fired: Vec<_> =
            schedule.due(utc("2026-01-01T01:00:00Z")).into_iter().map(|f| f.workflow).collect();
        assert_eq!(fired, ["a"]);
        assert_eq!(schedule.next_fire(), Some(utc("2026-01-01T01:15:00Z")));
        schedule.reload(&[], utc("2026-01-01T01:01:00Z"));
        assert_eq!(schedule.next_fire(), None);
    }

    #[test]
    fn next_times_for_hovers() {
        let times = crate::workflow::validate::next_runs(
            "0 9 * * 1-5",
            Some("Europe/Berlin"),
            utc("2026-03-27T10:00:00Z"),
            3,
        )
        .unwrap();
        let times: Vec<String> = times.iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(
            times,
            ["2026-03-30T09:00:00+02:00", "2026-03-31T09:00:00+02:00", "2026-04-01T09:00:00+02:00"]
        );
    }
}
