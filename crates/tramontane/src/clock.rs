//! The moment a command counts expiries, rotation windows and overlaps from. Tests and demos
//! pin it; otherwise it is the system clock.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Where "now" comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// This instant.
    At(Timestamp),
    /// Noon (UTC) of this day: a whole day pinned, whatever the hour the command runs.
    NoonOf(Date),
}

impl Clock {
    /// The clock a command's settings choose: an instant wins over a day, and either over
    /// the system clock.
    pub fn pinned(now: Option<Timestamp>, today: Option<Date>) -> Clock {
        match (now, today) {
            (Some(now), _) => Clock::At(now),
            (None, Some(day)) => Clock::NoonOf(day),
            (None, None) => Clock::System,
        }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::At(now) => *now,
            // Noon of a civil day always exists in UTC; the fallback is never taken.
            Clock::NoonOf(day) => day
                .at(12, 0, 0, 0)
                .to_zoned(TimeZone::UTC)
                .map(|zoned| zoned.timestamp())
                .unwrap_or_else(|_| Timestamp::now()),
        }
    }

    /// The UTC day of [`Clock::now`].
    pub fn today(&self) -> Date {
        day_of(self.now())
    }
}

/// The UTC day of an instant: the day policy expiry dates are checked against.
pub fn day_of(now: Timestamp) -> Date {
    now.to_zoned(TimeZone::UTC).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_wins_over_a_day_and_a_day_is_counted_from_noon() {
        let instant: Timestamp = "2026-06-02T23:30:00Z".parse().unwrap();
        let day: Date = "2026-06-01".parse().unwrap();
        assert_eq!(Clock::pinned(Some(instant), Some(day)).now(), instant);
        assert_eq!(
            Clock::pinned(None, Some(day)).now(),
            "2026-06-01T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(Clock::pinned(None, None), Clock::System);
    }

    #[test]
    fn the_day_of_an_instant_is_its_utc_day() {
        let late: Timestamp = "2026-06-01T23:59:59Z".parse().unwrap();
        assert_eq!(day_of(late), "2026-06-01".parse::<Date>().unwrap());
        assert_eq!(
            Clock::At("2026-06-02T00:00:00Z".parse().unwrap()).today(),
            "2026-06-02".parse::<Date>().unwrap()
        );
    }
}
