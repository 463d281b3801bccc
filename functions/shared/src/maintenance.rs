//! Maintenance windows: recurring times, declared with the rules, when alarms are expected and
//! nobody is paged (the nightly patching, a weekly deploy).
//!
//! A window recurs on days of the week at a local start time in an IANA time zone, for a duration.
//! While one covers an alarm's time it acts exactly like a silence (see [`crate::silence`]): the
//! ALARM neither pages nor starts automation (unless the window lets automation run), and the
//! decision names it as `window:<name>`. Recoveries are never held back: whatever paged gets its
//! recovery, and an ALARM a window kept quiet gets none.
//!
//! Daylight-saving time: the start is local wall-clock time on each listed day. A start that falls
//! in the hour the clocks skip begins when they have gone forward (02:30 on a spring-forward night
//! is 03:00 local); a start that occurs twice (autumn) begins at its first occurrence. The duration
//! is elapsed time, so a two-hour window is two hours long on either night.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::alarm::Alarm;
use crate::routing::Match;
use crate::silence::Silence;

/// The longest window: a week (a longer one would cover every time and is a mistake).
pub const MAX_WINDOW_MINUTES: u32 = 7 * 24 * 60;
/// The prefix of the id a window's occurrence takes in decisions.
pub const WINDOW_ID_PREFIX: &str = "window:";

/// A window as written in the rules file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowSpec {
    pub name: String,
    /// Days of the week it starts on: mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<String>,
    /// Local start time, "HH:MM".
    pub start: String,
    pub duration_minutes: u32,
    /// An IANA time zone, such as Europe/Dublin or America/New_York.
    pub time_zone: String,
    /// The rules it applies to; every rule when absent.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// Conditions on the alarm, as in the rules; every one given must hold.
    #[serde(default, rename = "match")]
    pub conditions: Match,
    /// Let remediation run while nobody is paged.
    #[serde(default)]
    pub allow_automation: bool,
}

/// A validated window.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    pub name: String,
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub duration: chrono::Duration,
    pub time_zone: Tz,
    pub routes: Option<Vec<String>>,
    pub conditions: Match,
    pub allow_automation: bool,
}

