//! Fixed phrases, recognized before any word is linked: time ranges and buckets ("last
//! 2 hours", "in March 2025", "per day"), row limits and rankings ("top 5", "the 10 most
//! recent", "the 3 slowest"); comparisons are read in `compare.rs`.

use chrono::{Datelike, Duration, NaiveDate};

use crate::ask::words::{aggregate_word, month, small_number, superlative, time_unit, Token, FILLER};
use super::{unit_seconds, Reader, Time};

impl Reader<'_> {
    /// A number at `i`: digits, or a small number word ("a" counts as one here).
    pub(super) fn number_at(&self, i: usize) -> Option<f64> {
        let t = self.word(i)?;
        t.number.or_else(|| small_number(&t.text))
    }

    /// A date starting at `i`: ISO, "March 3, 2025", "3 March 2025", "March 2025" (the
    /// month: returns its first day and `month = true`), or a year alone with `year_ok`.
    pub(super) fn date_at(&self, i: usize, year_ok: bool) -> Option<(NaiveDate, usize, DateSpan)> {
        let t = self.word(i)?;
        if let Some((y, m, d)) = t.date {
            return NaiveDate::from_ymd_opt(y, m, d).map(|date| (date, 1, DateSpan::Day));
        }
        if let Some((y, m)) = year_month(&t.text) {
            return NaiveDate::from_ymd_opt(y, m, 1).map(|date| (date, 1, DateSpan::Month));
        }
        let year = |j: usize| self.word(j).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && (1900.0..2200.0).contains(n)).map(|n| n as i32);
        let day = |j: usize| {
            self.word(j).and_then(|t| {
                let digits: String = t.text.trim_end_matches(|c: char| c.is_alphabetic()).to_string();
                digits.parse::<u32>().ok().filter(|d| (1..=31).contains(d))
            })
        };
        if let (Some(q), Some(y)) = (t.text.strip_prefix('q').and_then(|q| q.parse::<u32>().ok()).filter(|q| (1..=4).contains(q)), year(i + 1)) {
            return NaiveDate::from_ymd_opt(y, 3 * (q - 1) + 1, 1).map(|date| (date, 2, DateSpan::Quarter));
        }
        // "H1 2025": a half year.
        if let (Some(h), Some(y)) = (t.text.strip_prefix('h').and_then(|h| h.parse::<u32>().ok()).filter(|h| (1..=2).contains(h)), year(i + 1)) {
            return NaiveDate::from_ymd_opt(y, 6 * (h - 1) + 1, 1).map(|date| (date, 2, DateSpan::Half));
        }
        // "Christmas 2025", "New Year's Eve 2024"
        if let Some((m, d, len)) = self.holiday_at(i) {
            return NaiveDate::from_ymd_opt(year(i + len)?, m, d).map(|date| (date, len + 1, DateSpan::Day));
        }
        if let Some(m) = month(&t.text) {
            // March 3, 2025 | March 3rd 2025 | March 2025
            if let (Some(d), Some(y)) = (day(i + 1), year(i + 2)) {
                return NaiveDate::from_ymd_opt(y, m, d).map(|date| (date, 3, DateSpan::Day));
            }
            if let Some(y) = year(i + 1) {
                return NaiveDate::from_ymd_opt(y, m, 1).map(|date| (date, 2, DateSpan::Month));
            }
            return None;
        }
        if let (Some(d), Some(m), Some(y)) = (day(i), self.word(i + 1).and_then(|t| month(&t.text)), year(i + 2)) {
            return NaiveDate::from_ymd_opt(y, m, d).map(|date| (date, 3, DateSpan::Day));
        }
        if year_ok {
            if let Some(y) = year(i) {
                return NaiveDate::from_ymd_opt(y, 1, 1).map(|date| (date, 1, DateSpan::Year));
            }
        }
        None
    }

    /// "<word> [than] N units ago" with one of `words` at `i`: N, the unit and the words read.
    fn age_at(&self, i: usize, words: &[&str]) -> Option<(f64, &'static str, usize)> {
        if !self.is(i, words) {
            return None;
        }
        let (n_at, len) = if self.is(i + 1, &["than"]) { (i + 2, 5) } else { (i + 1, 4) };
        let unit = self.word(n_at + 1).and_then(|t| time_unit(&t.text))?;
        self.is(n_at + 2, &["ago"]).then_some((self.number_at(n_at)?, unit, len))
    }

    /// Whether a hyphen joins token `i` to the next ("July-December").
    pub(super) fn hyphen_after(&self, i: usize) -> bool {
        let (Some(a), Some(b)) = (self.tokens.get(i), self.tokens.get(i + 1)) else { return false };
        self.question.chars().skip(a.span.1).take(b.span.0.saturating_sub(a.span.1)).any(|c| c == '-')
    }

    /// "June 14-15, 2025", "24-30 November 2025", "(from) 10 to 20 March 2025": `[June 14,
    /// June 16)` and the words read.
    fn day_range_at(&self, i: usize) -> Option<(NaiveDate, NaiveDate, usize)> {
        let day = |j: usize| self.word(j).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && (1.0..=31.0).contains(n)).map(|n| n as u32);
        if let (Some(first), true, Some(last), Some(m)) = (day(i), self.is(i + 1, &["to", "through", "until", "till"]), day(i + 2), self.word(i + 3).and_then(|t| month(&t.text))) {
            let year = self.word(i + 4).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && (1900.0..2200.0).contains(n))? as i32;
            let from = NaiveDate::from_ymd_opt(year, m, first)?;
            let to = NaiveDate::from_ymd_opt(year, m, last)?.succ_opt()?;
            return (from < to).then_some((from, to, 5));
        }
        let (m, days) = match month(&self.word(i)?.text) {
            Some(m) => (m, i + 1),
            None => (month(&self.word(i + 1)?.text)?, i),
        };
        let (first, last) = self.word(days)?.text.split_once('-')?;
        let (first, last) = (first.parse::<u32>().ok()?, last.parse::<u32>().ok()?);
        let year = self.word(i + 2).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && (1900.0..2200.0).contains(n))? as i32;
        let from = NaiveDate::from_ymd_opt(year, m, first)?;
        let to = NaiveDate::from_ymd_opt(year, m, last)?.succ_opt()?;
        (from < to).then_some((from, to, 3))
    }

    /// "March 1", "Nov 24th", "Christmas" with the year left to a later date ("between
    /// March 1 and March 15 2025"): the month, the day and the words read.
    fn month_day_at(&self, i: usize) -> Option<(u32, u32, usize)> {
        if let Some(holiday) = self.holiday_at(i) {
            return Some(holiday);
        }
        let day = |j: usize| -> Option<u32> {
            let digits: String = self.word(j)?.text.trim_end_matches(|c: char| c.is_alphabetic()).to_string();
            digits.parse::<u32>().ok().filter(|d| (1..=31).contains(d))
        };
        // "March 1", or "1 April".
        match month(&self.word(i)?.text) {
            Some(m) => Some((m, day(i + 1)?, 2)),
            None => Some((month(&self.word(i + 1)?.text)?, day(i)?, 2)),
        }
    }

    /// A holiday on a fixed day ("Christmas", "New Year's Eve"): month, day, words read.
    fn holiday_at(&self, i: usize) -> Option<(u32, u32, usize)> {
        HOLIDAYS.iter().find(|(words, _, _)| words.iter().enumerate().all(|(k, w)| self.is(i + k, &[w]))).map(|(words, m, d)| (*m, *d, words.len()))
    }

    /// "the first week of June 2025", "the second half of 2025", "the last month of 2025",
    /// "the first quarter of 2024": `[from, to)` and the words read.
    fn part_of_period(&self, i: usize) -> Option<(NaiveDate, NaiveDate, usize)> {
        let position = ordinal(&self.word(i)?.text)?;
        // "the first two weeks of September": two of them.
        // At most a year's days: larger counts are no part of a period (and would overflow dates).
        let (count, at) = match self.number_at(i + 1).filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 366.0 && self.word(i + 1).is_some_and(|t| !t.is_any(&["a", "an"]))) {
            Some(n) => (n as i64, i + 2),
            None => (1, i + 1),
        };
        let unit = crate::ask::words::stem(&self.word(at)?.text);
        if !self.is(at + 1, &["of"]) {
            return None;
        }
        let (start, len, span) = self.date_at(at + 2, true)?;
        let len = len + (at - i) - 1;
        let end = span.end(start);
        let nth = |size: i32| -> Option<(NaiveDate, NaiveDate)> {
            // Parts of `size` months; the last part ends where the period does.
            let total = (end.year() * 12 + end.month() as i32) - (start.year() * 12 + start.month() as i32);
            let count = total / size;
            let k = if position < 0 { count } else { position };
            (size <= total && (1..=count).contains(&k)).then(|| (add_months(start, size * (k - 1)), add_months(start, size * k)))
        };
        let (from, to) = match unit.as_str() {
            "week" if count > 1 => {
                let days = Duration::days(7 * count);
                if position < 0 { (end - days, end) } else if position == 1 { (start, start + days) } else { return None }
            }
            "day" if count > 1 => {
                let days = Duration::days(count);
                if position < 0 { (end - days, end) } else if position == 1 { (start, start + days) } else { return None }
            }
            _ if count > 1 => return None,
            "week" => {
                let from = if position < 0 { end - Duration::days(7) } else { start + Duration::days(7 * (position as i64 - 1)) };
                (from, (from + Duration::days(7)).min(end))
            }
            "day" => {
                let from = if position < 0 { end - Duration::days(1) } else { start + Duration::days(position as i64 - 1) };
                (from, from + Duration::days(1))
            }
            "month" => nth(1)?,
            "quarter" => nth(3)?,
            "half" => nth(6)?,
            _ => return None,
        };
        (from >= start && to <= end && from < to).then_some((from, to, 3 + len))
    }

    /// "last 2 hours", "past day", "since 2025-06-01", "in March 2025", "on 2025-07-04",
    /// "between … and …", "per day", "hourly".
    pub(super) fn recognize_time(&mut self, time: &mut Time) {
        let mut i = 0;
        while i < self.tokens.len() {
            if self.word(i).is_none() {
                i += 1;
                continue;
            }
            if let Some((from, to, len)) = self.part_of_period(i) {
                time.period = Some((Some(from), Some(to)));
                let start = if i > 0 && self.is(i - 1, &["the"]) { i - 1 } else { i };
                self.mark(start..i + len);
                i += len;
                continue;
            }
            // "accounts older than 30 days", "(been around) for more than 90 days": their time
            // lies before that long ago.
            let age = if self.is(i, &["older"]) && self.is(i + 1, &["than"]) {
                Some((i + 2, 0))
            } else if self.is(i, &["for"]) && self.is(i + 1, &["more", "longer", "over"]) {
                let n_at = if self.is(i + 2, &["than"]) { i + 3 } else { i + 2 };
                Some((n_at, 0))
            } else {
                None
            };
            if let Some((n_at, _)) = age {
                let unit = self.word(n_at + 1).and_then(|t| time_unit(&t.text)).filter(|_| !self.is(n_at + 2, &["ago"]));
                if let (Some(n), Some(unit)) = (self.number_at(n_at), unit) {
                    time.before_ago = Some((n, unit));
                    self.mark(i..n_at + 2);
                    i = n_at + 2;
                    continue;
                }
            }
            // more than 30 days ago, over 2 hours ago
            if let Some((n, unit, len)) = self.age_at(i, &["more", "longer", "over"]) {
                time.before_ago = Some((n, unit));
                self.mark(i..i + len);
                i += len;
                continue;
            }
            // "more than a week but less than 30 days ago": between the two.
            if self.is(i, &["more", "over"]) {
                let n_at = if self.is(i + 1, &["than"]) { i + 2 } else { i + 1 };
                let near = if self.is(n_at, &["a", "an", "one"]) { Some(1.0) } else { self.number_at(n_at) };
                let near_unit = self.word(n_at + 1).and_then(|t| time_unit(&t.text));
                let far_at = n_at + 2 + usize::from(self.is(n_at + 2, &["but", "and"]));
                let far_n_at = if self.is(far_at, &["less", "fewer", "under"]) && self.is(far_at + 1, &["than"]) { Some(far_at + 2) } else { None };
                if let (Some(near), Some(near_unit), Some(far_n_at)) = (near, near_unit, far_n_at) {
                    let far_unit = self.word(far_n_at + 1).and_then(|t| time_unit(&t.text));
                    if let (Some(far), Some(far_unit), true) = (self.number_at(far_n_at), far_unit, self.is(far_n_at + 2, &["ago"])) {
                        let near_in_far = near * unit_seconds(near_unit) / unit_seconds(far_unit);
                        if near_in_far.fract() == 0.0 && near_in_far < far {
                            time.ago = Some((near_in_far, far, far_unit));
                            self.mark(i..far_n_at + 3);
                            i = far_n_at + 3;
                            continue;
                        }
                    }
                }
            }
            // less than 30 days ago, under 2 hours ago: within that window.
            if let Some((n, unit, len)) = self.age_at(i, &["less", "fewer", "under", "within"]) {
                time.recent = Some((n, unit));
                self.mark(i..i + len);
                i += len;
                continue;
            }
            // "24-hour reading counts": the last 24 hours.
            if let (Some(n), true, Some(unit)) = (self.number_at(i), self.hyphen_after(i), self.word(i + 1).and_then(|t| time_unit(&t.text)).filter(|_| self.word(i + 1).is_some_and(|t| t.text == t.stem))) {
                let measured = i > 0 && self.tokens[i - 1].is_any(&["every", "per", "each", "a", "an"]);
                if !measured && time.recent.is_none() && !time.has_range() {
                    time.recent = Some((n, unit));
                    self.mark(i..i + 2);
                    i += 2;
                    continue;
                }
            }
            // "the last half hour", "past half an hour": 30 minutes.
            if self.is(i, &["last", "past"]) && self.is(i + 1, &["half"]) {
                let unit_at = if self.is(i + 2, &["an", "a"]) { i + 3 } else { i + 2 };
                if self.is(unit_at, &["hour"]) {
                    time.recent = Some((30.0, "minute"));
                    self.mark(i..unit_at + 1);
                    i = unit_at + 1;
                    continue;
                }
            }
            // between 6 and 12 hours ago
            if self.is(i, &["between"]) && self.is(i + 2, &["and"]) && self.is(i + 5, &["ago"]) {
                let unit = self.word(i + 4).and_then(|t| time_unit(&t.text));
                if let (Some(near), Some(far), Some(unit)) = (self.number_at(i + 1), self.number_at(i + 3), unit) {
                    time.ago = Some((near.min(far), near.max(far), unit));
                    self.mark(i..i + 6);
                    i += 6;
                    continue;
                }
            }
            // last|past|previous [N] unit
            if self.is(i, &["last", "past", "previous", "recent", "trailing"]) {
                let (amount, unit_at) = match self.number_at(i + 1) {
                    Some(n) if self.word(i + 1).is_some_and(|t| !t.is("a")) => (n, i + 2),
                    _ => (1.0, i + 1),
                };
                if let Some(unit) = self.word(unit_at).and_then(|t| time_unit(&t.text)).filter(|u| *u != "day" || !self.is(unit_at, &["date", "dates", "daily"])) {
                    time.recent = Some((amount, unit));
                    self.mark(i..unit_at + 1);
                    i = unit_at + 1;
                    continue;
                }
            }
            // compact "24h", "7d", "30m"
            if let Some(t) = self.word(i) {
                let digits: String = t.text.chars().take_while(|c| c.is_ascii_digit()).collect();
                let suffix = &t.text[digits.len()..];
                let unit = match suffix {
                    "h" | "hr" | "hrs" => Some("hour"),
                    "d" => Some("day"),
                    "m" | "min" | "mins" => Some("minute"),
                    "w" => Some("week"),
                    _ => None,
                };
                if let (Some(unit), Ok(n), true) = (unit, digits.parse::<f64>(), i > 0 && self.tokens[i - 1].is_any(&["last", "past"])) {
                    time.recent = Some((n, unit));
                    self.mark(i - 1..i + 1);
                    i += 1;
                    continue;
                }
            }
            // "between March 1 and March 15 2025", "Nov 24 to Nov 30 2025", "Christmas to New
            // Year's Eve 2025": the year said once, at the end; both days included.
            let opener = usize::from(self.is(i, &["between", "from"]));
            if let (None, Some((m, d, len1))) = (self.date_at(i + opener, true), self.month_day_at(i + opener)) {
                let joined = i + opener + len1;
                let joins: &[&str] = if opener == 1 { &["and", "to", "through", "thru", "until", "till"] } else { &["to", "through", "thru", "until", "till"] };
                let last_day = |at: usize| -> Option<(NaiveDate, usize)> {
                    if let Some((to, len2, span)) = self.date_at(at, false) {
                        return Some((span.end(to).pred_opt()?, len2));
                    }
                    let (m2, d2, len2) = self.month_day_at(at)?;
                    let year = self.word(at + len2).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && (1900.0..2200.0).contains(n))? as i32;
                    Some((NaiveDate::from_ymd_opt(year, m2, d2)?, len2 + 1))
                };
                if let (true, Some((to, len2))) = (self.is(joined, joins), last_day(joined + 1)) {
                    // "Christmas to New Year's Day 2026": the first day is in the year before.
                    let year = if (m, d) > (to.month(), to.day()) { to.year() - 1 } else { to.year() };
                    if let (Some(from), Some(end)) = (NaiveDate::from_ymd_opt(year, m, d), to.succ_opt()) {
                        time.period = Some((Some(from), Some(end)));
                        self.mark(i..joined + 1 + len2);
                        i = joined + 1 + len2;
                        continue;
                    }
                }
            }
            // "April through June 2025", "between April and June 2025", "July-December
            // 2025": months, the year said once at the end.
            let opener = usize::from(self.is(i, &["between", "from"]));
            if let Some(m) = self.word(i + opener).and_then(|t| month(&t.text)).filter(|_| self.date_at(i + opener, true).is_none()) {
                let hyphen = opener == 0 && self.hyphen_after(i);
                let to_at = if hyphen { i + 1 } else { i + opener + 2 };
                let joined = hyphen || self.is(i + opener + 1, &["and", "to", "through", "thru", "until", "till"]);
                if let (true, Some((to, len2, DateSpan::Month))) = (joined, self.date_at(to_at, false)) {
                    let from_year = if m > to.month() { to.year() - 1 } else { to.year() };
                    if let Some(from) = NaiveDate::from_ymd_opt(from_year, m, 1) {
                        time.period = Some((Some(from), Some(DateSpan::Month.end(to))));
                        self.mark(i..to_at + len2);
                        i = to_at + len2;
                        continue;
                    }
                }
            }
            // "June 14-15, 2025", "the weekend of June 14-15 2025": the days, both included.
            if let Some((from, to, len)) = self.day_range_at(i) {
                let start = if i >= 2 && self.is(i - 1, &["of"]) && self.is(i - 2, &["weekend", "days", "week"]) { i - 2 } else { i };
                let start = if start > 0 && self.is(start - 1, &["on", "over", "in", "during", "for", "the", "from"]) { start - 1 } else { start };
                let start = if start > 0 && self.is(start - 1, &["on", "over", "in", "during", "for"]) { start - 1 } else { start };
                time.period = Some((Some(from), Some(to)));
                self.mark(start..i + len);
                i += len;
                continue;
            }
            // between D and D / from D to D
            if self.is(i, &["between", "from"]) {
                if let Some((from, len, _)) = self.date_at(i + 1, true) {
                    let and = i + 1 + len;
                    if self.is(and, &["and", "to", "through", "until", "till"]) {
                        if let Some((to, len2, span)) = self.date_at(and + 1, true) {
                            time.period = Some((Some(from), Some(span.end(to))));
                            self.mark(i..and + 1 + len2);
                            i = and + 1 + len2;
                            continue;
                        }
                    }
                }
            }
            if self.is(i, &["since", "after", "from", "starting"]) {
                if let Some((date, len, span)) = self.date_at(i + 1, true) {
                    let from = if self.is(i, &["after"]) { span.end(date) } else { date };
                    let period = time.period.get_or_insert((None, None));
                    period.0 = Some(from);
                    self.mark(i..i + 1 + len);
                    i += 1 + len;
                    continue;
                }
            }
            if self.is(i, &["before", "until", "till", "prior"]) {
                let at = if self.is(i + 1, &["to"]) { i + 2 } else { i + 1 };
                if let Some((date, len, _)) = self.date_at(at, true) {
                    let period = time.period.get_or_insert((None, None));
                    period.1 = Some(date);
                    self.mark(i..at + len);
                    i = at + len;
                    continue;
                }
            }
            if self.is(i, &["in", "during", "on", "for", "of", "throughout"]) || self.date_at(i, false).is_some() {
                let at = if self.date_at(i, false).is_some() { i } else { i + 1 };
                if let Some((date, len, span)) = self.date_at(at, true) {
                    time.period = Some((Some(date), Some(span.end(date))));
                    self.mark(i..at + len);
                    i = at + len;
                    continue;
                }
            }
            // Buckets: per|by|each|every|a unit, daily|hourly…, "month by month"
            if let Some(unit) = self.word(i).and_then(|t| time_unit(&t.text)) {
                if self.is(i + 1, &["by"]) && self.word(i + 2).and_then(|t| time_unit(&t.text)) == Some(unit) {
                    if !time.buckets.contains(&unit) {
                        time.buckets.push(unit);
                    }
                    self.mark(i..i + 3);
                    i += 3;
                    continue;
                }
                let adverb = self.is(i, &["hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "annually"]);
                // "by region and month": a bucket in a list of groups.
                let listed = i > 1 && self.tokens[i - 1].is_any(&["and", ","]) && self.tokens[..i - 1].iter().any(|t| t.is_any(&["per", "by", "each"])) && self.word(i).is_some_and(|t| t.text == t.stem);
                let marker = (i > 0 && !self.used[i - 1] && self.tokens[i - 1].is_any(&["per", "by", "each", "every", "a", "an"])) || listed;
                // "in which month …", "what day had the most …": the bucket is the answer.
                // "the busiest day of 2025": the superlative is read later, as a ranking.
                let ranking_word = |j: usize| superlative(&self.tokens[j].text).is_some() && !self.tokens[j].is_any(&["top", "bottom", "most", "least", "more", "less"]);
                let asked = i > 0
                    && !self.used[i - 1]
                    && (self.tokens[i - 1].is_any(&["which", "what"]) || ranking_word(i - 1) || (i > 1 && ranking_word(i - 2) && self.word(i - 1).is_some()))
                    // "the 2 busiest days": several buckets, ranked.
                    && self.word(i).is_some_and(|t| (t.text == t.stem || (i > 1 && self.tokens[i - 2].number.is_some())) && !t.is_any(&["date", "time", "dates", "times"]));
                if asked {
                    time.ranked_bucket = true;
                }
                // "which days had more than 10 orders": every bucket that qualifies.
                let listed_buckets = i > 0 && !self.used[i - 1] && self.tokens[i - 1].is_any(&["which", "what"]) && self.word(i).is_some_and(|t| t.text != t.stem);
                if adverb || marker || asked || listed_buckets {
                    if !time.buckets.contains(&unit) {
                        time.buckets.push(unit);
                    }
                    let start = if marker || listed_buckets || (asked && self.tokens[i - 1].is_any(&["which", "what"])) { i - 1 } else { i };
                    // "for each day", "grouped by day"
                    let start = if start > 0 && !self.used[start - 1] && self.tokens[start - 1].is_any(&["for", "grouped", "broken", "split"]) { start - 1 } else { start };
                    self.mark(start..i + 1);
                    i += 1;
                    continue;
                }
            }
            i += 1;
        }
        self.mark_restated_dates(time);
    }

    /// Words that only restate the time range already read: "(Oct-Dec)" after "Q4 2025",
    /// "both days included", "in chronological order" (buckets are listed oldest first).
    /// "temperature spread (max minus min)": the parentheses restate the spread; "min" in
    /// them is no minute.
    pub(super) fn mark_restated_spread(&mut self) {
        for i in 1..self.tokens.len() {
            if !self.tokens[i - 1].is("spread") {
                continue;
            }
            let restated: Vec<usize> = (i..self.tokens.len()).take_while(|&j| self.in_parentheses_at(j)).collect();
            if restated.iter().any(|&j| self.tokens[j].is("minus")) && restated.iter().all(|&j| self.tokens[j].is_any(&["minus", "max", "min", "maximum", "minimum", "highest", "lowest"])) {
                self.mark(i..i + restated.len());
            }
        }
    }

    fn mark_restated_dates(&mut self, time: &Time) {
        for i in 0..self.tokens.len() {
            let restates = match () {
                _ if self.is(i, &["both"]) && self.is(i + 1, &["days", "dates", "ends", "inclusive"]) => if self.is(i + 2, &["included", "inclusive"]) { 3 } else { 2 },
                _ if self.is(i, &["in"]) && self.is(i + 1, &["chronological", "date", "time"]) && self.is(i + 2, &["order"]) => 3,
                _ => 0,
            };
            self.mark(i..i + restates);
        }
        if !time.has_range() {
            return;
        }
        // Parenthesized dates after a range already read.
        let mut i = 0;
        while i < self.tokens.len() {
            let (open, end) = (self.in_parentheses_at(i), (i..self.tokens.len()).find(|&j| !self.in_parentheses_at(j)).unwrap_or(self.tokens.len()));
            if !open {
                i += 1;
                continue;
            }
            let day_range = |t: &Token| t.text.split_once('-').is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
            let dateish = |t: &Token| {
                t.date.is_some() || month(&t.text).is_some() || day_range(t) || t.is_any(&["to", "through", "until", "and"]) || t.number.is_some_and(|n| n.fract() == 0.0 && (1.0..=31.0).contains(&n) || (1900.0..2200.0).contains(&n))
            };
            let read_before = i > 0 && self.used[i - 1];
            if read_before && (i..end).all(|j| !self.used[j] && dateish(&self.tokens[j])) {
                self.mark(i..end);
            }
            i = end;
        }
    }

    /// Whether token `i` stands inside parentheses.
    pub(super) fn in_parentheses_at(&self, i: usize) -> bool {
        let before: String = self.question.chars().take(self.tokens[i].span.0).collect();
        before.matches('(').count() > before.matches(')').count()
    }

    /// "top 5", "first 10", "5 most recent", "last 10 orders", "limit 20".
    pub(super) fn recognize_limits(&mut self, time: &mut Time) {
        self.recognize_time_question(time);
        let mut i = 0;
        while i < self.tokens.len() {
            if self.is(i, &["top", "bottom", "first", "limit", "last", "latest", "newest", "oldest", "earliest"]) {
                if let Some(n) = self.number_at(i + 1).filter(|n| n.fract() == 0.0 && *n >= 1.0) {
                    let word = self.tokens[i].text.clone();
                    time.limit = Some(n as u64);
                    match word.as_str() {
                        "top" => time.rank = Some(true),
                        "bottom" => time.rank = Some(false),
                        "last" | "latest" | "newest" => {
                            time.rank = Some(true);
                            time.by_time = true;
                            time.rank_at = Some(i + 1);
                        }
                        "first" | "oldest" | "earliest" => {
                            time.rank = Some(false);
                            time.by_time = true;
                            time.rank_at = Some(i + 1);
                        }
                        _ => {}
                    }
                    self.mark(i..i + 2);
                    i += 2;
                    continue;
                }
            }
            // "Warmest 3 indoor sensors": the 3 warmest.
            let opens = i == 0 || self.tokens[i - 1].is("the") || self.tokens[i].pause_before;
            if let (true, Some(direction), Some(n)) = (opens, self.word(i).and_then(|t| superlative(&t.text)).filter(|_| !self.is(i, &["most", "least", "more", "less"])), self.number_at(i + 1).filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 10_000.0)) {
                if !self.tokens.get(i + 1).is_some_and(|t| t.pause_before) {
                    time.limit = Some(n as u64);
                    time.rank = Some(direction);
                    time.rank_word = Some(self.tokens[i].text.clone());
                    self.mark(i..i + 2);
                    i += 2;
                    continue;
                }
            }
            // N most recent | N latest | N largest …
            if let Some(n) = self.word(i).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 10_000.0) {
                let next = i + 1;
                // "the 2 least used browsers": groups ranked by how often they occur.
                if self.is(next, &["most", "least"]) && self.is(next + 1, POPULARITY) {
                    time.limit = Some(n as u64);
                    self.mark(i..next);
                    i = next;
                    continue;
                }
                // "the 3 device ids with the highest mean temperature": groups ranked by
                // what follows the superlative.
                if i > 0 && self.tokens[i - 1].is_any(&["the", "which", "what"]) {
                    if let Some(direction) = self.ranking_clause(next) {
                        time.limit = Some(n as u64);
                        time.rank = Some(direction);
                        self.mark(i..next);
                        i = next;
                        continue;
                    }
                }
                // "customer 12, oldest first": an order of the rows, not 12 of them.
                let sorts_all = self.is(next + 1, &["first"]) && self.is(next, &["latest", "newest", "oldest", "earliest"]);
                if !sorts_all && self.is(next, &["most", "latest", "newest", "recent", "last", "oldest", "earliest", "first"]) {
                    time.limit = Some(n as u64);
                    if self.is(next, &["most"]) && self.is(next + 1, &["recent", "recently"]) {
                        time.rank = Some(true);
                        time.by_time = true;
                        self.mark(i..next + 2);
                        i = next + 2;
                        continue;
                    }
                    if !self.is(next, &["most"]) {
                        let descending = self.is(next, &["latest", "newest", "recent", "last"]);
                        time.rank = Some(descending);
                        time.by_time = true;
                        time.rank_at = Some(next);
                        self.mark(i..next + 1);
                        i = next + 1;
                        continue;
                    }
                    self.mark(i..next);
                    i = next;
                    continue;
                }
                // "returned 404 more than 12 times": a comparison follows the value, not a ranking.
                // "device 33: lowest and highest battery": a pause parts the number from the ranking.
                let comparative = self.is(next + 1, &["than"]) || self.tokens.get(next).is_some_and(|t| t.pause_before);
                if let Some(direction) = self.word(next).and_then(|t| superlative(&t.text)).filter(|_| !comparative) {
                    // "the 5 coldest readings", "5 largest orders"
                    time.limit = Some(n as u64);
                    time.rank = Some(direction);
                    time.rank_word = Some(self.tokens[next].text.clone());
                    let len = if self.is(next, &["most", "least"]) && self.word(next + 1).is_some_and(|t| superlative(&t.text).is_some() || t.text.ends_with("ive")) { 2 } else { 1 };
                    if len == 2 {
                        time.rank_word = Some(self.tokens[next + 1].text.clone());
                    }
                    self.mark(i..next + len);
                    i = next + len;
                    continue;
                }
            }
            // "the customer id with the largest number of orders", "name of the device with
            // the lowest …": the one best group.
            if i == 0 || (i == 1 && self.tokens[0].is_any(&["show", "list", "find", "get", "give"])) {
                let noun_first = self.word(i).is_some_and(|t| {
                    t.is("the") || !(FILLER.contains(&t.text.as_str()) || aggregate_word(&t.text).is_some() || superlative(&t.text).is_some() || t.number.is_some())
                });
                if let (true, Some(direction)) = (noun_first, self.ranking_clause(i + 1)) {
                    time.rank = Some(direction);
                }
            }
            // "sorted slowest to fastest", "from highest to lowest": every row or group, in that order.
            if let (Some(from), true, Some(to)) = (self.word(i).and_then(|t| superlative(&t.text)), self.is(i + 1, &["to"]), self.word(i + 2).and_then(|t| superlative(&t.text))) {
                if from != to {
                    time.rank = Some(from);
                    time.rank_all = true;
                    let start = if i > 0 && self.is(i - 1, &["from"]) { i - 1 } else { i };
                    let start = if start > 0 && self.is(start - 1, &["sorted", "ordered", "ranked", "sort", "order", "rank", "listed"]) { start - 1 } else { start };
                    self.mark(start..i + 3);
                    i += 3;
                    continue;
                }
            }
            // "…, biggest first", "lowest first", "most first": every row or group, in that order.
            // "for each month, January first": the calendar's own order (time buckets are
            // listed oldest first anyway).
            if self.is(i + 1, &["first"]) && self.word(i).is_some_and(|t| month(&t.text) == Some(1)) {
                self.mark(i..i + 2);
                i += 2;
                continue;
            }
            // "largest count first": the measure already asked for, named again.
            let restated = self.is(i + 1, &["count", "number", "total", "average", "amount", "value", "values", "group", "groups"]) && self.is(i + 2, &["first"]);
            if (self.is(i + 1, &["first"]) || restated) && !self.is(i, &["oldest", "earliest", "latest", "newest", "recent", "last"]) {
                if let Some(direction) = self.word(i).and_then(|t| superlative(&t.text)) {
                    time.rank = Some(direction);
                    time.rank_all = true;
                    let len = if restated { 3 } else { 2 };
                    self.mark(i..i + len);
                    i += len;
                    continue;
                }
            }
            // "rank the regions by number of cancelled orders": every group, ranked.
            if i == 0 && self.is(0, &["rank", "sort"]) && !self.is(1, &["by"]) {
                time.rank = Some(true);
                time.rank_all = true;
                self.mark(0..1);
            }
            // "the very first order we received": the oldest row.
            if self.is(i, &["first", "last"]) && (i == 0 || self.tokens[i - 1].is_any(&["the", "very"])) && self.word(i + 1).is_some_and(|t| t.text == t.stem && t.number.is_none() && time_unit(&t.text).is_none()) {
                time.rank = Some(self.is(i, &["last"]));
                time.by_time = true;
                time.rank_at = Some(i);
                self.mark(i..i + 1);
                i += 1;
                continue;
            }
            // "show the single largest payment", "the single slowest page view": that row.
            // "the coldest reading in the last 3 days": a superlative before the name of a
            // relation's rows (singular) asks for that row too — when the rows have something
            // the superlative measures ("the busiest device" ranks devices by their readings).
            let names_a_row = |at: usize| {
                let word = self.tokens.get(at - 1).map(|t| t.text.as_str()).unwrap_or("");
                self.tokens.get(at).is_some_and(|t| {
                    t.text == t.stem
                        && (0..self.catalog.relations.len()).any(|r| {
                            self.is_relation_noun(r, t)
                                && (self.adjective_column(r, word).is_some() || self.main_measure(r).is_some())
                        })
                })
            };
            // "the most expensive order": "most" with the adjective that ranks.
            let first = if self.is(i + 1, &["single", "one", "very"]) { i + 2 } else { i + 1 };
            let degree = self.is(first, &["most", "least"]) && self.word(first + 1).is_some_and(|t| superlative(&t.text).is_some() && !t.is_any(&["most", "least", "top"]));
            let at = if degree { first + 1 } else { first };
            let opens = self.tokens[0].is_any(&["show", "list", "find", "give", "get", "display"])
                || (i == 0 && self.is(i + 1, &["single", "very"]))
                || (i == 0 && names_a_row(at + 1));
            if i <= 1 && opens && self.is(i, &["the"]) {
                // ("the single slowest visit": a row noun, though "visit" alone says little.)
                let noun = self.word(at + 1).filter(|t| t.text == t.stem && t.number.is_none() && (!FILLER.contains(&t.text.as_str()) || t.is_any(&["visit", "hit"])));
                if let (Some(direction), Some(_)) = (self.word(at).and_then(|t| superlative(&t.text)).filter(|_| !self.is(at, &["most", "least", "top"])), noun) {
                    time.limit = Some(1);
                    time.rank = Some(if degree && self.is(first, &["least"]) { !direction } else { direction });
                    time.rank_word = Some(self.tokens[at].text.clone());
                    self.mark(first..at + 1);
                }
            }
            if self.is(i, &["which", "what"]) {
                if let Some(n) = self.word(i + 1).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && *n >= 1.0) {
                    time.limit = Some(n as u64);
                    self.used[i + 1] = true;
                }
            }
            // "Our longest-standing enterprise customer": the oldest one.
            if self.is(i, &["longest"]) && self.is(i + 1, &["standing", "serving", "running", "tenured"]) {
                time.rank = Some(false);
                time.by_time = true;
                time.rank_at = Some(i);
                self.mark(i..i + 2);
                i += 2;
                continue;
            }
            if self.is(i, &["most", "latest", "newest", "oldest", "earliest"]) && (self.is(i + 1, &["recent", "recently"]) || !self.is(i, &["most"])) {
                let descending = !self.is(i, &["oldest", "earliest"]);
                time.rank = Some(descending);
                time.by_time = true;
                time.rank_at = Some(i);
                let len = if self.is(i, &["most"]) { 2 } else { 1 };
                // "oldest first", "most recent first", "newest registration first": every
                // row, in that order.
                if self.is(i + len, &["first"]) {
                    time.rank_all = true;
                    self.mark(i + len..i + len + 1);
                } else if self.is(i + len + 1, &["first"]) && self.word(i + len).is_some_and(|t| t.number.is_none() && !t.quoted) {
                    time.rank_all = true;
                    self.mark(i + len + 1..i + len + 2);
                }
                self.mark(i..i + len);
                i += len;
                continue;
            }
            i += 1;
        }
    }

    /// "when did device 3 last report", "date of the earliest PayPal payment", "what time
    /// was the first order": the time column is the answer, "last" / "first" rank by it.
    fn recognize_time_question(&mut self, time: &mut Time) {
        let lead = usize::from(self.is(0, &["what", "the"]));
        // "…: email and when they joined": a time listed after the other columns.
        if let Some(i) = (1..self.tokens.len()).find(|&i| self.is(i, &["when"]) && self.is(i - 1, &["and"]) && self.is(i + 1, &["they", "it", "he", "she"])) {
            time.lists_time = true;
            self.mark(i..i + 2);
        }
        // "…: which page, which browser, and when", "…: when, how much, …": the time, listed.
        if let Some(i) = (1..self.tokens.len()).find(|&i| self.is(i, &["when"]) && (self.is(i - 1, &["and"]) || self.tokens[i].pause_before) && (i + 1 == self.tokens.len() || self.tokens[i + 1].pause_before)) {
            time.lists_time = true;
            self.mark(i..i + 1);
        }
        // "…: device id, humidity value, timestamp": the time in a list after a pause.
        let last_pause = self.tokens.iter().rposition(|t| t.pause_before).unwrap_or(usize::MAX);
        let listed = |i: usize| i >= last_pause && (self.tokens[i].pause_before || self.is(i - 1, &["and"]));
        if let Some(i) = (1..self.tokens.len()).find(|&i| self.is(i, &["timestamp", "timestamps", "time", "times", "date", "dates"]) && listed(i)) {
            time.lists_time = true;
            self.mark(i..i + 1);
        }
        if self.is(0, &["when"]) {
            time.asks_time = true;
            if let Some(i) = (1..self.tokens.len()).find(|&i| self.is(i, &["last", "first"]) && self.number_at(i + 1).is_none() && self.word(i + 1).is_none_or(|t| time_unit(&t.text).is_none())) {
                time.rank = Some(self.is(i, &["last"]));
                time.by_time = true;
                time.rank_at = Some(i);
                self.mark(i..i + 1);
            }
        } else if self.is(lead, &["date", "time", "day", "timestamp"]) && self.is(lead + 1, &["of", "when", "was", "did"]) {
            time.asks_time = true;
            self.mark(lead..lead + 1);
        } else if let Some(i) = (0..self.tokens.len()).find(|&i| self.is(i, &["latest", "last", "newest", "earliest", "first"]) && self.number_at(i + 1).is_none()) {
            // "latest reading time for each sensor": the time asked, of each.
            if let Some(t) = (i + 1..(i + 4).min(self.tokens.len())).find(|&j| self.is(j, &["time", "timestamp"])) {
                time.asks_time = true;
                time.rank = Some(self.is(i, &["latest", "last", "newest"]));
                time.by_time = true;
                time.rank_at = Some(i);
                self.mark(i..i + 1);
                self.mark(t..t + 1);
            }
        }
    }

    /// "… with the highest …", "… by the lowest …" from `from` on: the ranking direction.
    fn ranking_clause(&self, from: usize) -> Option<bool> {
        (from + 2..self.tokens.len()).find_map(|j| {
            // "… with the most …", "… that send the fewest …" (one verb after the pronoun).
            let relative = j >= 3 && j - 3 >= from && self.tokens[j - 3].is_any(&["that", "who", "which"]);
            let clause = (self.tokens[j - 2].is_any(&["with", "having", "has", "had", "by"]) || relative) && self.tokens[j - 1].is("the");
            clause.then(|| superlative(&self.tokens[j].text)).flatten()
        })
    }

}

