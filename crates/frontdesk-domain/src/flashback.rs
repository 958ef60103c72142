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

    /// One row of the hand-worked table: birthdate, then first event (month, year, trait) and
    /// second event (month, year, trait), as docs/flashback.md's algorithm gives them.
    type Row = (
        Date,
        (&'static str, i32, &'static str),
        (&'static str, i32, &'static str),
    );

    /// Worked by hand from docs/flashback.md (never by this code): each row notes d, m, o and
    /// the arithmetic. Together they break (d+m) mod 8 = 0 and o = d, which the guide's
    /// customer has, and reach both ends of every offset and both trait tables.
    const TABLE: [Row; 10] = [
        // d=10 m=3 o=31+28+10=69. First (2+10)%12=0 Jan, 1985+6+4; second (3+20+4)%12=3 Apr,
        // 1985+16+(13%8=5); 69%12=9.
        (
            date!(1985 - 03 - 10),
            ("January", 1995, "Curious"),
            ("April", 2006, "Easygoing"),
        ),
        // Leap year: o=31+29+1=61. First (2+1)=3 Apr, 2000+6+1; second (3+2+4)=9 Oct,
        // 2000+16+(4%8); 61%12=1.
        (
            date!(2000 - 03 - 01),
            ("April", 2007, "Playful"),
            ("October", 2020, "Ambitious"),
        ),
        // 1900 is not a leap year: o=31+28+1=60 -> 0. Same months as 2000-03-01.
        (
            date!(1900 - 03 - 01),
            ("April", 1907, "Playful"),
            ("October", 1920, "Independent"),
        ),
        // The earliest birthdate: d=1 m=1 o=1. First (0+1)=1 Feb, 1900+6+1; second (1+2+4)=7 Aug,
        // 1900+16+2; 1%12=1.
        (
            date!(1900 - 01 - 01),
            ("February", 1907, "Imaginative"),
            ("August", 1918, "Ambitious"),
        ),
        // A 31st, last day of a common year: d=31 m=12 o=365. First (11+31)%12=6 Jul,
        // 1999+6+(31%6=1); second (12+62+4)%12=6 Jul, 1999+16+(43%8=3); 365%12=5.
        (
            date!(1999 - 12 - 31),
            ("July", 2006, "Adventurous"),
            ("July", 2018, "Pragmatic"),
        ),
        // The same in a leap year: o=366, 366%12=6.
        (
            date!(2000 - 12 - 31),
            ("July", 2007, "Adventurous"),
            ("July", 2019, "Empathetic"),
        ),
        // 29 February: d=29 m=2 o=60. First (1+29)%12=6 Jul, 1996+6+(29%6=5) (the latest
        // childhood offset, 11); second (2+58+4)%12=4 May, 1996+16+(31%8=7) (the latest, 23);
        // 60%12=0.
        (
            date!(1996 - 02 - 29),
            ("July", 2007, "Adventurous"),
            ("May", 2019, "Independent"),
        ),
        // The earliest offsets: d=6 m=2 o=37, 6%6=0 and (6+2)%8=0. First (1+6)=7 Aug, 1960+6;
        // second (2+12+4)%12=6 Jul, 1960+16; 37%12=1.
        (
            date!(1960 - 02 - 06),
            ("August", 1966, "Patient"),
            ("July", 1976, "Ambitious"),
        ),
        // The last entry of both tables: d=11 m=1 o=11. First (0+11)=11 Dec, 1991+6+5; second
        // (1+22+4)%12=3 Apr, 1991+16+(12%8=4); 11%12=11.
        (
            date!(1991 - 01 - 11),
            ("December", 2002, "Thoughtful"),
            ("April", 2011, "Visionary"),
        ),
        // d=12 m=6 o=31+28+31+30+31+12=163. First (5+12)%12=5 Jun, 1975+6+0; second
        // (6+24+4)%12=10 Nov, 1975+16+(18%8=2); 163%12=7.
        (
            date!(1975 - 06 - 12),
            ("June", 1981, "Caring"),
            ("November", 1993, "Bold"),
        ),
    ];

    fn profile(first: (&str, i32, &str), second: (&str, i32, &str)) -> Flashback {
        Flashback {
            first_event_date: EventDate {
                month: first.0.to_owned(),
                year: first.1,
            },
            first_event_trait: first.2.to_owned(),
            second_event_date: EventDate {
                month: second.0.to_owned(),
                year: second.1,
            },
            second_event_trait: second.2.to_owned(),
        }
    }

    #[test]
    fn hand_worked_table() {
        // Every wrong row is listed, so a broken formula shows which cases it breaks.
        let wrong: Vec<String> = TABLE
            .into_iter()
            .filter_map(|(birthdate, first, second)| {
                let got = Flashback::compute(birthdate, TODAY);
                (got != Some(profile(first, second))).then(|| format!("{birthdate}: {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "wrong profiles:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_profile_begins_on_the_first_day_of_the_second_events_month() {
        // 1985-03-10: second event April 2006; 1990-01-15: December 2006.
        let april = profile(("January", 1995, "Curious"), ("April", 2006, "Easygoing"));
        let born = date!(1985 - 03 - 10);
        assert_eq!(Flashback::compute(born, date!(2006 - 04 - 01)), Some(april));
        assert_eq!(Flashback::compute(born, date!(2006 - 03 - 31)), None);
        let guide = date!(1990 - 01 - 15);
        let december = profile(("April", 1999, "Playful"), ("December", 2006, "Principled"));
        assert_eq!(
            Flashback::compute(guide, date!(2006 - 12 - 01)),
            Some(december)
        );
        assert_eq!(Flashback::compute(guide, date!(2006 - 11 - 30)), None);
    }

    #[test]
    fn today_decides_only_whether_it_exists() {
        // Deterministic: the same birthdate gives the same profile whatever the day, once it
        // exists; and the docs' ranges hold for every birthdate of the century.
        let later = date!(2090 - 06 - 15);
        let mut first_offsets = std::collections::BTreeSet::new();
        let mut second_offsets = std::collections::BTreeSet::new();
        let mut day = date!(1900 - 01 - 01);
        while day < date!(2000 - 01 - 01) {
            let Some(profile) = Flashback::compute(day, TODAY) else {
                panic!("no profile for {day}")
            };
            assert_eq!(
                Flashback::compute(day, later).as_ref(),
                Some(&profile),
                "{day}"
            );
            let first = profile.first_event_date.year - day.year();
            let second = profile.second_event_date.year - day.year();
            assert!((6..=11).contains(&first), "{day}: first event at {first}");
            assert!(
                (16..=23).contains(&second),
                "{day}: second event at {second}"
            );
            first_offsets.insert(first);
            second_offsets.insert(second);
            day = day.next_day().unwrap_or(TODAY);
        }
        assert_eq!(
            first_offsets.into_iter().collect::<Vec<_>>(),
            [6, 7, 8, 9, 10, 11]
        );
        assert_eq!(
            second_offsets.into_iter().collect::<Vec<_>>(),
            [16, 17, 18, 19, 20, 21, 22, 23]
        );
    }

    #[test]
    fn none_while_the_second_event_is_ahead() {
        assert_eq!(Flashback::compute(date!(2020 - 06 - 01), TODAY), None);
        assert_eq!(Flashback::compute(TODAY, TODAY), None);
    }
}