fn weekday(day: &str) -> Option<Weekday> {
    Some(match day.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

impl WindowSpec {
    /// Checks the window; `rules` are the rule names it may name (the default route included).
    pub fn validate(&self, rules: &[&str]) -> Result<MaintenanceWindow, String> {
        crate::routing::check_item_name(&self.name)?;
        if self.days.is_empty() {
            return Err("days lists at least one day of the week (mon ... sun)".into());
        }
        let mut days = Vec::new();
        for day in &self.days {
            let parsed = weekday(day).ok_or_else(|| format!("days: {day:?} is not a day of the week (mon ... sun)"))?;
            if !days.contains(&parsed) {
                days.push(parsed);
            }
        }
        let start = NaiveTime::parse_from_str(&self.start, "%H:%M")
            .map_err(|_| format!("start {:?} is not a time of day as HH:MM (24-hour)", self.start))?;
        if !(1..=MAX_WINDOW_MINUTES).contains(&self.duration_minutes) {
            return Err(format!("durationMinutes must be 1-{MAX_WINDOW_MINUTES} (a week)"));
        }
        let time_zone: Tz = self.time_zone.parse().map_err(|_| {
            format!(
                "timeZone {:?} is not an IANA time zone (for example Europe/Dublin, America/New_York, UTC)",
                self.time_zone
            )
        })?;
        if let Some(routes) = &self.routes {
            if routes.is_empty() {
                return Err("routes, when given, names at least one rule (leave it out for every rule)".into());
            }
            if let Some(unknown) = routes.iter().find(|r| !rules.contains(&r.as_str())) {
                return Err(format!("routes: no rule is named {unknown:?}"));
            }
        }
        self.conditions.check()?;
        Ok(MaintenanceWindow {
            name: self.name.clone(),
            days,
            start,
            duration: chrono::Duration::minutes(i64::from(self.duration_minutes)),
            time_zone,
            routes: self.routes.clone(),
            conditions: self.conditions.clone(),
            allow_automation: self.allow_automation,
        })
    }
}

impl MaintenanceWindow {
    /// When the window starts on local date `date` (if it starts that day), in UTC.
    fn start_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        if !self.days.contains(&date.weekday()) {
            return None;
        }
        let local = date.and_time(self.start);
        let start = match self.time_zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => t,
            chrono::LocalResult::Ambiguous(first, _) => first,
            // In the hour the clocks skip: the window opens when they have gone forward.
            chrono::LocalResult::None => (1..=180).find_map(|minutes| {
                self.time_zone.from_local_datetime(&(local + chrono::Duration::minutes(minutes))).earliest()
            })?,
        };
        Some(start.with_timezone(&Utc))
    }

    /// The occurrence of the window that covers `at`: its start and end.
    pub fn occurrence_at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let today = at.with_timezone(&self.time_zone).date_naive();
        // An occurrence that covers `at` started on this local day or within the week before.
        let back = u64::try_from(self.duration.num_days()).unwrap_or(7) + 1;
        (0..=back).filter_map(|days| today.checked_sub_days(Days::new(days))).find_map(|date| {
            let start = self.start_on(date)?;
            let end = start + self.duration;
            (start <= at && at < end).then_some((start, end))
        })
    }

    /// Whether the window applies to alarms of `route` that look like `alarm`.
    pub fn applies_to(&self, route: &str, alarm: &Alarm) -> bool {
        self.routes.as_ref().is_none_or(|routes| routes.iter().any(|r| r == route)) && self.conditions.matches(alarm)
    }

    /// The window as a silence, when it covers `alarm` on `route` at the alarm's own time.
    pub fn silence_for(&self, route: &str, alarm: &Alarm) -> Option<Silence> {
        if !self.applies_to(route, alarm) {
            return None;
        }
        let (starts_at, ends_at) = self.occurrence_at(alarm.timestamp)?;
        Some(Silence {
            id: format!("{WINDOW_ID_PREFIX}{}", self.name),
            conditions: self.conditions.clone(),
            route: Some(route.to_owned()),
            author: "the rules file".into(),
            reason: format!("maintenance window {}", self.name),
            starts_at,
            ends_at,
            allow_automation: self.allow_automation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[&str], start: &str, minutes: u32, zone: &str) -> MaintenanceWindow {
        WindowSpec {
            name: "patching".into(),
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.into(),
            duration_minutes: minutes,
            time_zone: zone.into(),
            routes: None,
            conditions: Match::default(),
            allow_automation: false,
        }
        .validate(&["web"])
        .expect("valid window")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn a_window_covers_its_local_hours_and_nothing_else() {
        let w = window(&["sat"], "02:00", 120, "Europe/Dublin");
        // 21 November 2026 is a Saturday; Dublin is on UTC in winter.
        assert!(w.occurrence_at(utc("2026-11-21T01:59:59Z")).is_none());
        assert_eq!(w.occurrence_at(utc("2026-11-21T02:00:00Z")).map(|o| o.0), Some(utc("2026-11-21T02:00:00Z")));
        assert!(w.occurrence_at(utc("2026-11-21T03:59:59Z")).is_some());
        assert!(w.occurrence_at(utc("2026-11-21T04:00:00Z")).is_none(), "the end is not covered");
        assert!(w.occurrence_at(utc("2026-11-22T02:30:00Z")).is_none(), "Sunday is not listed");
    }

    #[test]
    fn summer_time_moves_the_window_in_utc() {
        let w = window(&["sat"], "02:00", 120, "Europe/Dublin");
        // 20 June 2026 is a Saturday; Dublin is UTC+1 in summer: 02:00 local is 01:00 UTC.
        assert_eq!(w.occurrence_at(utc("2026-06-20T01:30:00Z")).map(|o| o.0), Some(utc("2026-06-20T01:00:00Z")));
        assert!(w.occurrence_at(utc("2026-06-20T03:30:00Z")).is_none());
    }

    #[test]
    fn a_start_in_the_skipped_hour_opens_when_the_clocks_have_gone_forward() {
        // New York springs forward on Sunday 8 March 2026: 02:00-03:00 local does not exist.
        let w = window(&["sun"], "02:30", 60, "America/New_York");
        let (start, end) = w.occurrence_at(utc("2026-03-08T07:30:00Z")).expect("covered");
        assert_eq!(start, utc("2026-03-08T07:00:00Z"), "03:00 EDT");
        assert_eq!(end, utc("2026-03-08T08:00:00Z"), "an hour of elapsed time");
    }

    #[test]
    fn a_start_that_happens_twice_opens_at_the_first_and_lasts_its_duration() {
        // New York falls back on Sunday 1 November 2026: 01:00-02:00 local happens twice.
        let w = window(&["sun"], "01:30", 60, "America/New_York");
        let (start, end) = w.occurrence_at(utc("2026-11-01T05:45:00Z")).expect("covered");
        assert_eq!(start, utc("2026-11-01T05:30:00Z"), "01:30 EDT, the first time");
        assert_eq!(end, utc("2026-11-01T06:30:00Z"));
        assert!(w.occurrence_at(utc("2026-11-01T06:45:00Z")).is_none(), "the second 01:45 is after the window");
    }

    #[test]
    fn a_window_that_crosses_midnight_covers_the_next_morning() {
        let w = window(&["fri"], "23:00", 180, "UTC");
        // Friday 20 November 2026 23:00 to Saturday 02:00.
        assert!(w.occurrence_at(utc("2026-11-21T01:30:00Z")).is_some());
        assert!(w.occurrence_at(utc("2026-11-21T02:00:00Z")).is_none());
    }

    #[test]
    fn bad_windows_are_refused_by_name() {
        let spec = |days: Vec<&str>, start: &str, minutes: u32, zone: &str, routes: Option<Vec<&str>>| WindowSpec {
            name: "w".into(),
            days: days.into_iter().map(str::to_owned).collect(),
            start: start.into(),
            duration_minutes: minutes,
            time_zone: zone.into(),
            routes: routes.map(|r| r.into_iter().map(str::to_owned).collect()),
            conditions: Match::default(),
            allow_automation: false,
        };
        let refused = |s: WindowSpec| s.validate(&["web"]).expect_err("refused");
        assert!(refused(spec(vec![], "02:00", 60, "UTC", None)).contains("at least one day"));
        assert!(refused(spec(vec!["someday"], "02:00", 60, "UTC", None)).contains("not a day of the week"));
        assert!(refused(spec(vec!["sat"], "2am", 60, "UTC", None)).contains("HH:MM"));
        assert!(refused(spec(vec!["sat"], "02:00", 0, "UTC", None)).contains("durationMinutes"));
        assert!(refused(spec(vec!["sat"], "02:00", 60, "Europe/Atlantis", None)).contains("IANA"));
        assert!(refused(spec(vec!["sat"], "02:00", 60, "UTC", Some(vec!["nope"]))).contains("no rule is named"));
    }
}
