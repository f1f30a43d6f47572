//! Working days (工作日), for review deadlines: Monday to Friday, less public
//! holidays, plus the weekend days that are worked in exchange (调休). Days
//! are counted in China Standard Time (UTC+8), whatever the server's zone.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Non-working weekdays and working weekend days, as the State Council
/// announces them each year.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    #[serde(default)]
    pub workdays: BTreeSet<NaiveDate>,
}

fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

impl Calendar {
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        !self.holidays.contains(&day) && !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The end of the `n`th working day after the day of `from` (in UTC+8):
    /// submitted on Monday, 2 working days are due at the end of Wednesday.
    pub fn deadline(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut day = from.with_timezone(&cst()).date_naive();
        let mut left = n;
        while left > 0 {
            day = day.succ_opt().expect("dates within chrono's range");
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        let end = day
            .succ_opt()
            .expect("dates within chrono's range")
            .and_hms_opt(0, 0, 0)
            .expect("midnight");
        end.and_local_timezone(cst())
            .single()
            .expect("fixed offsets are unambiguous")
            .with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn two_working_days_skip_the_weekend() {
        let c = Calendar::default();
        // Thursday 2026-11-19 10:00 +08:00 → end of Monday 2026-11-23 (+08:00).
        assert_eq!(
            c.deadline(at("2026-11-19T10:00:00+08:00"), 2),
            at("2026-11-24T00:00:00+08:00")
        );
        // Late Friday evening UTC is already Saturday in China: counted from Saturday.
        assert_eq!(
            c.deadline(at("2026-11-20T17:00:00Z"), 1),
            at("2026-11-24T00:00:00+08:00")
        );
    }

    #[test]
    fn holidays_and_make_up_days_count() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let c = Calendar {
            holidays: [day("2026-10-01"), day("2026-10-02")].into(),
            workdays: [day("2026-10-10")].into(),
        };
        assert!(!c.is_working_day(day("2026-10-01")));
        assert!(c.is_working_day(day("2026-10-10")), "a worked Saturday");
        // Wednesday 30 Sep + 5 working days: Oct 5, 6, 7, 8, 9 (1 and 2 are holidays).
        assert_eq!(
            c.deadline(at("2026-09-30T09:00:00+08:00"), 5),
            at("2026-10-10T00:00:00+08:00")
        );
    }
}
