//! The translator over a small shop + sensors catalog: what SQL questions become, which
//! questions are refused, and that every name in the SQL comes from the catalog.

use arrow::datatypes::DataType;
use streamhouse_executor::{AskCatalog, AskColumn, AskRelation, Translator};

use super::OfflineTranslator;

fn column(name: &str, data_type: DataType, comment: &str, values: &[&str]) -> AskColumn {
    AskColumn {
        name: name.into(),
        data_type,
        comment: (!comment.is_empty()).then(|| comment.into()),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        time_span: None,
    }
}

fn relation(name: &str, comment: &str, columns: Vec<AskColumn>) -> AskRelation {
    AskRelation { schema: "public".into(), name: name.into(), comment: (!comment.is_empty()).then(|| comment.into()), columns }
}

fn catalog() -> AskCatalog {
    use DataType::*;
    let ts = || Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
    AskCatalog {
        default_schema: "public".into(),
        relations: vec![
            relation("customers", "customers (buyers) of the shop", vec![
                column("customer_id", Int64, "customer id", &[]),
                column("name", Utf8, "full name of the customer", &[]),
                column("country", Utf8, "", &["France", "Germany", "United States"]),
                column("segment", Utf8, "", &["consumer", "enterprise"]),
            ]),
            relation("orders", "orders (purchases) placed by customers", vec![
                column("order_id", Int64, "order number", &[]),
                column("customer_id", Int64, "", &[]),
                column("amount", Float64, "order total in euros", &[]),
                column("status", Utf8, "", &["cancelled", "pending", "shipped"]),
                column("region", Utf8, "", &["APAC", "EU", "US"]),
                column("created_at", ts(), "when the order was placed", &[]),
            ]),
            relation("payments", "", vec![
                column("payment_id", Int64, "", &[]),
                column("order_id", Int64, "", &[]),
                column("method", Utf8, "", &["bank_transfer", "card", "paypal"]),
                column("amount", Float64, "amount paid in euros", &[]),
                column("paid_at", ts(), "", &[]),
            ]),
            relation("devices", "sensor devices", vec![
                column("device_id", Int64, "", &[]),
                column("site", Utf8, "", &["Austin", "Osaka"]),
                column("kind", Utf8, "kind of sensor", &["indoor", "outdoor"]),
                column("firmware", Int64, "firmware build", &["210", "500"]),
            ]),
            relation("readings", "sensor readings sent by the devices", vec![
                column("device_id", Int64, "", &[]),
                column("temperature", Float64, "temperature in degrees Celsius", &[]),
                column("humidity", Float64, "relative humidity in percent", &[]),
                column("ts", ts(), "", &[]),
            ]),
        ],
    }
}

fn sql(question: &str) -> String {
    match OfflineTranslator::new(None).translate(question, &catalog()) {
        Ok(t) => t.sql,
        Err(refusal) => panic!("{question}: refused: {}", refusal.0),
    }
}

fn refusal(question: &str) -> String {
    match OfflineTranslator::new(None).translate(question, &catalog()) {
        Ok(t) => panic!("{question}: answered {}", t.sql),
        Err(refusal) => refusal.0,
    }
}

#[test]
fn aggregates_groups_and_values() {
    assert_eq!(sql("total revenue by region"), "SELECT \"region\", sum(amount) AS total_amount FROM orders GROUP BY \"region\" ORDER BY \"region\"");
    assert_eq!(sql("how many orders were cancelled"), "SELECT count(*) AS \"count\" FROM orders WHERE \"status\" = 'cancelled'");
    assert_eq!(sql("average order value"), "SELECT avg(amount) AS avg_amount FROM orders");
    assert_eq!(sql("payments by method"), "SELECT \"method\", count(*) AS \"count\" FROM payments GROUP BY \"method\" ORDER BY \"method\"");
    assert_eq!(sql("min and max temperature"), "SELECT min(temperature) AS min_temperature, max(temperature) AS max_temperature FROM readings");
    assert_eq!(sql("list enterprise customers from France"), "SELECT * FROM customers WHERE segment = 'enterprise' AND country = 'France'");
    assert_eq!(sql("orders from the EU or US region"), "SELECT * FROM orders WHERE \"region\" IN ('EU', 'US')");
    // Short values match only as typed: "us" is a pronoun, "US" a region.
    assert_eq!(sql("show us the pending orders"), "SELECT * FROM orders WHERE \"status\" = 'pending'");
}

