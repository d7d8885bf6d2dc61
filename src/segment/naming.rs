//! The business names of segments, by the original pipeline's rules: what
//! a segment is called from its centroid in original units.

use std::collections::HashMap;

/// The business name of a segment from its centroid in original units, by
/// the original pipeline's rules (checked in this order). A rule whose
/// feature is not among the clustered columns does not match.
pub fn business_name(centroid: &HashMap<&str, f64>) -> &'static str {
    let get = |name: &str| centroid.get(name).copied();
    let gt = |name: &str, x: f64| get(name).is_some_and(|v| v > x);
    let lt = |name: &str, x: f64| get(name).is_some_and(|v| v < x);
    if gt("monetary", 500.0) && gt("frequency", 10.0) && lt("recency", 30.0) {
        "VIP_Customers"
    } else if gt("frequency", 5.0) && lt("recency", 60.0) {
        "Loyal_Customers"
    } else if lt("recency", 30.0) && gt("conversion_rate", 0.1) {
        "Active_Buyers"
    } else if gt("recency", 60.0) && lt("frequency", 3.0) {
        "Dormant_Users"
    } else {
        "Casual_Browsers"
    }
}

/// Names for all segments; segments that share a rule's name are numbered
/// (`Casual_Browsers_1`, `Casual_Browsers_2`, in segment_id order) so they
/// stay visibly distinct instead of being merged.
pub fn segment_names(centroids: &[HashMap<&str, f64>]) -> Vec<String> {
    let base: Vec<&str> = centroids.iter().map(business_name).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    base.iter()
        .map(|&name| {
            let total = base.iter().filter(|&&n| n == name).count();
            if total == 1 {
                name.to_string()
            } else {
                let i = seen.entry(name).or_insert(0);
                *i += 1;
                format!("{name}_{i}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centroid(pairs: &[(&'static str, f64)]) -> HashMap<&'static str, f64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn business_rules_in_order() {
        let vip = centroid(&[
            ("monetary", 800.0),
            ("frequency", 12.0),
            ("recency", 5.0),
            ("conversion_rate", 0.2),
        ]);
        let loyal = centroid(&[("monetary", 100.0), ("frequency", 6.0), ("recency", 40.0)]);
        let active = centroid(&[
            ("frequency", 2.0),
            ("recency", 10.0),
            ("conversion_rate", 0.3),
        ]);
        let dormant = centroid(&[("frequency", 1.0), ("recency", 75.0)]);
        let casual = centroid(&[
            ("frequency", 4.0),
            ("recency", 45.0),
            ("conversion_rate", 0.01),
        ]);
        assert_eq!(business_name(&vip), "VIP_Customers");
        assert_eq!(business_name(&loyal), "Loyal_Customers");
        assert_eq!(business_name(&active), "Active_Buyers");
        assert_eq!(business_name(&dormant), "Dormant_Users");
        assert_eq!(business_name(&casual), "Casual_Browsers");
        // A rule whose feature was not clustered does not match.
        assert_eq!(
            business_name(&centroid(&[("recency", 10.0)])),
            "Casual_Browsers"
        );
    }

    #[test]
    fn shared_names_are_numbered_not_merged() {
        let a = centroid(&[("frequency", 1.0), ("recency", 75.0)]);
        let b = centroid(&[("frequency", 4.0), ("recency", 45.0)]);
        let names = segment_names(&[b.clone(), a, b.clone(), b]);
        assert_eq!(
            names,
            [
                "Casual_Browsers_1",
                "Dormant_Users",
                "Casual_Browsers_2",
                "Casual_Browsers_3"
            ]
        );
    }
}
