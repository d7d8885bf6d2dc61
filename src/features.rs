//! Stage 3: user (RFM + behaviour) and product features, as SQL macros.

use crate::binding::SqlMacro;

pub fn macros() -> Vec<SqlMacro> {
    Vec::new()
}