#[test]
fn time_ranges_buckets_and_ranking() {
    assert_eq!(
        sql("daily order count in March 2025"),
        "SELECT date_trunc('day', created_at) AS \"day\", count(*) AS \"count\" FROM orders WHERE created_at >= TIMESTAMP '2025-03-01' AND created_at < TIMESTAMP '2025-04-01' GROUP BY date_trunc('day', created_at) ORDER BY \"day\""
    );
    assert_eq!(sql("max temperature in the last 6 hours"), "SELECT max(temperature) AS max_temperature FROM readings WHERE ts >= now() - INTERVAL '6 hours'");
    assert_eq!(sql("show me the last 10 payments"), "SELECT * FROM payments ORDER BY paid_at DESC NULLS LAST LIMIT 10");
    assert_eq!(
        sql("which payment method is the most popular"),
        "SELECT \"method\", count(*) AS \"count\" FROM payments GROUP BY \"method\" ORDER BY \"count\" DESC LIMIT 1"
    );
    assert_eq!(sql("biggest order value in Q2 2025"), "SELECT max(amount) AS max_amount FROM orders WHERE created_at >= TIMESTAMP '2025-04-01' AND created_at < TIMESTAMP '2025-07-01'");
}

#[test]
fn joins_follow_key_columns() {
    assert_eq!(
        sql("average temperature per site"),
        "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site ORDER BY devices.site"
    );
    assert_eq!(
        sql("total revenue from German customers"),
        "SELECT sum(orders.amount) AS total_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id WHERE customers.country = 'Germany'"
    );
    assert_eq!(
        sql("number of orders by customer country"),
        "SELECT customers.country, count(*) AS \"count\" FROM orders JOIN customers ON orders.customer_id = customers.customer_id GROUP BY customers.country ORDER BY customers.country"
    );
}

#[test]
fn conditions_on_numbers_and_groups() {
    assert_eq!(sql("orders over 100 euros"), "SELECT * FROM orders WHERE amount > 100");
    assert_eq!(sql("show me all orders from customer 42"), "SELECT * FROM orders WHERE customer_id = 42");
    assert_eq!(
        sql("regions with revenue above 50000"),
        "SELECT \"region\", sum(amount) AS total_amount FROM orders GROUP BY \"region\" HAVING sum(amount) > 50000 ORDER BY \"region\""
    );
}

#[test]
fn refusals_name_the_words_they_could_not_link() {
    let why = refusal("average salary per department");
    assert!(why.contains("\"salary\"") && why.contains("\"department\""), "{why}");
    assert!(refusal("orders shipped to Atlantis").contains("Atlantis"));
    assert!(refusal("'Narnia' orders").contains("Narnia"), "a quoted value that is not stored is refused");
    assert!(refusal("the").contains("could not link"));
}

