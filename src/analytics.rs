//! Stage 2: exploratory analytics over a cleaned events table, as SQL macros.

use crate::binding::SqlMacro;

pub fn macros() -> Vec<SqlMacro> {
    Vec::new()
}
