//! The model table as DuckDB result rows: its declared columns and the
//! block source that writes any range of a [`ModelTable`]'s rows. The model
//! layer knows the rows as plain values ([`ModelTable::row_at`]); this is
//! the one place that turns them into result columns.

use super::blocks::BlockSource;
use super::rows::{Col, RowSet};
use super::{Column, SqlType};
use crate::model::table::{ModelTable, RowOut, COLUMNS};

/// The model table's columns with their SQL types.
pub fn columns() -> Vec<Column> {
    let types = [
        SqlType::BigInt,
        SqlType::BigInt,
        SqlType::Varchar,
        SqlType::BigInt,
        SqlType::BigInt,
        SqlType::Varchar,
        SqlType::Double,
        SqlType::List(Box::new(SqlType::Float)),
    ];
    COLUMNS
        .iter()
        .zip(types)
        .map(|(name, ty)| Column::new(name, ty))
        .collect()
}

/// Model rows per block: a user or product row carries its factors, so a
/// block is at most this many factor lists.
const ROWS_PER_BLOCK: usize = 128;

/// The model table's columns opened in a [`RowSet`] once; [`RowWriter::put`]
/// writes one row. Every writer of model rows (the table's blocks,
/// als_update's rows) goes through it.
pub struct RowWriter {
    seq: Col<i64>,
    model_id: Col<i64>,
    side: Col<String>,
    id: Col<i64>,
    item: Col<i64>,
    name: Col<String>,
    value: Col<f64>,
    factors: Col<Vec<f32>>,
}

impl RowWriter {
    /// An empty row set of the model table's [`columns`] and its writer.
    pub fn new() -> anyhow::Result<(RowSet, RowWriter)> {
        let out = RowSet::for_columns(&columns());
        let writer = RowWriter {
            seq: out.col("seq")?,
            model_id: out.col("model_id")?,
            side: out.col("side")?,
            id: out.col("id")?,
            item: out.col("item")?,
            name: out.col("name")?,
            value: out.col("value")?,
            factors: out.col("factors")?,
        };
        Ok((out, writer))
    }

    /// Appends `row` as row `seq` of model `model_id`.
    pub fn put(&self, out: &mut RowSet, seq: i64, model_id: i64, row: &RowOut) {
        out.put(self.seq, Some(seq));
        out.put(self.model_id, Some(model_id));
        out.put_str(self.side, Some(row.side));
        out.put(self.id, row.id);
        out.put(self.item, row.item);
        out.put_str(self.name, row.name);
        out.put(self.value, row.value);
        out.put(self.factors, row.factors.map(<[f32]>::to_vec));
    }
}

/// Rows `range` (by seq) of `table`, written against [`columns`].
pub fn write(table: &ModelTable, range: std::ops::Range<usize>) -> anyhow::Result<RowSet> {
    let (mut out, writer) = RowWriter::new()?;
    let model = table.model().id();
    for s in range {
        writer.put(&mut out, s as i64, model, &table.row_at(s));
    }
    Ok(out)
}

impl BlockSource for ModelTable {
    fn retained_bytes(&self) -> usize {
        ModelTable::retained_bytes(self)
    }
    fn blocks(&self) -> usize {
        self.rows().div_ceil(ROWS_PER_BLOCK)
    }
    fn block(&self, index: usize) -> anyhow::Result<RowSet> {
        let start = index * ROWS_PER_BLOCK;
        write(self, start..(start + ROWS_PER_BLOCK).min(self.rows()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::rows::Values;
    use crate::model::table::model_parts;
    use crate::model::FactorModel;

    fn table() -> ModelTable {
        let model = FactorModel::from_table(model_parts(), 12345).unwrap();
        ModelTable::new(model, vec![("factors".into(), 2.0)], vec![0.5, 0.25])
    }

    /// Every column of written rows, one string per row.
    fn printed(rows: &RowSet) -> Vec<String> {
        (0..rows.rows())
            .map(|i| {
                rows.columns
                    .iter()
                    .map(|(_, values)| match values {
                        Values::BigInt(v) => format!("{:?}", v[i]),
                        Values::Text(v) => format!("{:?}", v[i]),
                        Values::Double(v) => format!("{:?}", v[i]),
                        Values::FloatList(v) => format!("{:?}", v[i]),
                        _ => panic!("a model column of another type"),
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    #[test]
    fn blocks_write_the_rows_of_the_model_layer_in_order() {
        let table = table();
        assert_eq!(table.rows(), 16);
        let whole = write(&table, 0..16).unwrap();
        let names: Vec<&str> = whole.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, COLUMNS);
        let mut pieces = Vec::new();
        for start in (0..16).step_by(5) {
            pieces.extend(printed(&write(&table, start..(start + 5).min(16)).unwrap()));
        }
        assert_eq!(pieces, printed(&whole));
        // Row 4 is the first loss row; row 5 the first user, with its factors.
        let rows = printed(&whole);
        assert_eq!(
            rows[4],
            "Some(4)|Some(12345)|Some(\"loss\")|Some(2)|None|None|Some(0.25)|None"
        );
        assert_eq!(
            rows[5],
            "Some(5)|Some(12345)|Some(\"user\")|Some(5)|None|None|None|Some([0.1, 0.2])"
        );
        assert_eq!(table.blocks(), 1);
        assert_eq!(printed(&table.block(0).unwrap()), rows);
    }
}
