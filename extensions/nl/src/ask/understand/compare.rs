//! Comparisons typed in the question: "more than 100", "over 5", "at least 3", "below
//! 20", "between 10 and 20", "below 20 or above 90", "the 200 to 300 euro range",
//! "sub-zero", "more than twice". Each becomes a comparison at the number's token; the
//! walk decides which column or count it limits.

use crate::ask::plan::Comparison;
use crate::ask::words::{month, UNITS};

use super::Reader;

impl Reader<'_> {
    /// The comparison words at `i` ("more than", "over", "at most", "<="): what they
    /// compare and how many tokens they take.
    fn comparison_words(&self, i: usize) -> Option<(Comparison, usize)> {
        if self.is(i, &["more", "greater", "higher", "larger", "bigger", "longer", "slower", "warmer", "hotter", "heavier", "older"]) && self.is(i + 1, &["than"]) {
            Some((Comparison::Greater, 2))
        } else if self.is(i, &["less", "fewer", "lower", "smaller", "shorter", "faster", "cooler", "colder", "cheaper", "lighter"]) && self.is(i + 1, &["than"]) {
            Some((Comparison::Less, 2))
        } else if self.is(i, &["at"]) && self.is(i + 1, &["least"]) {
            Some((Comparison::GreaterOrEqual, 2))
        } else if self.is(i, &["at"]) && self.is(i + 1, &["most"]) {
            Some((Comparison::LessOrEqual, 2))
        } else if self.is(i, &["no"]) && self.is(i + 1, &["more"]) && self.is(i + 2, &["than"]) {
            Some((Comparison::LessOrEqual, 3))
        } else if self.is(i, &["over", "above", "exceeding", "exceeds", "exceed", "exceeded", "tops", "topped", ">"]) {
            Some((Comparison::Greater, 1))
        } else if self.is(i, &["under", "below", "<"]) {
            Some((Comparison::Less, 1))
        } else if self.is(i, &[">="]) {
            Some((Comparison::GreaterOrEqual, 1))
        } else if self.is(i, &["<="]) {
            Some((Comparison::LessOrEqual, 1))
        } else if self.is(i, &["=", "equals"]) || (self.is(i, &["equal"]) && self.is(i + 1, &["to"])) {
            Some((Comparison::Equal, if self.is(i, &["equal"]) { 2 } else { 1 }))
        } else {
            None
        }
    }

    /// "more than 100", "over 5", "at least 3", "below 20", "between 10 and 20", "> 4",
    /// "below 20 or above 90". With a second number the comparison is a range: inside it
    /// for `GreaterOrEqual` ("between"), outside it for `Less` (see `number_filter`).
    pub(super) fn recognize_comparisons(&mut self) -> Vec<(usize, Comparison, f64, Option<f64>)> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < self.tokens.len() {
            // "paid by card at least once": they did; the rows say so, no count is asked.
            if self.is(i, &["at"]) && self.is(i + 1, &["least"]) && self.is(i + 2, &["once"]) {
                self.mark(i..i + 3);
                i += 3;
                continue;
            }
            // "a sub-zero temperature": below 0.
            let sub_zero = if self.is(i, &["subzero"]) { 1 } else if self.is(i, &["sub"]) && self.is(i + 1, &["zero"]) { 2 } else { 0 };
            if sub_zero > 0 {
                found.push((i + sub_zero - 1, Comparison::Less, 0.0, None));
                self.mark(i..i + sub_zero);
                i += sub_zero;
                continue;
            }
            // "in the 200 to 300 euro range", "device ids 1 to 5".
            if let (Some(low), true, Some(high)) = (self.number_at(i), self.is(i + 1, &["to"]), self.number_at(i + 2)) {
                let unit = usize::from(self.word(i + 3).is_some_and(|t| UNITS.contains(&t.text.as_str())));
                let ids = i > 0 && self.tokens[i - 1].is_any(&["ids", "id", "numbers"]) && self.word(i + 3).is_none_or(|t| month(&t.text).is_none());
                if self.is(i + 3 + unit, &["range"]) || ids {
                    let len = if ids { 3 } else { 4 + unit };
                    found.push((i, Comparison::GreaterOrEqual, low, Some(high)));
                    self.mark(i..i + len);
                    i += len;
                    continue;
                }
            }
            // "the 500-800 € range", "devices 1-10".
            if let Some((low, high)) = self.word(i).and_then(|t| t.text.split_once('-')).and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?))) {
                let unit = usize::from(self.word(i + 1).is_some_and(|t| UNITS.contains(&t.text.as_str())) || self.hyphen_after(i));
                let things = i > 0 && self.tokens[i - 1].text != self.tokens[i - 1].stem && !self.tokens[i - 1].is_any(UNITS) && month(&self.tokens[i - 1].text).is_none();
                if things && low < high && self.word(i + 1).is_none_or(|t| month(&t.text).is_none()) {
                    found.push((i, Comparison::GreaterOrEqual, low, Some(high)));
                    self.mark(i..i + 1);
                    i += 1;
                    continue;
                }
                if self.is(i + 1 + unit, &["range"]) && low < high {
                    found.push((i, Comparison::GreaterOrEqual, low, Some(high)));
                    self.mark(i..i + 2 + unit);
                    i += 2 + unit;
                    continue;
                }
            }
            if self.is(i, &["between", "from"]) {
                // "between 10 and 20", "priced from 250 to 400"
                let joined = if self.is(i, &["from"]) { self.is(i + 2, &["to"]) } else { self.is(i + 2, &["and"]) };
                if let (Some(low), true, Some(high)) = (self.word(i + 1).and_then(|t| t.number), joined, self.word(i + 3).and_then(|t| t.number)) {
                    found.push((i + 1, Comparison::GreaterOrEqual, low, Some(high)));
                    self.mark(i..i + 4);
                    i += 4;
                    continue;
                }
            }
            let pattern = self.comparison_words(i);
            // "400 or higher", "3 or more"
            if let (Some(value), true) = (self.word(i).and_then(|t| t.number), self.is(i + 1, &["or"])) {
                let comparison = if self.is(i + 2, &["more", "higher", "above", "greater", "over", "larger", "later"]) {
                    Some(Comparison::GreaterOrEqual)
                } else if self.is(i + 2, &["less", "lower", "below", "fewer", "under", "smaller", "earlier"]) {
                    Some(Comparison::LessOrEqual)
                } else {
                    None
                };
                if let Some(comparison) = comparison {
                    found.push((i, comparison, value, None));
                    self.mark(i..i + 3);
                    i += 3;
                    continue;
                }
            }
            if let Some((comparison, len)) = pattern {
                // "below freezing", "below zero": under 0 degrees; "more than twice": 2 times.
                if self.is(i + len, &["once", "twice", "thrice"]) {
                    let times = if self.is(i + len, &["once"]) { 1.0 } else if self.is(i + len, &["twice"]) { 2.0 } else { 3.0 };
                    found.push((i + len, comparison, times, None));
                    self.mark(i..i + len + 1);
                    i += len + 1;
                    continue;
                }
                if self.is(i + len, &["freezing", "zero"]) {
                    found.push((i + len, comparison, 0.0, None));
                    self.mark(i..i + len + 1);
                    i += len + 1;
                    continue;
                }
                // "below minus 22 degrees".
                if self.is(i + len, &["minus"]) {
                    if let Some(value) = self.word(i + len + 1).and_then(|t| t.number) {
                        found.push((i + len + 1, comparison, -value, None));
                        self.mark(i..i + len + 2);
                        i += len + 2;
                        continue;
                    }
                }
                if let Some(value) = self.word(i + len).and_then(|t| t.number) {
                    // "below 20 or above 90": outside the two, one condition.
                    let other = self.is(i + len + 1, &["or"]).then(|| self.comparison_words(i + len + 2)).flatten();
                    if let Some((_, other_len)) = other.filter(|(other, _)| is_upper_bound(*other) != is_upper_bound(comparison)) {
                        if let Some(second) = self.word(i + len + 2 + other_len).and_then(|t| t.number) {
                            let (low, high) = if is_upper_bound(comparison) { (value, second) } else { (second, value) };
                            found.push((i + len, Comparison::Less, low, Some(high)));
                            let end = i + len + 3 + other_len;
                            self.mark(i..end);
                            i = end;
                            continue;
                        }
                    }
                    found.push((i + len, comparison, value, None));
                    self.mark(i..i + len + 1);
                    i += len + 1;
                    continue;
                }
            }
            i += 1;
        }
        found
    }
}

/// Whether a comparison keeps values below its number ("under 20", "at most 5").
fn is_upper_bound(comparison: Comparison) -> bool {
    matches!(comparison, Comparison::Less | Comparison::LessOrEqual)
}