/// Holidays on a fixed day of the year, longest phrase first ("year's" splits at the
/// apostrophe).
const HOLIDAYS: &[(&[&str], u32, u32)] = &[
    (&["new", "year", "s", "eve"], 12, 31),
    (&["new", "year", "s", "day"], 1, 1),
    (&["new", "years", "eve"], 12, 31),
    (&["new", "years", "day"], 1, 1),
    (&["christmas", "eve"], 12, 24),
    (&["christmas", "day"], 12, 25),
    (&["boxing", "day"], 12, 26),
    (&["valentine", "s", "day"], 2, 14),
    (&["christmas"], 12, 25),
    (&["halloween"], 10, 31),
];

/// Words after "most" / "least" that rank groups by how many rows they have.
pub(super) const POPULARITY: &[&str] = &["common", "popular", "frequent", "frequently", "often", "used", "active", "visited", "viewed"];

/// `YYYY-MM`: a month.
fn year_month(text: &str) -> Option<(i32, u32)> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some((y, m))
}

/// `date` moved by `months` calendar months (the day kept where it exists).
fn add_months(date: NaiveDate, months: i32) -> NaiveDate {
    let index = date.year() * 12 + date.month() as i32 - 1 + months;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, date.day()).unwrap_or(date)
}

/// "first", "second", … "last" as a position (`-1` for the last).
fn ordinal(word: &str) -> Option<i32> {
    Some(match word {
        "first" | "1st" => 1,
        "second" | "2nd" => 2,
        "third" | "3rd" => 3,
        "fourth" | "4th" => 4,
        "last" | "final" => -1,
        _ => return None,
    })
}

