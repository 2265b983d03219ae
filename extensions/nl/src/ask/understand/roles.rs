//! The role of each word of the question, read left to right before the walk: links,
//! aggregates, groupings, rankings, negations (also said after the value: "Chrome left
//! out"), distinct, sort orders and comparisons, with the small phrases that only change
//! how a neighbour is read ("how many of each", "alphabetical by", "apart from").

use super::*;

impl Reader<'_> {
    /// "difference between the highest and lowest", "gap between the max and the min",
    /// "max minus min" at `i`: the number of words.
    fn difference_of_extremes(&self, i: usize) -> Option<usize> {
        let extreme = |j: usize| self.is(j, &["highest", "lowest", "max", "min", "maximum", "minimum", "largest", "smallest", "warmest", "coldest"]);
        let skip_the = |j: usize| if self.is(j, &["the"]) { j + 1 } else { j };
        if self.is(i, &["difference", "gap"]) && self.is(i + 1, &["between"]) {
            let a = skip_the(i + 2);
            let b = skip_the(a + 2);
            return (extreme(a) && self.is(a + 1, &["and"]) && extreme(b)).then_some(b + 1 - i);
        }
        (extreme(i) && self.is(i + 1, &["minus"]) && extreme(i + 2)).then_some(3)
    }

    /// The roles of the question's words, in order.
    pub(super) fn roles(&mut self, links: &[Link], compares: Vec<(usize, Comparison, f64, Option<f64>)>) -> Vec<(usize, Role)> {
        let mut roles: Vec<(usize, Role)> = links.iter().enumerate().map(|(n, l)| (l.start, Role::Link(n))).collect();
        for (at, comparison, value, high) in compares {
            roles.push((at, Role::Compare(comparison, value, high)));
        }
        let sentences = self.sentences();
        let sentence_start = |i: usize| sentences.iter().find(|s| (s.0..s.1).contains(&i)).map_or(0, |s| s.0);
        let details_from = self.details_of_extreme_row();
        let mut i = 0;
        while i < self.tokens.len() {
            if self.used[i] || self.tokens[i].quoted {
                i += 1;
                continue;
            }
            let t = &self.tokens[i];
            let next = |words: &[&str]| self.is(i + 1, words);
            let detail = details_from.is_some_and(|from| i >= from);
            let money_unit = |j: usize| self.tokens.get(j).is_some_and(|w| w.is_any(&["dollars", "euros", "usd", "eur"]));
            let how_much = t.is("how") && (next(&["much"]) || (next(&["many"]) && money_unit(i + 2)));
            let role = if detail && (how_much || t.is_any(&["which", "what"])) {
                // "The most recent payment: when, how much, and from which customer",
                // "Smallest purchase: how many dollars, …": what is shown of the row, not a
                // total, a count nor a grouping.
                if t.is("how") {
                    let len = if next(&["much"]) { 2 } else { 3 };
                    self.amount_listed = true;
                    self.mark(i..i + len);
                } else {
                    self.mark(i..i + 1);
                }
                i += 1;
                continue;
            } else if t.is("how") && next(&["many"]) {
                Some((Role::Aggregate(Aggregate::Count), 2))
            } else if t.is("counted") && next(&["per", "by", "for", "in"]) {
                // ", counted per status code": how many rows in each.
                Some((Role::Aggregate(Aggregate::Count), 1))
            } else if t.is("how") && next(&["often"]) {
                // "how often each": how many rows.
                Some((Role::Aggregate(Aggregate::Count), 2))
            } else if t.is("how") && next(&["much"]) {
                Some((Role::Aggregate(Aggregate::Sum), 2))
            } else if t.is("spread") && i > 0 && self.used[i - 1] {
                // ("temperature spread (max minus min)": the parentheses were read with the time
                // phrases, as restating it.)
                Some((Role::Aggregate(Aggregate::Spread), 1))
            } else if let Some(len) = self.difference_of_extremes(i) {
                // "the difference between the highest and lowest temperature": the spread.
                Some((Role::Aggregate(Aggregate::Spread), len))
            } else if t.is("range") && i > 0 && self.used[i - 1] {
                // "temperature range": after a linked column; "(lowest and highest)" after it
                // only restates it.
                let restated = (i + 1..self.tokens.len()).take_while(|&j| self.in_parentheses_at(j)).collect::<Vec<_>>();
                if !restated.is_empty() && restated.iter().all(|&j| self.tokens[j].is_any(&["and", "to", "or"]) || aggregate_word(&self.tokens[j].text).is_some() || superlative(&self.tokens[j].text).is_some()) {
                    self.mark(restated[0]..restated[restated.len() - 1] + 1);
                }
                Some((Role::Aggregate(Aggregate::Min), 1))
            } else if t.is("how") && self.tokens.get(i + 1).is_some_and(|a| a.is_any(HOW_ADJECTIVES)) {
                // "how fast are pages served": the average of what the adjective measures.
                Some((Role::Aggregate(Aggregate::Avg), 1))
            } else if (t.is_any(&["number", "count", "counts", "amount", "total"]) && next(&["of"])) || t.is_any(&["count", "counts"]) {
                let len = if next(&["of"]) { 2 } else { 1 };
                if t.is_any(&["amount", "total"]) { Some((Role::Aggregate(Aggregate::Sum), len)) } else { Some((Role::Aggregate(Aggregate::Count), len)) }
            } else if t.is_any(&["distinct", "unique", "different", "separate"]) {
                Some((Role::Distinct, 1))
            } else if t.is_any(&["sorted", "ordered", "sort", "order", "listed", "from"]) && next(&["a"]) && self.is(i + 2, &["to"]) && self.is(i + 3, &["z"]) {
                // "sorted A to Z": alphabetically (read when the rows are ordered).
                self.mark(i..i + 4);
                i += 4;
                continue;
            } else if t.is_any(&["alphabetical", "alphabetically"]) && next(&["by"]) {
                // "alphabetical by name": sorted by it.
                Some((Role::SortBy, 2))
            } else if (t.is("each") && next(&["once"])) || (t.is("once") && next(&["each"])) {
                // "emails, each once".
                Some((Role::Distinct, 2))
            } else if t.is("apart") && next(&["from"]) {
                // "apart from the freezers": not them.
                Some((Role::Not, 2))
            } else if t.is("neither") {
                Some((Role::Not, 1))
            } else if t.is_any(&["no", "without"]) && next(&["repeats", "repeat", "duplicates", "duplicate", "dupes", "repetitions"]) {
                // "just the paths, no repeats": each once.
                Some((Role::Distinct, 2))
            } else if t.is_any(&["sorted", "ordered", "ranked", "sort", "order", "rank"]) && next(&["by"]) {
                Some((Role::SortBy, 2))
            } else if t.is_any(&["grouped", "broken", "split", "segmented", "bucketed"]) || (t.is("break") && next(&["down", "out"])) {
                let len = if next(&["by", "down", "per", "out"]) { if self.is(i + 2, &["by"]) { 3 } else { 2 } } else { 1 };
                Some((Role::GroupBy, len))
            } else if t.is_any(&["for", "in"]) && next(&["each", "every"]) {
                Some((Role::GroupBy, 2))
            } else if t.is("by") && i > 0 && !links.iter().any(|l| l.start == i + 1 && l.names_a_column()) && (self.tokens[i - 1].text.ends_with("ed") && !self.tokens[i - 1].is_any(&["counted", "grouped", "sorted", "ordered", "ranked", "listed", "totalled", "totaled", "averaged", "summed", "bucketed", "segmented", "split", "broken"]) || self.tokens[i - 1].is_any(&["made", "sent", "done", "paid", "bought", "sold", "seen", "taken", "written", "held"])) {
                // "placed by enterprise customers": who did it, not a grouping.
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is("by") && links.iter().any(|l| (l.start == i + 1 || (l.start == i + 2 && next(&["a", "an", "the", "our"]))) && l.candidates.iter().any(|c| matches!(c.target, Target::Value(..)) && c.evidence == Evidence::Value)) {
                // "searches by free users", "purchase by a free user": who did it, not a grouping.
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is("by") && links.iter().any(|l| l.start == i + 1 && self.tokens.get(l.end).is_some_and(|w| w.is_any(&["who", "that", "whose", "not", "using"]) || (w.is_any(&["on", "in", "from", "with"]) && self.tokens[l.start].text != self.tokens[l.start].stem && l.candidates.iter().any(|c| matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name)))) {
                // "events by users who joined …", "visits by people not using Chrome", "clicks
                // by users on the free tier": whose rows, not a grouping.
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is_any(&["across", "over"]) && next(&["all", "every"]) {
                // "average battery across all devices": every row together, not per device.
                self.mark(i..i + 2);
                i += 2;
                continue;
            } else if t.is_any(&["each", "every"]) && links.iter().any(|l| l.start == i + 1 && self.tokens.get(l.end).is_some_and(|w| w.is("once"))) {
                // "each model once": the models, each listed once.
                if let Some(l) = links.iter().find(|l| l.start == i + 1) {
                    self.mark(l.end..l.end + 1);
                }
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is_any(&["every", "all"]) && (sentence_start(i)..i).all(|j| self.tokens[j].is_any(&["show", "list", "give", "me", "get", "find", "pull", "up"])) {
                // "every reading from HAM-OUT-17", "Austin's outdoor sensors: every reading
                // over 30 °C": the rows, not a grouping.
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is_any(&["full", "whole", "entire"]) && next(&["row", "rows", "record", "records"]) {
                // "the whole row please": every column (read when the columns are chosen).
                self.mark(i..i + 2);
                i += 2;
                continue;
            } else if t.is("each") && self.tokens.get(i + 1).is_some_and(|w| w.is_any(&["spent", "spend", "paid", "made", "bought", "has", "had", "did", "got", "sent"])) {
                // "how much each spent": each of them, no grouping.
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is("by") && links.iter().any(|l| l.start == i + 1 && (l.start..l.end).any(|j| is_money_word(&self.tokens[j].stem))) && self.tokens[..i].iter().any(|w| w.is_any(&["top", "bottom"]) || superlative(&w.text).is_some()) {
                // "our 5 biggest customers by money spent": ranked by it, not grouped.
                Some((Role::SortBy, 1))
            } else if t.is("across") && !links.iter().any(|l| (i + 1..=i + 3).contains(&l.start) && l.names_a_column() && (i + 1..l.start).all(|j| self.tokens[j].is_any(&["the", "all", "our", "every", "each"]))) {
                // "average battery across the TH-100 fleet": over all of them, no grouping.
                self.mark(i..i + 1);
                i += 1;
                continue;
            } else if t.is("by") && i > 0 && self.tokens[i - 1].is_any(&["going", "judging", "judged"]) {
                // "the most active user, going by number of product events": what ranks, no grouping.
                self.mark(i - 1..i + 1);
                i += 1;
                continue;
            } else if t.is_any(&["per", "by", "each", "every", "across"]) {
                Some((Role::GroupBy, 1))
            } else if t.is_any(&["which", "what"]) {
                Some((Role::Which, 1))
            } else if let Some(out) = t.is_any(&["leave", "leaving"]).then(|| links.iter().find(|l| l.start == i + 1 || (l.start == i + 2 && self.tokens[i + 1].is_any(&["the", "our", "all"]))).map(|l| l.end).filter(|&e| self.tokens.get(e).is_some_and(|w| w.is_any(&["out", "aside"])))).flatten() {
                // "leave Firefox out", "leaving freezers aside": not them.
                self.mark(out..out + 1);
                Some((Role::Not, 1))
            } else if t.is_any(&["not", "non", "excluding", "except", "without", "isn't", "aren't", "outside", "excluded"]) || (t.is("other") && next(&["than"])) {
                Some((Role::Not, if t.is("other") { 2 } else { 1 }))
            } else if (t.is_any(&["isn", "aren", "wasn", "weren", "doesn", "don", "didn"]) && next(&["t"]))
                || (t.is_any(&["leaving", "leave", "left"]) && next(&["out"]))
                || (t.is("not") && next(&["counted", "included", "considered", "wanted"]))
            {
                // "aren't" (the apostrophe splits it), "leaving out Edge".
                Some((Role::Not, 2))
            } else if t.is_any(&["ascending", "asc", "increasing"]) {
                Some((Role::Direction(false), 1))
            } else if t.is_any(&["descending", "desc", "decreasing"]) {
                Some((Role::Direction(true), 1))
            } else if t.is_any(&["least", "most"]) && next(phrases::POPULARITY) {
                Some((Role::Rank(t.is("most")), 2))
            } else if t.is("total")
                && i > 0
                && (self.tokens[i - 1].is_any(&["a", "an"])
                    || (links.iter().any(|l| l.end == i && l.candidates.iter().any(|c| matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name) && self.tokens[l.start].text == self.tokens[l.start].stem)
                        && self.tokens.iter().any(|w| !w.is("total") && (aggregate_word(&w.text).is_some() || superlative(&w.text).is_some()))))
            {
                // "orders with a total between 500 and 1000", "highest order total": the
                // order total, no sum.
                None
            } else if let Some(aggregate) = aggregate_word(&t.text) {
                Some((Role::Aggregate(aggregate), 1))
            } else {
                superlative(&t.text).map(|d| (Role::Rank(d), 1))
            };
            if let Some((role, len)) = role {
                roles.push((i, role));
                self.mark(i..i + len);
                i += len;
            } else {
                i += 1;
            }
        }
        roles.sort_by_key(|(at, _)| *at);
        // "indoor excluded", "Chrome left out", "cancelled orders not counted": the negation
        // said after the value (and its noun) goes before the value.
        let postposed = |at: usize| self.tokens[at].is_any(&["excluded", "excepted", "left"]) || (self.tokens[at].is("not") && self.tokens.get(at + 1).is_some_and(|t| t.is_any(&["counted", "included", "considered", "wanted"])));
        let is_value = |l: &Link| l.candidates.iter().any(|c| matches!(c.target, Target::Value(..)));
        for k in 1..roles.len() {
            let (at, Role::Not) = roles[k] else { continue };
            if !postposed(at) {
                continue;
            }
            let Some((_, Role::Link(l))) = roles.get(k - 1) else { continue };
            let mut first = k - 1;
            if !is_value(&links[*l]) && k >= 2 {
                // "cancelled orders not counted": the value before the noun.
                if let (_, Role::Link(v)) = &roles[k - 2] {
                    if is_value(&links[*v]) && links[*v].end == links[*l].start {
                        first = k - 2;
                    }
                }
            }
            let Role::Link(f) = roles[first].1 else { continue };
            if is_value(&links[f]) && links[*l].end == at {
                let not = roles.remove(k);
                roles.insert(first, (links[f].start, not.1));
            }
        }
        roles
    }
}
