//! The in-process cache of served models.
//!
//! Serving a model reads all its rows; to answer `recommend(user_id)` in a
//! few milliseconds the indexed model is kept here, keyed by `model_id`, a
//! hash of the model's content stored in its rows (see
//! [`crate::model::table`]). A model table is treated as immutable: change
//! its rows and you must also change (or drop) its model_id row.

use super::serving::ServingModel;
// A poisoned lock is recovered, as everywhere in ecoreco (see binding::lock):
// the cache stays on.
use crate::threads::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Models recently trained or loaded in this process, newest last.
const CACHED_MODELS: usize = 4;

fn cache() -> &'static Mutex<Vec<Arc<ServingModel>>> {
    static CACHE: OnceLock<Mutex<Vec<Arc<ServingModel>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub fn cached(model_id: i64) -> Option<Arc<ServingModel>> {
    let mut models = lock(cache());
    let at = models.iter().position(|m| m.model_id == model_id)?;
    let model = models.remove(at);
    models.push(model.clone());
    Some(model)
}

/// Which model each model table (by the name the caller used) held when
/// it was last read: lets a query skip reading a cached model's rows.
fn table_models() -> &'static Mutex<HashMap<String, i64>> {
    static TABLES: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    TABLES.get_or_init(Default::default)
}

/// The cached model last read from `table`, if it is still cached.
pub fn cached_for_table(table: &str) -> Option<Arc<ServingModel>> {
    let id = *lock(table_models()).get(table)?;
    let models = lock(cache());
    models.iter().find(|m| m.model_id == id).cloned()
}

pub fn note_table(table: &str, model_id: i64) {
    lock(table_models()).insert(table.to_string(), model_id);
}

pub fn forget_table(table: &str) {
    lock(table_models()).remove(table);
}

/// Drops every cached model; returns how many there were.
pub fn forget_all() -> usize {
    lock(table_models()).clear();
    let dropped = std::mem::take(&mut *lock(cache()));
    dropped.len()
}

pub fn remember(model: ServingModel) -> Arc<ServingModel> {
    let model = Arc::new(model);
    let mut models = lock(cache());
    models.retain(|m| m.model_id != model.model_id);
    models.push(model.clone());
    while models.len() > CACHED_MODELS {
        models.remove(0);
    }
    drop(models);
    model
}