/// How far a date phrase reaches: a day, a month or a year.
#[derive(Debug, Clone, Copy)]
pub(super) enum DateSpan {
    Day,
    Month,
    Quarter,
    Half,
    Year,
}

impl DateSpan {
    /// The first day after the span starting at `date`.
    fn end(self, date: NaiveDate) -> NaiveDate {
        match self {
            DateSpan::Day => date + Duration::days(1),
            DateSpan::Month => add_months(date, 1),
            DateSpan::Quarter => add_months(date, 3),
            DateSpan::Half => add_months(date, 6),
            DateSpan::Year => NaiveDate::from_ymd_opt(date.year() + 1, 1, 1).unwrap_or(date),
        }
    }
}

impl Reader<'_> {
    /// "on Black Friday (2025-11-28)", "Black Friday week, Nov 24 to Nov 30 2025":
    /// capitalized words left unread right before a date read in a time range are its name
    /// (with a calendar word after them); the date says when.
    pub(super) fn names_of_dates(&mut self) {
        let capitalized = |t: &Token| t.raw.starts_with(|c: char| c.is_uppercase()) && !t.quoted;
        for at in 0..self.tokens.len() {
            let date = (self.tokens[at].date.is_some() || month(&self.tokens[at].text).is_some()) && self.used[at];
            if !date {
                continue;
            }
            let mut start = at;
            if start > 1 && !self.used[start - 1] && self.tokens[start - 1].is_any(&["week", "weekend", "day", "sale", "sales"]) && capitalized(&self.tokens[start - 2]) {
                start -= 1;
            }
            while start > 0 && !self.used[start - 1] && capitalized(&self.tokens[start - 1]) {
                start -= 1;
            }
            if start < at && (start..at).any(|j| capitalized(&self.tokens[j])) {
                let name: Vec<&str> = self.tokens[start..at].iter().map(|t| t.raw.as_str()).collect();
                self.notes.push(format!("read \"{}\" as the name of the dates from {}", name.join(" "), self.tokens[at].raw));
                self.mark(start..at);
            }
        }
    }
}