#[test]
fn every_identifier_comes_from_the_catalog() {
    let catalog = catalog();
    let mut known: Vec<String> = catalog.relations.iter().map(|r| r.name.clone()).collect();
    known.extend(catalog.relations.iter().flat_map(|r| r.columns.iter().map(|c| c.name.clone())));
    for question in ["total revenue by region", "average temperature per site", "how many orders per status in 2025", "top 3 customers by revenue"] {
        let sql = sql(question);
        let parsed = datafusion::sql::sqlparser::parser::Parser::parse_sql(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {}, &sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(parsed.len(), 1);
        let mut idents = Vec::new();
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(&parsed, |e| {
            match e {
                datafusion::sql::sqlparser::ast::Expr::Identifier(i) => idents.push(i.value.clone()),
                datafusion::sql::sqlparser::ast::Expr::CompoundIdentifier(parts) => idents.extend(parts.iter().map(|i| i.value.clone())),
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        let aliases = ["count", "day", "month", "hour", "week", "year"];
        for ident in idents {
            assert!(known.contains(&ident) || aliases.contains(&ident.as_str()) || ident.starts_with("total_") || ident.starts_with("avg_"), "{sql}: {ident}");
        }
    }
}

#[test]
fn absolute_periods_and_parts_of_them() {
    let period = |from: &str, to: &str| format!("created_at >= TIMESTAMP '{from}' AND created_at < TIMESTAMP '{to}'");
    for (question, from, to) in [
        ("order count in each region during 2025-07", "2025-07-01", "2025-08-01"),
        ("how many orders in the first week of June 2025", "2025-06-01", "2025-06-08"),
        ("how many orders between March 1 and March 15 2025", "2025-03-01", "2025-03-16"),
        ("average order value in the second half of 2025", "2025-07-01", "2026-01-01"),
        ("average order value in the last month of 2025", "2025-12-01", "2026-01-01"),
    ] {
        let sql = sql(question);
        assert!(sql.contains(&period(from, to)), "{question}: {sql}");
    }
    assert_eq!(
        sql("max temperature between 6 and 12 hours ago"),
        "SELECT max(temperature) AS max_temperature FROM readings WHERE ts >= now() - INTERVAL '12 hours' AND ts < now() - INTERVAL '6 hours'"
    );
}

#[test]
fn asked_buckets_and_ranked_groups() {
    assert_eq!(
        sql("in which month did we receive the most orders"),
        "SELECT date_trunc('month', created_at) AS \"month\", count(*) AS \"count\" FROM orders GROUP BY date_trunc('month', created_at) ORDER BY \"count\" DESC LIMIT 1"
    );
    assert_eq!(
        sql("the 2 least used payment methods"),
        "SELECT \"method\", count(*) AS \"count\" FROM payments GROUP BY \"method\" ORDER BY \"count\" LIMIT 2"
    );
    assert_eq!(
        sql("the 3 device ids with the highest mean temperature"),
        "SELECT device_id, avg(temperature) AS avg_temperature FROM readings GROUP BY device_id ORDER BY avg_temperature DESC NULLS LAST LIMIT 3"
    );
}

#[test]
fn conditions_on_averages_and_counts() {
    assert_eq!(
        sql("which sites have an average temperature above 20"),
        "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site HAVING avg(readings.temperature) > 20 ORDER BY devices.site"
    );
    assert_eq!(
        sql("which customer ids placed at least 3 orders"),
        "SELECT customer_id, count(*) AS \"count\" FROM orders GROUP BY customer_id HAVING count(*) >= 3 ORDER BY customer_id"
    );
}

#[test]
fn time_questions_answer_with_the_time() {
    assert_eq!(
        sql("when did customer 7 last place an order"),
        "SELECT created_at FROM orders WHERE customer_id = 7 ORDER BY created_at DESC NULLS LAST LIMIT 1"
    );
    let why = refusal("how many customers registered in March 2025");
    assert!(why.contains("no time column"), "{why}");
}

#[test]
fn the_time_span_of_the_data_chooses_between_readings() {
    // Two relations measure money; only one holds rows in the asked month.
    let mut catalog = catalog();
    let micros = |date: &str| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
    for relation in &mut catalog.relations {
        for column in &mut relation.columns {
            if column.name == "created_at" {
                column.time_span = Some((micros("2020-01-01"), micros("2020-12-31")));
            }
            if column.name == "paid_at" {
                column.time_span = Some((micros("2025-01-01"), micros("2025-12-31")));
            }
        }
    }
    let sql = OfflineTranslator::new(None).translate("total amount in February 2025", &catalog).expect("answered").sql;
    assert!(sql.contains("FROM payments"), "{sql}");
}

#[test]
fn a_number_after_a_things_name_is_its_id_not_a_stored_code() {
    let device = sql("how many readings did device 500 send");
    assert!(device.contains("device_id = 500") && !device.contains("firmware"), "{device}");
    let code = sql("how many devices run firmware 500");
    assert!(code.contains("firmware = 500"), "{code}");
}

#[test]
fn people_are_answered_by_name_and_things_by_id() {
    // Customers are people: "which customers" and "who" ask for their names.
    let which = sql("which customers placed more than 20 orders");
    assert!(which.starts_with("SELECT customers.\"name\", count(*)") && which.contains("GROUP BY customers.\"name\" HAVING count(*) > 20"), "{which}");
    let who = sql("who ordered most often? name please");
    assert!(who.starts_with("SELECT customers.\"name\", count(*)") && who.contains("ORDER BY \"count\" DESC LIMIT 1"), "{who}");
    // Saying "ids" asks for the key; devices are things, answered by id.
    assert!(sql("which customer ids placed more than 20 orders").starts_with("SELECT customer_id, count(*)"));
    assert!(sql("which devices sent more than 5 readings").starts_with("SELECT device_id, count(*)"));
}

#[test]
fn text_patterns_match_as_typed() {
    // The text keeps its hyphen; the column named before the phrase is matched, not listed.
    assert_eq!(sql("customers whose name starts with ACME-EU"), "SELECT * FROM customers WHERE \"name\" ILIKE 'ACME-EU%'");
    assert_eq!(sql("customers with Shop in their name"), "SELECT * FROM customers WHERE \"name\" ILIKE '%Shop%'");
    assert_eq!(sql("customers whose name does not end with GmbH"), "SELECT * FROM customers WHERE \"name\" NOT ILIKE '%GmbH'");
    // "named Emma": the label of the things named before; wildcards typed are escaped.
    assert_eq!(sql("customers named Emma"), "SELECT * FROM customers WHERE \"name\" ILIKE 'Emma%'");
    assert_eq!(sql("customers whose name contains '50%'"), "SELECT * FROM customers WHERE \"name\" ILIKE '%50\\%%'");
    // "in the last hour" after "with …" is a time range, not a column.
    assert!(refusal("orders with zzz in the last hour").contains("zzz"));
}

#[test]
fn median_and_a_leading_superlative() {
    assert_eq!(sql("median order amount"), "SELECT median(amount) AS median_amount FROM orders");
    // A superlative opening the question before a group's noun ranks the groups; before a
    // measure it is the measure's extreme.
    assert_eq!(sql("coldest site"), "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site ORDER BY avg_temperature LIMIT 1");
    assert_eq!(sql("max temperature"), "SELECT max(temperature) AS max_temperature FROM readings");
}

#[test]
fn who_ranks_the_people_the_rows_are_about() {
    assert_eq!(
        sql("who placed the most orders"),
        "SELECT customers.\"name\", count(*) AS \"count\" FROM orders JOIN customers ON orders.customer_id = customers.customer_id GROUP BY customers.\"name\" ORDER BY \"count\" DESC LIMIT 1"
    );
}

#[test]
fn the_single_row_ranked_names_its_group() {
    // "the coldest reading": one row, and the device it belongs to; "on average" ranks the devices.
    assert_eq!(
        sql("which device sent the coldest reading"),
        "SELECT device_id FROM readings ORDER BY temperature LIMIT 1"
    );
}

#[test]
fn day_ranges_and_holidays_take_the_year_said_last() {
    let ranged = |from: &str, to: &str| format!("SELECT * FROM orders WHERE created_at >= TIMESTAMP '{from}' AND created_at < TIMESTAMP '{to}'");
    assert_eq!(sql("orders Nov 24 to Nov 30 2025"), ranged("2025-11-24", "2025-12-01"));
    assert_eq!(sql("orders from Christmas to New Year's Eve 2025"), ranged("2025-12-25", "2026-01-01"));
    // The first day after the last in the calendar is in the year before.
    assert_eq!(sql("orders between Christmas and New Year's Day 2026"), ranged("2025-12-25", "2026-01-02"));
    assert_eq!(sql("orders on Christmas 2025"), ranged("2025-12-25", "2025-12-26"));
    // Capitalized words before the range name it.
    assert_eq!(sql("orders in Black Friday week, Nov 24 to Nov 30 2025"), ranged("2025-11-24", "2025-12-01"));
}

#[test]
fn orderings_and_limits_said_in_passing() {
    assert_eq!(
        sql("average temperature per site, sorted warmest to coldest"),
        "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site ORDER BY avg_temperature DESC NULLS LAST"
    );
    // A comparative after a number is a comparison, not "the 404 most …".
    assert_eq!(sql("sites with firmware 500 more than 2 times"), "SELECT site, count(*) AS \"count\" FROM devices WHERE firmware = 500 GROUP BY site HAVING count(*) > 2 ORDER BY site");
    assert_eq!(
        sql("how many customers per country? only countries with over 40"),
        "SELECT country, count(*) AS \"count\" FROM customers GROUP BY country HAVING count(*) > 40 ORDER BY country"
    );
    // "indoor excluded": the negation said after the value.
    assert_eq!(sql("devices per site, indoor excluded"), "SELECT site, count(*) AS \"count\" FROM devices WHERE kind <> 'indoor' GROUP BY site ORDER BY site");
}

#[test]
fn a_group_named_by_its_things() {
    // "buyer country": the customers' country; "order numbers": the orders' ids.
    assert_eq!(
        sql("average order amount per buyer country"),
        "SELECT customers.country, avg(orders.amount) AS avg_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id GROUP BY customers.country ORDER BY customers.country"
    );
    assert_eq!(sql("order numbers of cancelled orders"), "SELECT order_id FROM orders WHERE \"status\" = 'cancelled'");
    // Things whose measure is compared: each of them, HAVING the measure.
    assert_eq!(
        sql("customers whose average order is above 400 euros"),
        "SELECT customer_id, avg(amount) AS avg_amount FROM orders GROUP BY customer_id HAVING avg(amount) > 400 ORDER BY customer_id"
    );
}

#[test]
fn negations_said_after_and_rows_ranked_in_passing() {
    // "cancelled orders not counted": the negation said after the value and its noun.
    assert_eq!(
        sql("orders per region, cancelled orders not counted"),
        "SELECT \"region\", count(*) AS \"count\" FROM orders WHERE \"status\" <> 'cancelled' GROUP BY \"region\" ORDER BY \"region\""
    );
    // "biggest first" after the rows named first orders them all.
    assert_eq!(sql("EU orders over 400 euros, biggest first"), "SELECT * FROM orders WHERE \"region\" = 'EU' AND amount > 400 ORDER BY amount DESC NULLS LAST");
    // "most"/"least" with the adjective that ranks the row.
    assert_eq!(sql("the least expensive order"), "SELECT * FROM orders ORDER BY amount LIMIT 1");
    // A pronoun after a measure puts the condition on the measure.
    assert_eq!(
        sql("average temperature per site, only where it is above 20 degrees"),
        "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site HAVING avg(readings.temperature) > 20 ORDER BY devices.site"
    );
}

#[test]
fn ages_events_and_time_spent() {
    // "older than 30 days": the things' own time lies before that long ago.
    assert_eq!(sql("orders older than 30 days"), "SELECT * FROM orders WHERE created_at < now() - INTERVAL '30 days'");
    // An event verb before the comparison compares the value; "how many times" counts rows.
    assert_eq!(
        sql("how many times did it drop below zero at Osaka"),
        "SELECT count(*) AS \"count\" FROM devices JOIN readings ON devices.device_id = readings.device_id WHERE devices.site = 'Osaka' AND readings.temperature < 0"
    );
    // Time spent is not money: nothing stores it, so ASK refuses and names the word.
    assert!(refusal("total time each customer spent in the shop").contains("spent"));
}

#[test]
fn everyday_value_phrases_two_sided_ranges_and_polarity() {
    // Everyday phrases for stored values and a column concept said as a phrase.
    assert_eq!(sql("how many orders are still waiting to be shipped"), "SELECT count(*) AS \"count\" FROM orders WHERE \"status\" = 'pending'");
    assert_eq!(sql("average payment per way of paying"), "SELECT \"method\", avg(amount) AS avg_amount FROM payments GROUP BY \"method\" ORDER BY \"method\"");
    // "below 20 or above 90": outside the two.
    assert_eq!(sql("readings where humidity is below 20 or above 90"), "SELECT * FROM readings WHERE (humidity < 20 OR humidity > 90)");
    // "worst" ranks by what is good in the column: little revenue is bad.
    assert_eq!(sql("regions ranked by total revenue, worst first"), "SELECT \"region\", sum(amount) AS total_amount FROM orders GROUP BY \"region\" ORDER BY total_amount");
}

#[test]
fn opening_context_sentences_and_date_forms() {
    // A sentence about the asker before the question is context; its stored values stay.
    assert_eq!(
        sql("We're putting together the board deck. How many orders were shipped in H1 2025?"),
        "SELECT count(*) AS \"count\" FROM orders WHERE \"status\" = 'shipped' AND created_at >= TIMESTAMP '2025-01-01' AND created_at < TIMESTAMP '2025-07-01'"
    );
    assert_eq!(
        sql("We are reviewing Osaka. Which kinds of sensors does it have?"),
        "SELECT kind FROM devices WHERE site = 'Osaka' GROUP BY kind ORDER BY kind"
    );
    // Day before month, and a day range before its month.
    assert_eq!(
        sql("orders between 1 April and 15 May 2025"),
        "SELECT * FROM orders WHERE created_at >= TIMESTAMP '2025-04-01' AND created_at < TIMESTAMP '2025-05-16'"
    );
    assert_eq!(sql("payments on 24-30 November 2025"), "SELECT * FROM payments WHERE paid_at >= TIMESTAMP '2025-11-24' AND paid_at < TIMESTAMP '2025-12-01'");
    // "20k": thousands.
    assert_eq!(sql("orders above 20k euros"), "SELECT * FROM orders WHERE amount > 20000");
}

#[test]
fn answers_listed_after_the_question() {
    // Labels listed after the last pause name more of each group.
    assert_eq!(
        sql("which sensors are indoor? device ids and sites"),
        "SELECT device_id, site FROM devices WHERE kind = 'indoor' GROUP BY device_id, site ORDER BY device_id, site"
    );
    // The column the question opens with is asked for, though it also orders the rows.
    assert_eq!(sql("the names of all customers in France, sorted by name"), "SELECT \"name\" FROM customers WHERE country = 'France' ORDER BY \"name\"");
    // "… in total: name and total": a condition on each group's total.
    assert_eq!(sql("customers who spent over 2500 euros in total: name and total"), "SELECT customers.\"name\", sum(orders.amount) AS total_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id GROUP BY customers.\"name\" HAVING sum(orders.amount) > 2500 ORDER BY customers.\"name\"");
}

#[test]
fn lists_in_parentheses_labels_and_day_first_dates() {
    // A label sentence that names nothing is context; "+" joins groups.
    assert_eq!(
        sql("Finance recap: average payment per method + month in 2025"),
        "SELECT date_trunc('month', paid_at) AS \"month\", \"method\", avg(amount) AS avg_amount FROM payments WHERE paid_at >= TIMESTAMP '2025-01-01' AND paid_at < TIMESTAMP '2026-01-01' GROUP BY date_trunc('month', paid_at), \"method\" ORDER BY \"month\", \"method\""
    );
    // Columns listed in parentheses are the answer; "newest … first" orders every row.
    assert_eq!(sql("EU orders (order number, amount), newest order first"), "SELECT order_id, amount FROM orders WHERE \"region\" = 'EU' ORDER BY created_at DESC NULLS LAST");
    // A day-first date the numbers tell apart; an ambiguous one is no date.
    assert_eq!(sql("orders on 14/02/2025"), "SELECT * FROM orders WHERE created_at >= TIMESTAMP '2025-02-14' AND created_at < TIMESTAMP '2025-02-15'");
    assert!(refusal("orders on 03/04/2025").contains("03/04/2025"));
    // "leave X out"
    assert_eq!(sql("orders per region, leave EU out"), "SELECT \"region\", count(*) AS \"count\" FROM orders WHERE \"region\" <> 'EU' GROUP BY \"region\" ORDER BY \"region\"");
}

#[test]
fn group_totals_counts_of_each_and_day_ranges() {
    // A category does not order; its total does.
    assert_eq!(
        sql("which segments ordered for more than 50k euros? segment and total"),
        "SELECT customers.segment, sum(orders.amount) AS total_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id GROUP BY customers.segment HAVING sum(orders.amount) > 50000 ORDER BY customers.segment"
    );
    // "returned or cancelled - how many of each": each value a group.
    assert_eq!(sql("EU orders that were shipped or cancelled - how many of each"), "SELECT \"status\", count(*) AS \"count\" FROM orders WHERE \"region\" = 'EU' AND \"status\" IN ('shipped', 'cancelled') GROUP BY \"status\" ORDER BY \"status\"");
    // A day range before its month.
    assert_eq!(sql("payments from 10 to 20 March 2025"), "SELECT * FROM payments WHERE paid_at >= TIMESTAMP '2025-03-10' AND paid_at < TIMESTAMP '2025-03-21'");
}

#[test]
fn extreme_rows_with_what_is_named_beside_them() {
    // The superlative ranks the rows its noun names; what is named "with" it is shown.
    assert_eq!(sql("the warmest reading ever, with the site of the device"), "SELECT devices.site, readings.temperature FROM readings JOIN devices ON readings.device_id = devices.device_id ORDER BY readings.temperature DESC NULLS LAST LIMIT 1");
    // "the largest order …" alone is the largest amount, as before.
    assert_eq!(sql("largest order placed by an enterprise customer"), "SELECT max(orders.amount) AS max_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id WHERE customers.segment = 'enterprise'");
}

#[test]
fn name_parts_and_rows_a_time_ranking_names() {
    // "first name is …", "last name …": the start or end of the label.
    assert_eq!(sql("customers whose last name is Rossi"), "SELECT * FROM customers WHERE \"name\" ILIKE '%Rossi'");
    // The rows the time ranking names are the answer, not the things named first.
    assert_eq!(sql("Osaka, indoor sensors only: the 5 newest readings"), "SELECT readings.* FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.site = 'Osaka' AND devices.kind = 'indoor' ORDER BY readings.ts DESC NULLS LAST LIMIT 5");
    // Things ranked by what their rows measure, each by its label.
    assert_eq!(
        sql("the 2 warmest sensors"),
        "SELECT devices.device_id, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.device_id ORDER BY avg_temperature DESC NULLS LAST LIMIT 2"
    );
    // "which … ? show them": the rows themselves.
    assert_eq!(sql("which readings were below minus 20 degrees? show them"), "SELECT * FROM readings WHERE temperature < -20");
}

#[test]
fn per_row_averages_order_totals_and_windows_between_ages() {
    // "per order" after an average: each order's value, not a grouping.
    assert_eq!(
        sql("which segments average more than 120 euros per order?"),
        "SELECT customers.segment, avg(orders.amount) AS avg_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id GROUP BY customers.segment HAVING avg(orders.amount) > 120 ORDER BY customers.segment"
    );
    // "highest order total": the order total, no sum.
    assert_eq!(sql("highest order total among cancelled orders"), "SELECT max(amount) AS max_amount FROM orders WHERE \"status\" = 'cancelled'");
    // "more than a week but less than 30 days ago".
    assert_eq!(
        sql("orders placed more than a week but less than 30 days ago"),
        "SELECT * FROM orders WHERE created_at >= now() - INTERVAL '30 days' AND created_at < now() - INTERVAL '7 days'"
    );
    // People ranked by the money of their rows; "how much each spent" is no grouping.
    assert_eq!(
        sql("our 3 biggest customers in 2025 by money spent: name and total"),
        "SELECT customers.\"name\", sum(orders.amount) AS total_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id WHERE orders.created_at >= TIMESTAMP '2025-01-01' AND orders.created_at < TIMESTAMP '2026-01-01' GROUP BY customers.\"name\" ORDER BY total_amount DESC NULLS LAST LIMIT 3"
    );
    // "…, the whole row please": every column of the ranked row.
    assert_eq!(sql("smallest order ever placed in the EU region, the whole row please"), "SELECT * FROM orders WHERE \"region\" = 'EU' ORDER BY amount LIMIT 1");
    // A currency sign before the number says which column.
    assert_eq!(sql("payments above €900"), "SELECT * FROM payments WHERE amount > 900");
}

#[test]
fn labels_and_averages_before_a_comparison() {
    // A label's unknown words name the occasion; its names and values are read.
    assert_eq!(
        sql("Cold-chain check: which outdoor sensors average warmer than 30 degrees? device ids please"),
        sql("which outdoor sensors average warmer than 30 degrees? device ids please")
    );
    assert_eq!(
        sql("which outdoor sensors average warmer than 30 degrees? device ids please"),
        "SELECT devices.device_id, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.kind = 'outdoor' GROUP BY devices.device_id HAVING avg(readings.temperature) > 30 ORDER BY devices.device_id"
    );
    assert_eq!(sql("Osaka sensors: every reading over 30 degrees"), sql("every reading over 30 degrees from Osaka sensors"));
    // Without a later sentence that names something, a label is the question.
    assert!(refusal("Smoke detections: last week").contains("Smoke"));
}

#[test]
fn who_asks_and_averages_said_before_a_pause() {
    // "Finance wants …": who asks is not part of the question.
    assert_eq!(sql("Finance wants the average order amount"), sql("the average order amount"));
    // "where it averaged below …": the column named before.
    assert_eq!(
        sql("temperature by site, only sites where it averaged below 10"),
        "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site HAVING avg(readings.temperature) < 10 ORDER BY devices.site"
    );
    // "… on average? region and that average": the average is not taken of the region.
    assert_eq!(
        sql("In which region do orders cost the least on average? region and that average"),
        "SELECT \"region\", avg(amount) AS avg_amount FROM orders GROUP BY \"region\" ORDER BY avg_amount LIMIT 1"
    );
}

#[test]
fn details_listed_after_an_extreme_row() {
    // The columns listed after the pause are shown; the superlative ranks by its own measure.
    assert_eq!(
        sql("The largest order on record: its order number, amount, and the name of the customer"),
        "SELECT orders.order_id, orders.amount, customers.\"name\" FROM orders JOIN customers ON orders.customer_id = customers.customer_id ORDER BY orders.amount DESC NULLS LAST LIMIT 1"
    );
    // "when, how much, and from which customer": the row's time, amount and the customer's label.
    assert_eq!(
        sql("the biggest order: how much and which customer"),
        "SELECT customers.\"name\", orders.amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id ORDER BY orders.amount DESC NULLS LAST LIMIT 1"
    );
}

#[test]
fn counts_after_qualified_nouns_and_averages_of_a_column() {
    // "whose temperature averaged above 30": the column right before the average.
    assert_eq!(
        sql("Osaka devices whose temperature averaged above 30: device ids and averages"),
        "SELECT devices.device_id, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.site = 'Osaka' GROUP BY devices.device_id HAVING avg(readings.temperature) > 30 ORDER BY devices.device_id"
    );
    // "how many separate customers placed at least one order": those appearing in orders.
    assert_eq!(sql("how many separate customers placed at least one order?"), "SELECT count(DISTINCT customer_id) AS distinct_customer_id FROM orders");
}

#[test]
fn two_aggregates_asked_and_each_of_the_opening_things() {
    // "how many …, and how much did they total?": both; "total" restates "how much".
    assert_eq!(sql("Card payments: how many were there, and how much did they total?"), "SELECT count(*) AS \"count\", sum(amount) AS total_amount FROM payments WHERE \"method\" = 'card'");
    // "Payment methods used by …, with the number of payments for each": by method.
    assert_eq!(
        sql("Payment methods used by French customers, with the number of payments for each"),
        "SELECT payments.\"method\", count(*) AS \"count\" FROM payments JOIN orders ON payments.order_id = orders.order_id JOIN customers ON orders.customer_id = customers.customer_id WHERE customers.country = 'France' GROUP BY payments.\"method\" ORDER BY payments.\"method\""
    );
}

#[test]
fn extreme_rows_named_by_a_value_or_a_measure() {
    // "The 5 smallest shipped orders: order number and amount": both listed.
    assert_eq!(sql("The 5 smallest shipped orders: order number and amount"), "SELECT order_id, amount FROM orders WHERE \"status\" = 'shipped' ORDER BY amount LIMIT 5");
    // "Biggest PayPal payment: amount and when it was paid": the row, its columns listed.
    assert_eq!(sql("Biggest PayPal payment we ever got: amount and when it was paid"), "SELECT amount, paid_at FROM payments WHERE \"method\" = 'paypal' ORDER BY amount DESC NULLS LAST LIMIT 1");
    // "Warmest outdoor reading …, and the site of the sensor": a value before the row noun.
    assert_eq!(
        sql("Warmest outdoor reading, and the site of the sensor that took it"),
        "SELECT devices.site, readings.temperature FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.kind = 'outdoor' ORDER BY readings.temperature DESC NULLS LAST LIMIT 1"
    );
    // "Priciest order …": a superlative of price ranks the orders by amount.
    assert_eq!(sql("Priciest order: order number and amount"), "SELECT order_id, amount FROM orders ORDER BY amount DESC NULLS LAST LIMIT 1");
}

#[test]
fn which_of_the_things_named_first() {
    // "Of the Austin devices, which has the highest …": which of them, ranked.
    assert_eq!(
        sql("Of the Osaka devices, which has the highest average temperature? device ids please"),
        "SELECT devices.device_id, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.site = 'Osaka' GROUP BY devices.device_id ORDER BY avg_temperature DESC NULLS LAST LIMIT 1"
    );
}

#[test]
fn who_did_the_most_is_one() {
    assert_eq!(
        sql("Among enterprise customers, who has spent the most? names and their total"),
        "SELECT customers.\"name\", sum(orders.amount) AS total_amount FROM orders JOIN customers ON orders.customer_id = customers.customer_id WHERE customers.segment = 'enterprise' GROUP BY customers.\"name\" ORDER BY total_amount DESC NULLS LAST LIMIT 1"
    );
}

#[test]
fn a_column_named_after_its_value_restates_it() {
    // "enterprise-segment customers": the segment only says whose value "enterprise" is.
    assert_eq!(sql("how many orders did enterprise-segment customers place"), sql("how many orders did enterprise customers place"));
    assert_eq!(sql("biggest single order by an enterprise-segment customer"), sql("biggest single order by an enterprise customer"));
}

#[test]
fn things_listed_with_what_is_added_about_them() {
    // "clients with Garcia in their name, and the country they live in": who, and where.
    assert_eq!(sql("customers with Garcia in their name, and the country they live in"), "SELECT \"name\", country FROM customers WHERE \"name\" ILIKE '%Garcia%'");
}

#[test]
fn spreads_between_the_extremes() {
    let spread = "SELECT devices.site, max(readings.temperature) - min(readings.temperature) AS spread_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site ORDER BY devices.site";
    assert_eq!(sql("temperature spread (max minus min) per site"), spread);
    assert_eq!(sql("per site, the difference between the highest and lowest temperature"), spread);
    // A range is its two ends, not their difference.
    assert_eq!(sql("temperature range per site"), "SELECT devices.site, min(readings.temperature) AS min_temperature, max(readings.temperature) AS max_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id GROUP BY devices.site ORDER BY devices.site");
}

#[test]
fn going_by_names_what_ranks() {
    // "going by …" names the measure that ranks, not a grouping.
    assert_eq!(sql("which region is the busiest, going by number of orders"), sql("which region has the most orders"));
}

#[test]
fn where_is_it_most_names_the_place() {
    assert_eq!(
        sql("Where are the outdoor sensors warmest on average? the site and its average temperature"),
        "SELECT devices.site, avg(readings.temperature) AS avg_temperature FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.kind = 'outdoor' GROUP BY devices.site ORDER BY avg_temperature DESC NULLS LAST LIMIT 1"
    );
}

#[test]
fn family_names_as_said_and_the_longest_standing() {
    // "anyone with Sato as their family name": the end of the label.
    assert_eq!(sql("anyone with Sato as their family name? name and segment"), "SELECT \"name\", segment FROM customers WHERE \"name\" ILIKE '%Sato'");
    // "longest-standing": the oldest by time.
    assert_eq!(sql("the longest-standing order: amount and status"), sql("the oldest order: amount and status"));
}

#[test]
fn the_full_row_named_by_its_noun() {
    // "the full reading": every column of the reading, not a column whose comment says "full".
    assert_eq!(sql("the last thing device 29 reported? the full reading"), "SELECT * FROM readings WHERE device_id = 29 ORDER BY ts DESC NULLS LAST LIMIT 1");
}

#[test]
fn rows_counted_beside_a_total() {
    // "cancelled orders and total euros per region": how many, beside the total.
    assert_eq!(
        sql("cancelled orders and total euros per region"),
        "SELECT \"region\", count(*) AS \"count\", sum(amount) AS total_amount FROM orders WHERE \"status\" = 'cancelled' GROUP BY \"region\" ORDER BY \"region\""
    );
}

#[test]
fn which_rows_listed_with_their_time() {
    // "Which outdoor readings … were warmer than 30 degrees? site, reading and timestamp": rows.
    assert_eq!(
        sql("Which outdoor readings were warmer than 30 degrees? site, reading and timestamp"),
        "SELECT devices.site, readings.temperature, readings.ts FROM readings JOIN devices ON readings.device_id = devices.device_id WHERE devices.kind = 'outdoor' AND readings.temperature > 30"
    );
}
