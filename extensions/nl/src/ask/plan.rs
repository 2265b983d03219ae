//! The typed query plan a question is read into, and its SQL. Every name in it is an
//! index into the catalog the question was linked to, so rendered SQL can only name
//! relations and columns that exist, and only values that are stored or were typed.

use streamhouse_executor::AskCatalog;

use super::words::Aggregate;

/// A column of a relation (indexes into [`AskCatalog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColumnRef {
    pub relation: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupKey {
    Column(ColumnRef),
    /// `date_trunc(unit, column)`.
    Bucket(ColumnRef, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    pub aggregate: Aggregate,
    /// `None`: `count(*)`.
    pub column: Option<ColumnRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
}

impl Comparison {
    pub fn sql(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Equal => "=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `column IN (values)` (one value: `=`); `negated`: `NOT IN` / `<>`.
    Values { column: ColumnRef, values: Vec<String>, negated: bool },
    /// The path `prefix` or any path under it: `(column = prefix OR column LIKE 'prefix/%')`
    /// (wildcards in the prefix are escaped).
    Prefix { column: ColumnRef, prefix: String, negated: bool },
    /// `column ILIKE pattern`: the text typed after "starts with", "ending in",
    /// "containing" (wildcards in it escaped); `negated`: `NOT ILIKE`.
    Like { column: ColumnRef, text: String, position: TextPosition, negated: bool },
    Number { column: ColumnRef, comparison: Comparison, value: f64 },
    Range { column: ColumnRef, low: f64, high: f64 },
    /// `(column < low OR column > high)`.
    Outside { column: ColumnRef, low: f64, high: f64 },
    Boolean { column: ColumnRef, value: bool },
    /// `column >= now() - INTERVAL 'amount unit'`.
    Recent { column: ColumnRef, amount: f64, unit: &'static str },
    /// `column >= now() - INTERVAL 'far unit' AND column < now() - INTERVAL 'near unit'`.
    Ago { column: ColumnRef, near: f64, far: f64, unit: &'static str },
    /// `column < now() - INTERVAL 'amount unit'`.
    Before { column: ColumnRef, amount: f64, unit: &'static str },
    /// `column >= from AND column < to` (timestamps as text, either end open).
    Period { column: ColumnRef, from: Option<String>, to: Option<String> },
}

/// Where a typed text stands in the values a [`Filter::Like`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPosition {
    Start,
    End,
    Anywhere,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderKey {
    Measure(usize),
    Group(usize),
    Column(ColumnRef),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Having {
    pub measure: Measure,
    pub comparison: Comparison,
    pub value: f64,
}

/// `JOIN relation ON left = right`, `left` already in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub relation: usize,
    pub left: ColumnRef,
    pub right: ColumnRef,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPlan {
    pub base: usize,
    pub joins: Vec<Join>,
    /// Listed columns of a row query (no measures, no groups); empty: every column.
    pub columns: Vec<ColumnRef>,
    pub group_by: Vec<GroupKey>,
    pub measures: Vec<Measure>,
    pub filters: Vec<Filter>,
    pub having: Vec<Having>,
    /// `(key, descending)`.
    pub order: Vec<(OrderKey, bool)>,
    pub limit: Option<u64>,
    /// `SELECT DISTINCT` (a row query listing things named by their keys).
    pub distinct: bool,
}

impl QueryPlan {
    pub fn is_aggregate(&self) -> bool {
        !self.measures.is_empty() || !self.group_by.is_empty()
    }

    /// A measure asked for twice ("bottom sites by reading count" counts once) is
    /// computed and shown once; orderings follow it. Distinct counts of the two key
    /// columns of a join count the same things.
    pub fn drop_repeated_measures(&mut self) {
        let joined = |a: &ColumnRef, b: &ColumnRef| self.joins.iter().any(|j| (j.left == *a && j.right == *b) || (j.left == *b && j.right == *a));
        let same = |a: &Measure, b: &Measure| {
            a == b || (a.aggregate == Aggregate::CountDistinct && b.aggregate == Aggregate::CountDistinct && matches!((&a.column, &b.column), (Some(x), Some(y)) if joined(x, y)))
        };
        let mut kept: Vec<Measure> = Vec::new();
        let mut moved_to = Vec::with_capacity(self.measures.len());
        for measure in &self.measures {
            match kept.iter().position(|k| same(k, measure)) {
                Some(i) => moved_to.push(i),
                None => {
                    moved_to.push(kept.len());
                    kept.push(*measure);
                }
            }
        }
        for (key, _) in &mut self.order {
            if let OrderKey::Measure(i) = key {
                *i = moved_to[*i];
            }
        }
        self.order.dedup_by(|a, b| a.0 == b.0);
        self.measures = kept;
    }

    /// The plan as one SELECT over `catalog`.
    pub fn to_sql(&self, catalog: &AskCatalog) -> String {
        let qualify = !self.joins.is_empty();
        let col = |c: &ColumnRef| column_sql(catalog, c, qualify);
        let mut select: Vec<String> = Vec::new();
        let group_sql: Vec<String> = self
            .group_by
            .iter()
            .map(|g| match g {
                GroupKey::Column(c) => col(c),
                GroupKey::Bucket(c, unit) => format!("date_trunc('{unit}', {})", col(c)),
            })
            .collect();
        for (g, sql) in self.group_by.iter().zip(&group_sql) {
            match g {
                GroupKey::Column(_) => select.push(sql.clone()),
                GroupKey::Bucket(_, unit) => select.push(format!("{sql} AS {}", ident(unit))),
            }
        }
        for m in &self.measures {
            select.push(format!("{} AS {}", measure_sql(catalog, m, qualify), ident(&measure_alias(catalog, m))));
        }
        if !self.is_aggregate() {
            if self.columns.is_empty() {
                select.push(if qualify { format!("{}.*", relation_sql(catalog, self.base)) } else { "*".to_string() });
            } else {
                select.extend(self.columns.iter().map(col));
            }
        }
        let distinct = if self.distinct { "DISTINCT " } else { "" };
        let mut sql = format!("SELECT {distinct}{} FROM {}", select.join(", "), relation_sql(catalog, self.base));
        for join in &self.joins {
            sql.push_str(&format!(" JOIN {} ON {} = {}", relation_sql(catalog, join.relation), col(&join.left), col(&join.right)));
        }
        let conditions: Vec<String> = self.filters.iter().map(|f| filter_sql(catalog, f, qualify)).collect();
        if !conditions.is_empty() {
            sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        if !group_sql.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", group_sql.join(", ")));
        }
        if !self.having.is_empty() {
            let having: Vec<String> = self
                .having
                .iter()
                .map(|h| format!("{} {} {}", measure_sql(catalog, &h.measure, qualify), h.comparison.sql(), number(h.value)))
                .collect();
            sql.push_str(&format!(" HAVING {}", having.join(" AND ")));
        }
        if !self.order.is_empty() {
            let order: Vec<String> = self
                .order
                .iter()
                .map(|(key, descending)| {
                    // Largest first means real values first: DESC alone puts NULLs first.
                    let nullable = match key {
                        OrderKey::Measure(i) => self.measures[*i].column.is_some() && self.measures[*i].aggregate != Aggregate::CountDistinct,
                        OrderKey::Group(_) => false,
                        OrderKey::Column(_) => true,
                    };
                    let key = match key {
                        OrderKey::Measure(i) => ident(&measure_alias(catalog, &self.measures[*i])),
                        OrderKey::Group(i) => match &self.group_by[*i] {
                            GroupKey::Bucket(_, unit) => ident(unit),
                            GroupKey::Column(_) => group_sql[*i].clone(),
                        },
                        OrderKey::Column(c) => col(c),
                    };
                    match (*descending, nullable) {
                        (true, true) => format!("{key} DESC NULLS LAST"),
                        (true, false) => format!("{key} DESC"),
                        (false, _) => key,
                    }
                })
                .collect();
            sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
        }
        if let Some(limit) = self.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        sql
    }
}

fn measure_sql(catalog: &AskCatalog, m: &Measure, qualify: bool) -> String {
    match (m.aggregate, &m.column) {
        // Only count has no column (`count(*)`); the plan builds no other.
        (_, None) => "count(*)".to_string(),
        (Aggregate::CountDistinct, Some(c)) => format!("count(DISTINCT {})", column_sql(catalog, c, qualify)),
        (Aggregate::Spread, Some(c)) => format!("max({0}) - min({0})", column_sql(catalog, c, qualify)),
        (aggregate, Some(c)) => format!("{}({})", aggregate.sql(), column_sql(catalog, c, qualify)),
    }
}

pub fn measure_alias(catalog: &AskCatalog, m: &Measure) -> String {
    let name = |c: &ColumnRef| catalog.relations[c.relation].columns[c.column].name.clone();
    match (m.aggregate, &m.column) {
        (_, None) => "count".to_string(),
        (Aggregate::CountDistinct, Some(c)) => format!("distinct_{}", name(c)),
        (Aggregate::Count, Some(c)) => format!("count_{}", name(c)),
        (Aggregate::Sum, Some(c)) => format!("total_{}", name(c)),
        (aggregate, Some(c)) => format!("{}_{}", aggregate.sql(), name(c)),
    }
}

fn filter_sql(catalog: &AskCatalog, f: &Filter, qualify: bool) -> String {
    let col = |c: &ColumnRef| column_sql(catalog, c, qualify);
    match f {
        Filter::Values { column, values, negated } => {
            let numeric = catalog.relations[column.relation].columns[column.column].data_type.is_numeric();
            let quoted: Vec<String> = values.iter().map(|v| if numeric && v.parse::<f64>().is_ok() { v.clone() } else { literal(v) }).collect();
            match (quoted.len(), negated) {
                (1, false) => format!("{} = {}", col(column), quoted[0]),
                (1, true) => format!("{} <> {}", col(column), quoted[0]),
                (_, false) => format!("{} IN ({})", col(column), quoted.join(", ")),
                (_, true) => format!("{} NOT IN ({})", col(column), quoted.join(", ")),
            }
        }
        Filter::Prefix { column, prefix, negated } => {
            let pattern = literal(&format!("{}/%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
            let either = format!("({c} = {} OR {c} LIKE {pattern})", literal(prefix), c = col(column));
            if *negated { format!("NOT {either}") } else { either }
        }
        Filter::Like { column, text, position, negated } => {
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = match position {
                TextPosition::Start => format!("{escaped}%"),
                TextPosition::End => format!("%{escaped}"),
                TextPosition::Anywhere => format!("%{escaped}%"),
            };
            format!("{} {}ILIKE {}", col(column), if *negated { "NOT " } else { "" }, literal(&pattern))
        }
        Filter::Number { column, comparison, value } => format!("{} {} {}", col(column), comparison.sql(), number(*value)),
        Filter::Range { column, low, high } => format!("{} BETWEEN {} AND {}", col(column), number(*low), number(*high)),
        Filter::Outside { column, low, high } => format!("({} < {} OR {} > {})", col(column), number(*low), col(column), number(*high)),
        Filter::Boolean { column, value } => format!("{} = {value}", col(column)),
        Filter::Recent { column, amount, unit } => format!("{} >= now() - {}", col(column), interval(*amount, unit)),
        Filter::Before { column, amount, unit } => format!("{} < now() - {}", col(column), interval(*amount, unit)),
        Filter::Ago { column, near, far, unit } => {
            format!("{c} >= now() - {} AND {c} < now() - {}", interval(*far, unit), interval(*near, unit), c = col(column))
        }
        Filter::Period { column, from, to } => {
            let mut parts = Vec::new();
            if let Some(from) = from {
                parts.push(format!("{} >= TIMESTAMP '{from}'", col(column)));
            }
            if let Some(to) = to {
                parts.push(format!("{} < TIMESTAMP '{to}'", col(column)));
            }
            parts.join(" AND ")
        }
    }
}

fn relation_sql(catalog: &AskCatalog, r: usize) -> String {
    let relation = &catalog.relations[r];
    if relation.schema == catalog.default_schema {
        ident(&relation.name)
    } else {
        format!("{}.{}", ident(&relation.schema), ident(&relation.name))
    }
}

fn column_sql(catalog: &AskCatalog, c: &ColumnRef, qualify: bool) -> String {
    let name = ident(&catalog.relations[c.relation].columns[c.column].name);
    if qualify { format!("{}.{name}", ident(&catalog.relations[c.relation].name)) } else { name }
}

/// An identifier as SQL: bare when it is a plain lower-case word that is no SQL keyword
/// (a bare `current_date` would call the function), quoted otherwise.
pub fn ident(name: &str) -> String {
    use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && ALL_KEYWORDS.binary_search(&name.to_ascii_uppercase().as_str()).is_err();
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn interval(amount: f64, unit: &str) -> String {
    let plural = if amount == 1.0 { "" } else { "s" };
    format!("INTERVAL '{} {unit}{plural}'", number(amount))
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}
