//! RFM segments by quintile scores: the segmentation analysts know, beside
//! the K-Means segments. Plain SQL over the users' features (the output of
//! `ecoreco.rfm_features`, or any table with `user_id, recency, frequency,
//! monetary`): R, F and M scored 1-5 against the table's own distribution,
//! then named by fixed rules over the scores (`sql/macros/rfm_segments.sql`
//! says how ties are scored and which rule names what).

use crate::binding::SqlMacro;
use crate::tables;

const SEGMENTS: &str = include_str!("../../sql/macros/rfm_segments.sql");
const SUMMARY: &str = include_str!("../../sql/macros/rfm_segment_summary.sql");

/// The query of `ecoreco.rfm_segment_summary` over `users`, the name of a
/// table or CTE in scope (the report's RFM part uses it over its own CTE).
pub fn summary_query(users: &str) -> String {
    let segments = SEGMENTS.replace("query_table(users)", users);
    format!("WITH seg AS ({segments}){SUMMARY}")
}

pub fn macros() -> Vec<SqlMacro> {
    let users = tables::users(&["user_id", "recency", "frequency", "monetary"]);
    vec![
        SqlMacro::table("rfm_segments", &["users"], SEGMENTS).checking("users", &users),
        SqlMacro::table(
            "rfm_segment_summary",
            &["users"],
            summary_query("query_table(users)"),
        )
        .checking("users", &users),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_macros_read_the_users_table_only_through_query_table() {
        for m in macros() {
            assert!(m.table && m.params == ["users"], "{}", m.name);
            // The rows, behind the check of the table's columns.
            assert!(
                m.body
                    .contains("(FROM query_table(users) WHERE (SELECT CASE"),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn every_rule_names_one_of_the_ten_segments_listed_by_the_summary() {
        let named: Vec<&str> = SEGMENTS
            .lines()
            .filter_map(|l| {
                l.split("THEN '")
                    .nth(1)
                    .or_else(|| l.split("ELSE '").nth(1))
            })
            .map(|rest| rest.split('\'').next().unwrap())
            .collect();
        assert_eq!(named.len(), 10, "{named:?}");
        for name in named {
            assert!(SUMMARY.contains(&format!("'{name}')")), "{name}");
        }
    }
}
