//! The model table's tests: rows out and back in any block size, the weighting's rows, damaged tables.

use super::*;

fn model() -> FactorModel {
    FactorModel::from_table(model_parts(), 12345).unwrap()
}

/// Rows `range` as ModelRows, in reverse (any order must do).
fn read_back(table: &ModelTable, range: std::ops::Range<usize>) -> Vec<ModelRow> {
    range
        .map(|seq| {
            let r = table.row_at(seq);
            ModelRow {
                side: r.side.to_string(),
                id: r.id,
                item: r.item,
                name: r.name.map(str::to_string),
                value: r.value,
                factors: r.factors.map(<[f32]>::to_vec),
            }
        })
        .rev()
        .collect()
}

#[test]
fn model_round_trips_through_rows_in_any_block_size() {
    let table = ModelTable::new(model(), vec![("factors".into(), 2.0)], vec![0.5, 0.25]);
    // 1 model_id + 2 params (factors, blend) + 2 loss + 2 users + 3 products
    // + 2 prices + 1 purchase + 3 interests.
    assert_eq!(table.rows(), 16);
    let whole = read_back(&table, 0..table.rows());
    let mut pieces = Vec::new();
    for start in (0..16).step_by(4) {
        pieces.extend(
            read_back(&table, start..(start + 4).min(16))
                .into_iter()
                .rev(),
        );
    }
    let whole_rows: Vec<ModelRow> = whole.iter().cloned().rev().collect();
    assert_eq!(format!("{pieces:?}"), format!("{whole_rows:?}"));
    assert_eq!(whole_rows[0].name.as_deref(), Some("model_id"));
    assert_eq!(whole_rows[15].side, "interest");
    assert_eq!(
        (
            whole_rows[10].side.as_str(),
            whole_rows[10].id,
            whole_rows[10].value
        ),
        ("price", Some(200), Some(2.5))
    );
    assert_eq!(
        (whole_rows[2].name.as_deref(), whole_rows[2].value),
        (Some("blend"), Some(0.3))
    );
    let back = from_rows(ModelRows::collect(whole.clone()).unwrap(), 12345).unwrap();
    let m = model();
    assert_eq!(back.user_ids, m.user_ids);
    assert_eq!(back.product_ids, m.product_ids);
    assert_eq!(back.user_factors, m.user_factors);
    assert_eq!(back.item_factors, m.item_factors);
    assert_eq!(back.product_category, m.product_category);
    assert_eq!(back.popularity, m.popularity);
    assert_eq!(back.purchased.row(1).0, &[2]);
    assert_eq!(back.interest, m.interest);
    assert_eq!(back.blend, 0.3);
    assert_eq!(back.attributes.brand, m.attributes.brand);
    assert_eq!(back.attributes.price[1..], m.attributes.price[1..]);
    assert!(back.attributes.price[0].is_nan());
    // A table without a blend row (made before models stored one) is
    // served with the blend such models had.
    let legacy: Vec<ModelRow> = whole
        .into_iter()
        .filter(|r| r.name.as_deref() != Some("blend"))
        .collect();
    assert_eq!(
        from_rows(ModelRows::collect(legacy).unwrap(), 12345)
            .unwrap()
            .blend,
        crate::model::LEGACY_BLEND
    );
}

/// A bm25 model with a half-life writes its statistics as rows (one
/// `product_users` row per product, after the products) and reads them
/// back; a table without them reads as what it says.
#[test]
fn the_weighting_round_trips_through_rows() {
    use crate::model::confidence::{Bm25, Confidence};
    let m = FactorModel::from_table(
        ModelParts {
            weighting: Weighting {
                confidence: Confidence::Bm25,
                scale: 1.25,
                half_life: 2.0 * 86_400.0,
                reference: Some(1_570_000_000.5),
                bm25: Some(Bm25::new(100.0, 0.8, 4.5, 2.0, vec![2, 1, 1])),
            },
            ..model_parts()
        },
        12345,
    )
    .unwrap();
    let params: Vec<(String, f64)> = m
        .weighting
        .param_rows()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    let table = ModelTable::new(m, params, vec![0.5]);
    // 1 model_id + 7 params + blend + 1 loss + 2 users + 3 products
    // + 2 prices + 3 product_users + 1 purchase + 3 interests.
    assert_eq!(table.rows(), 24);
    let rows = read_back(&table, 0..table.rows());
    let users_of: Vec<(i64, f64)> = rows
        .iter()
        .rev()
        .filter(|r| r.side == "product_users")
        .map(|r| (r.id.unwrap(), r.value.unwrap()))
        .collect();
    assert_eq!(users_of, [(100, 2.0), (200, 1.0), (300, 1.0)]);
    let back = from_rows(ModelRows::collect(rows.clone()).unwrap(), 12345).unwrap();
    assert_eq!(back.weighting, table.model().weighting);
    back.weighting.check(3).unwrap();
    let without: Vec<ModelRow> = rows
        .into_iter()
        .filter(|r| r.side != "product_users" || r.id != Some(200))
        .collect();
    let back = from_rows(ModelRows::collect(without).unwrap(), 12345).unwrap();
    assert!(back
        .weighting
        .check(3)
        .unwrap_err()
        .to_string()
        .contains("0 product_users rows for 3 products"));
}

#[test]
fn damaged_models_are_refused() {
    let mut rows = vec![ModelRow {
        side: "param".into(),
        name: Some("model_id".into()),
        value: Some(1.0),
        ..Default::default()
    }];
    let build = |rows: Vec<ModelRow>| ModelRows::collect(rows).and_then(|r| from_rows(r, 1));
    assert!(build(rows.clone())
        .unwrap_err()
        .to_string()
        .contains("no user or no product"));
    rows.push(ModelRow {
        side: "user".into(),
        id: Some(1),
        factors: Some(vec![1.0, 2.0]),
        ..Default::default()
    });
    rows.push(ModelRow {
        side: "product".into(),
        id: Some(1),
        factors: Some(vec![1.0]),
        ..Default::default()
    });
    assert!(build(rows.clone())
        .unwrap_err()
        .to_string()
        .contains("different lengths"));
    rows.pop();
    rows.push(ModelRow {
        side: "product".into(),
        id: Some(1),
        factors: Some(vec![1.0, 3.0]),
        ..Default::default()
    });
    rows.push(ModelRow {
        side: "user".into(),
        id: Some(1),
        factors: Some(vec![1.0, 2.0]),
        ..Default::default()
    });
    assert!(build(rows.clone())
        .unwrap_err()
        .to_string()
        .contains("user 1 has more than one row"));
    rows.pop();
    rows.push(ModelRow {
        side: "interest".into(),
        id: Some(1),
        ..Default::default()
    });
    assert!(build(rows.clone())
        .unwrap_err()
        .to_string()
        .contains("NULL id or item"));
    rows.pop();
    rows.push(ModelRow {
        side: "user".into(),
        id: Some(0),
        factors: Some(vec![5.0, 6.0]),
        ..Default::default()
    });
    // Users out of order are sorted with their factors.
    let m = build(rows.clone()).unwrap();
    assert_eq!(
        (m.user_ids.clone(), m.user_factors.clone()),
        (vec![0, 1], vec![5.0, 6.0, 1.0, 2.0])
    );
    rows.push(ModelRow {
        side: "bogus".into(),
        ..Default::default()
    });
    assert!(build(rows)
        .unwrap_err()
        .to_string()
        .contains("unknown model row side"));
}
