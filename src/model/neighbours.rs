//! The item-to-item part of a model table: each product's best
//! neighbours from the training sessions, as `neighbour` rows, and the
//! session blend they are served with, as `param` rows.
//!
//! | side      | id         | item         | name                       | value |
//! |-----------|------------|--------------|----------------------------|-------|
//! | neighbour | product_id | neighbour_id | `sequence`/`cooccurrence`  | score |
//!
//! The params (written only in models that keep the signal) are
//! [`PARAMS`]: `item_weight` (the share of a session's list the
//! item-to-item scores decide, chosen on the validation split), the
//! session blend inside the signal (`item_sequence_weight`,
//! `item_cooccurrence_weight`, `item_repeat_weight`, `item_decay`) and how
//! many held-out session prefixes chose them (`item_validation_prefixes`).
//! Plain data: the trainer (`crate::train`) makes them, serving
//! (`crate::recommend::items`) reads them.

/// The `side` of the rows.
pub const SIDE: &str = "neighbour";

/// The item-to-item param rows, in the order they are written.
pub const PARAMS: [&str; 6] = [
    "item_weight",
    "item_sequence_weight",
    "item_cooccurrence_weight",
    "item_repeat_weight",
    "item_decay",
    "item_validation_prefixes",
];

/// One neighbour row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NeighbourRow {
    pub product: i64,
    pub neighbour: i64,
    pub score: f32,
    /// `sequence` (the neighbour follows the product) or `cooccurrence`.
    pub sequence: bool,
}

impl NeighbourRow {
    /// The row's `name` column.
    pub fn kind(&self) -> &'static str {
        if self.sequence {
            "sequence"
        } else {
            "cooccurrence"
        }
    }

    /// A row as read back; `None` name or another kind is an error naming
    /// the product.
    pub fn read(
        id: Option<i64>,
        item: Option<i64>,
        name: Option<&str>,
        value: Option<f64>,
    ) -> anyhow::Result<NeighbourRow> {
        let (Some(product), Some(neighbour), Some(score)) = (id, item, value) else {
            anyhow::bail!(
                "a 'neighbour' row has a NULL id, item or value; the model table is damaged"
            );
        };
        let sequence = match name {
            Some("sequence") => true,
            Some("cooccurrence") => false,
            other => anyhow::bail!(
                "the 'neighbour' row of product {product} has the name {other:?}; pass 'sequence' or 'cooccurrence' (the model table is damaged)"
            ),
        };
        anyhow::ensure!(
            score.is_finite(),
            "the 'neighbour' row of product {product} has the score {score}; the model table is damaged"
        );
        Ok(NeighbourRow {
            product,
            neighbour,
            score: score as f32,
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_and_bad_ones_are_named() {
        let r = NeighbourRow::read(Some(1), Some(2), Some("sequence"), Some(0.5)).unwrap();
        assert_eq!(
            r,
            NeighbourRow {
                product: 1,
                neighbour: 2,
                score: 0.5,
                sequence: true
            }
        );
        assert_eq!(r.kind(), "sequence");
        let c = NeighbourRow::read(Some(1), Some(3), Some("cooccurrence"), Some(2.0)).unwrap();
        assert!(!c.sequence);
        let e = NeighbourRow::read(Some(7), Some(3), Some("events"), Some(2.0)).unwrap_err();
        assert!(e.to_string().contains("product 7 has the name"), "{e}");
        let e = NeighbourRow::read(Some(7), None, Some("sequence"), Some(2.0)).unwrap_err();
        assert!(e.to_string().contains("NULL id, item or value"), "{e}");
    }
}
