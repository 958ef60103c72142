//! Flashback: two formative moments and the traits they suggest, derived from a birthdate
//! alone. A pure, deterministic function; docs/flashback.md explains it for agents.

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// Traits of the childhood event, indexed by its month.
const CHILDHOOD_TRAITS: [&str; 12] = [
    "Curious",
    "Imaginative",
    "Resilient",
    "Playful",
    "Observant",
    "Caring",
    "Adventurous",
    "Patient",
    "Inventive",
    "Cheerful",
    "Determined",
    "Thoughtful",
];

/// Traits of the coming-of-age event, indexed by the birthdate's day of the year.
const COMING_OF_AGE_TRAITS: [&str; 12] = [
    "Independent",
    "Ambitious",
    "Loyal",
    "Principled",
    "Sociable",
    "Pragmatic",
    "Empathetic",
    "Bold",
    "Analytical",
    "Easygoing",
    "Diplomatic",
    "Visionary",
];

/// The month and year of one event, e.g. `{"month":"March","year":1997}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDate {
    pub month: String,
    pub year: i32,
}

/// The spec's `flashBack` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flashback {
    pub first_event_date: EventDate,
    pub first_event_trait: String,
    pub second_event_date: EventDate,
    pub second_event_trait: String,
}

/// The spec's Flashback Profile Object: `{"flashBack": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashbackProfile {
    pub flash_back: Flashback,
}

impl Flashback {
    /// The profile of someone born on `birthdate`, or `None` while its second event still lies
    /// after `today` (a customer younger than about 24 has no profile yet).
    ///
    /// With d = day of month (1..=31), m = month (1..=12), y = year of birth:
    /// - first event: age 6 + d mod 6, in month (m - 1 + d) mod 12 + 1; its trait is
    ///   `CHILDHOOD_TRAITS[event month - 1]`;
    /// - second event: age 16 + (d + m) mod 8, in month (m + 2d + 4) mod 12 + 1; its trait is
    ///   `COMING_OF_AGE_TRAITS[day of year mod 12]`.
    pub fn compute(birthdate: Date, today: Date) -> Option<Self> {
        let d = i32::from(birthdate.day());
        let m = i32::from(u8::from(birthdate.month()));
        let y = birthdate.year();

        let first_month = month_from_index((m - 1 + d).rem_euclid(12));
        let first_year = y + 6 + d.rem_euclid(6);
        let second_month = month_from_index((m + 2 * d + 4).rem_euclid(12));
        let second_year = y + 16 + (d + m).rem_euclid(8);

        let second_start = Date::from_calendar_date(second_year, second_month, 1).ok()?;
        if second_start > today {
            return None;
        }
        let first_trait = CHILDHOOD_TRAITS[usize::from(u8::from(first_month)) - 1];
        let second_trait =
            COMING_OF_AGE_TRAITS[usize::from(birthdate.ordinal()) % COMING_OF_AGE_TRAITS.len()];
        Some(Self {
            first_event_date: EventDate {
                month: first_month.to_string(),
                year: first_year,
            },
            first_event_trait: first_trait.to_owned(),
            second_event_date: EventDate {
                month: second_month.to_string(),
                year: second_year,
            },
            second_event_trait: second_trait.to_owned(),
        })
    }

    pub fn into_profile(self) -> FlashbackProfile {
        FlashbackProfile { flash_back: self }
    }
}

/// 0 -> January ... 11 -> December.
fn month_from_index(index: i32) -> Month {
    let mut month = Month::January;
    for _ in 0..index.rem_euclid(12) {
        month = month.next();
    }
    month
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 25);

    #[test]
    fn the_guides_customer() {
        // 1990-01-15: d=15, m=1 -> first: age 6+3=9 (1999), month (0+15)%12=3 -> April (trait 4th: Playful);
        // second: age 16+(16%8)=16 (2006), month (1+30+4)%12=11 -> December; ordinal 15 -> 3.
        let profile = Flashback::compute(date!(1990 - 01 - 15), TODAY);
        let json = profile.map(|p| serde_json::to_value(p.into_profile()).unwrap_or_default());
        assert_eq!(
            json,
            Some(serde_json::json!({
                "flashBack": {
                    "firstEventDate": {"month": "April", "year": 1999},
                    "firstEventTrait": "Playful",
                    "secondEventDate": {"month": "December", "year": 2006},
                    "secondEventTrait": "Principled"
                }
            }))
        );
    }

    #[test]
    fn deterministic_and_ordered() {
        let mut day = date!(1900 - 01 - 01);
        while day < date!(2000 - 01 - 01) {
            let a = Flashback::compute(day, TODAY);
            assert_eq!(a, Flashback::compute(day, TODAY));
            let Some(a) = a else {
                panic!("no profile for {day}")
            };
            assert!(a.first_event_date.year < a.second_event_date.year);
            assert!(a.first_event_date.year > day.year());
            day = day.next_day().unwrap_or(TODAY);
        }
    }

    #[test]
    fn none_while_the_second_event_is_ahead() {
        assert_eq!(Flashback::compute(date!(2020 - 06 - 01), TODAY), None);
        assert_eq!(Flashback::compute(TODAY, TODAY), None);
    }
}
