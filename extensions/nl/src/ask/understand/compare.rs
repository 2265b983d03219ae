//! Comparisons typed in the question: "more than 100", "over 5", "at least 3", "below
//! 20", "between 10 and 20", "below 20 or above 90", "the 200 to 300 euro range",
//! "sub-zero", "more than twice". Each becomes a comparison at the number's token; the
//! walk decides which column or count it limits (`place_comparison`, below).

use crate::ask::plan::Comparison;
use crate::ask::words::{month, UNITS};

use super::*;

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

impl Reader<'_> {
    /// A comparison met in the walk (`at`: its number), placed by what stands around it:
    /// a count of the rows named next ("at least 8 product events"), a condition on an
    /// average or total said before or after it ("average warmer than -18.3 °C", "… in
    /// total"), a filter on the column its unit or comparative names, or — when nothing
    /// says yet — kept in the walk for the link that follows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_comparison(
        &self,
        links: &[Link],
        roles: &[(usize, Role)],
        n: usize,
        at: &usize,
        (comparison, value, high): (&Comparison, &f64, &Option<f64>),
        previous: Option<&(usize, Role)>,
        last_measure: Option<usize>,
        s: &mut Walk,
        d: &mut Draft,
        context: &[usize],
    ) {
        // "user ids with at least 14 page views", "viewed more than 10 pages": the
        // count of what follows.
        // "more than 10 pages": a plural noun for rows right after the number counts them.
        let counts = |l: &Link| {
            l.candidates.iter().any(|c| matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name || matches!(c.target, Target::Value(..)))
                || self.names_rows(l)
                || (l.start == at + 1 && self.plural_relation_word(l))
        };
        // ("at least 8 product events": the rows' noun after a word that qualifies it.)
        let qualified_next = match (roles.get(n + 1), roles.get(n + 2)) {
            (Some((_, Role::Link(a))), Some((_, Role::Link(b)))) => links[*a].end == links[*b].start && links[*a].candidates.iter().all(|c| matches!(c.target, Target::Relation(_))) && counts(&links[*b]),
            _ => false,
        };
        let counts_next = matches!(roles.get(n + 1), Some((_, Role::Link(l))) if counts(&links[*l])) || qualified_next;
        let after_link = matches!(previous, Some((_, Role::Link(_)))) && !counts_next;
        // "… on average" after the comparison: a condition on the average.
        // The unit right after the number ("5000 euros in total") is part of it.
        let unit_link = |a: usize| a == at + 1 && UNITS.contains(&self.tokens[a].text.as_str());
        // "…: name and total", "…? names and totals, largest first": the answer
        // listed after a pause.
        let answer_link = |a: usize| self.tokens[at + 1..=a].iter().any(|t| t.pause_before);
        let named_after = roles[n + 1..].iter().any(|(a, r)| matches!(r, Role::Link(_)) && !unit_link(*a) && !answer_link(*a));
        let trailing = roles[n + 1..]
            .iter()
            .all(|(a, r)| !matches!(r, Role::Link(_)) || unit_link(*a) || answer_link(*a))
            .then(|| {
                roles[n + 1..].iter().find_map(|(a_at, r)| match r {
                    Role::Aggregate(a) if !matches!(a, Aggregate::Count | Aggregate::CountDistinct) && *a_at > 0 && self.tokens[a_at - 1].is_any(&["on", "in"]) => Some((*a_at, *a)),
                    _ => None,
                })
            })
            .flatten()
            // "… more than 3000 euros altogether": a condition on the total.
            .or_else(|| (at + 1..self.tokens.len()).find(|&j| !self.used[j] && self.tokens[j].is_any(&["altogether", "combined", "cumulatively", "together"])).map(|j| (j, Aggregate::Sum)))
            // "whose orders add up to more than 5000 euros": the total.
            .or_else(|| (at.saturating_sub(6)..*at).find(|&j| self.tokens[j].is_any(&["add", "adds", "adding", "added"]) && self.tokens.get(j + 1).is_some_and(|t| t.is("up"))).map(|j| (j, Aggregate::Sum)))
            // "…? names with their totals": a condition on each one's total.
            .or_else(|| (at + 1..self.tokens.len()).find(|&j| self.tokens[j].is_any(&["total", "totals"]) && self.tokens[j - 1].is("their") && self.tokens[at + 1..=j].iter().any(|t| t.pause_before)).map(|j| (j, Aggregate::Sum)));
        // "count of humidity readings over 80": the rows' values, not the count.
        let last_measure = last_measure.filter(|m| d.measures[*m].column.is_some() || s.last_numeric.is_none() || !after_link);
        // "devices that read below -22 degrees": the column in degrees.
        let measuring = s.pending.iter().any(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct));
        // "paid us more than 3000 euros": the euros of the relation just named, when
        // several relations hold euros.
        let just_named: Vec<usize> = match previous {
            // (By its strongest reading: "orders" are the orders, not a payment's order id.)
            Some((_, Role::Link(l))) => {
                let best = links[*l].best_evidence();
                let strongest: Vec<&Candidate> = links[*l].candidates.iter().filter(|c| c.evidence == best).collect();
                let relations: Vec<usize> = strongest.iter().filter_map(|c| if let Target::Relation(r) = c.target { Some(r) } else { None }).collect();
                if relations.is_empty() { strongest.iter().map(|c| target_relation(&c.target)).collect() } else { relations }
            }
            _ => Vec::new(),
        };
        // "temperature by site, only sites where it averaged below -18.5": the column named before.
        // "devices whose battery averaged above 80%": the column right before the average.
        let averaged_after_column = (at.saturating_sub(3)..*at).find(|&j| aggregate_word(&self.tokens[j].text).is_some()).is_some_and(|j| links.iter().any(|l| l.end == j));
        let said_of_it = s.last_numeric.filter(|_| averaged_after_column || (at.saturating_sub(3)..*at).any(|j| self.tokens[j].is("it")));
        let unit_named = self.unit_column(&self.reachable(context), *at).or_else(|| self.unit_column(&just_named, *at));
        let unit = unit_named.filter(|u| !measuring && last_measure.is_none_or(|m| d.measures[m].column != Some(*u)));
        // "regions with revenue above 50000": a condition on each region's total;
        // "sites where a sensor went below 3 degrees" (an event): on each site's
        // extreme; "names of devices whose battery dropped below 10%" (things, not
        // categories): on the rows.
        let event = self.tokens[..*at].iter().any(|t| t.is_any(EVENT_VERBS));
        let on_groups = d.plural_subject.is_some_and(|subject| !event || self.label_column(subject.relation) != Some(subject));
        // "average load time by country, only where it's above 300 ms": "it" is the measure.
        let pronoun_measure = (at.saturating_sub(4)..*at)
            .any(|j| self.tokens[j].is_any(&["it", "its"]))
            .then(|| d.measures.len().checked_sub(1))
            .flatten()
            .filter(|m| d.measures[*m].column.is_some());
        if let Some((m, c)) = pronoun_measure.and_then(|m| d.measures[m].column.map(|c| (m, c))) {
            d.measure_compares.push((m, *comparison, self.scaled(*value, c, *at), *high));
            if self.tokens.get(at + 1).is_some_and(|t| UNITS.contains(&t.text.as_str())) {
                s.unit_at = Some(at + 1);
            }
        } else if let (Some(u), None, true) = (unit, trailing, s.which && s.pending.is_empty() && self.groups_categories(d) && !event) {
            // "which customer segments ordered for more than 50k euros": a
            // category does not order; its total does.
            let aggregate = if self.is_money(u) { Aggregate::Sum } else { Aggregate::Avg };
            d.measures.push(Measure { aggregate, column: Some(u) });
            d.measure_compares.push((d.measures.len() - 1, *comparison, self.scaled(*value, u, *at), *high));
            s.unit_at = Some(at + 1);
        } else if let (Some(u), None) = (unit, trailing) {
            d.filters.push(number_filter(u, *comparison, self.scaled(*value, u, *at), *high));
            s.unit_at = Some(at + 1);
        } else if let (Some((a_at, aggregate)), Some(u)) = (trailing, unit) {
            // "paid us more than 3000 euros altogether": the total in euros.
            d.measures.push(Measure { aggregate, column: Some(u) });
            d.measure_compares.push((d.measures.len() - 1, *comparison, self.scaled(*value, u, *at), *high));
            s.consumed_at = Some(a_at);
            s.unit_at = Some(at + 1);
        } else if let (Some((a_at, aggregate)), Some(c), true) = (trailing, s.last_numeric, after_link) {
            d.bare_columns.retain(|b| *b != c);
            // "customers whose orders add up to more than 5000 euros": the euros, not the id.
            let c = if is_key_name(&self.column(c).name) { self.unit_column(&[c.relation], *at).unwrap_or(c) } else { c };
            d.measures.push(Measure { aggregate, column: Some(c) });
            d.measure_compares.push((d.measures.len() - 1, *comparison, self.scaled(*value, c, *at), *high));
            s.consumed_at = Some(a_at);
        } else if self.tokens.get(at + 1).is_some_and(|t| t.is("times")) || self.tokens[*at].is_any(&["twice", "thrice"]) {
            // "ordered more than 5 times": a count of the rows.
            d.having.push(Having { measure: Measure { aggregate: Aggregate::Count, column: None }, comparison: *comparison, value: *value });
            if let Some((_, Role::Link(l))) = previous {
                if let Some(r) = links[*l].candidates.iter().find_map(|c| if let Target::Relation(r) = c.target { Some(r) } else { None }) {
                    d.counted = Some(r);
                }
            }
        } else if let (Some(m), false) = (last_measure, counts_next) {
            // "average battery is under 15": a condition on the measure; a unit
            // after the number ("50 percent") was said of it.
            let value = d.measures[m].column.map_or(*value, |c| self.scaled(*value, c, *at));
            d.measure_compares.push((m, *comparison, value, *high));
            if self.tokens.get(at + 1).is_some_and(|t| UNITS.contains(&t.text.as_str())) {
                s.unit_at = Some(at + 1);
            }
        } else if let (Some(c), true, true) = (s.last_numeric, after_link, on_groups) {
            let extreme = if matches!(comparison, Comparison::Less | Comparison::LessOrEqual) { Aggregate::Min } else { Aggregate::Max };
            let aggregate = if event { extreme } else if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg };
            d.bare_columns.retain(|b| *b != c);
            d.measures.push(Measure { aggregate, column: Some(c) });
            d.measure_compares.push((d.measures.len() - 1, *comparison, *value, *high));
        } else if let (Some(c), true) = (s.last_numeric, after_link) {
            // "device ids that hit more than 33 degrees": the column in degrees, not the id;
            // "page view slower than 1.3 seconds": the column the comparative measures.
            let comparative = at.checked_sub(2).and_then(|w| self.reachable(context).into_iter().find_map(|r| self.adjective_column(r, &self.tokens[w].text)));
            // "order numbers … over 300 euros": the euros of the orders first.
            let in_unit = || self.unit_column(&[c.relation], *at).or_else(|| self.unit_column(&self.reachable(context), *at));
            let c = comparative.unwrap_or(if is_key_name(&self.column(c).name) { in_unit().unwrap_or(c) } else { c });
            d.filters.push(number_filter(c, *comparison, self.scaled(*value, c, *at), *high));
            // "names of devices whose battery fell below 10%": the battery only says which.
            let clause = matches!(previous, Some((_, Role::Link(l))) if links[*l].start > 0 && self.tokens[links[*l].start - 1].is_any(&["whose", "where", "when"]));
            if clause {
                d.bare_columns.retain(|b| *b != c);
            }
            // The unit after the number ("6 percent") was said of this column.
            if self.tokens.get(at + 1).is_some_and(|t| UNITS.contains(&t.text.as_str())) {
                s.unit_at = Some(at + 1);
            }
        } else if let (Some(u), true, None, false) = (unit_named.or(said_of_it), measuring, trailing, named_after) {
            // "which freezers average warmer than -18.3 °C": the average said before
            // the comparison is what it compares, in the unit after the number
            // (not so in "averaging over 400 ms per page load").
            let (counts, measures): (Vec<Aggregate>, Vec<Aggregate>) = std::mem::take(&mut s.pending).into_iter().partition(|a| matches!(a, Aggregate::Count | Aggregate::CountDistinct));
            s.pending = counts;
            for aggregate in measures {
                d.measures.push(Measure { aggregate, column: Some(u) });
                d.measure_compares.push((d.measures.len() - 1, *comparison, self.scaled(*value, u, *at), *high));
            }
            s.last_measure = Some(d.measures.len() - 1);
            s.unit_at = Some(at + 1);
        } else {
            s.compare = Some((*comparison, *value, *high));
            s.compare_at = Some(*at);
        }
    }
}
